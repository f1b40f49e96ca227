//! LUKS through libcryptsetup: the passphrase goes from memory to the library
//! and nowhere else (no cryptsetup process, no argv, no pipe).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use libcryptsetup_rs::consts::flags::{CryptActivate, CryptVolumeKey};
use libcryptsetup_rs::consts::vals::{CryptKdf, EncryptionFormat, LuksType};
use libcryptsetup_rs::{
    CryptInit, CryptParamsLuks1, CryptParamsLuks1Ref, CryptParamsLuks2, CryptParamsLuks2Ref,
    CryptSettingsHandle, Either,
};

use super::secret::Passphrase;
use crate::plan::{LuksOptions, LuksVersion, Pbkdf};

/// The LUKS2 subsystem label luksify writes, so a container it made can be
/// recognised from its header alone.
pub const SUBSYSTEM: &str = "luksify";

pub struct FormatSpec<'a> {
    pub device: &'a Path,
    pub uuid: &'a str,
    pub options: &'a LuksOptions,
    pub sector_size: u32,
    pub label: &'a str,
}

/// Formats `spec.device` with the passphrase in keyslot 0 and, when given,
/// the recovery passphrase in the next keyslot; returns that keyslot.
///
/// The header and its keyslots are made in a private file first and land on
/// the device in one header restore: formatting in place would leave a
/// header without a keyslot for the seconds the key derivation takes, and a
/// crash then makes the container unopenable and the recovery passphrase the
/// person just wrote down a lie.
pub fn format(
    spec: &FormatSpec,
    passphrase: &Passphrase,
    recovery: Option<&Passphrase>,
) -> Result<Option<u32>> {
    let dev = spec.device.display().to_string();
    let staging = staging_dir()?;
    let header = staging.path().join("header");
    std::fs::File::create(&header)
        .and_then(|f| f.set_len(spec.options.header_bytes()))
        .with_context(|| format!("creating {}", header.display()))?;
    let recovery_slot = format_detached(spec, &header, passphrase, recovery)?;
    let luks_type = match spec.options.version {
        LuksVersion::Luks1 => EncryptionFormat::Luks1,
        LuksVersion::Luks2 => EncryptionFormat::Luks2,
    };
    let mut cd =
        CryptInit::init(spec.device).with_context(|| format!("opening {dev} for libcryptsetup"))?;
    cd.backup_handle()
        .header_restore(Some(luks_type), &header)
        .with_context(|| format!("writing the new LUKS header onto {dev}"))?;
    let mut check =
        CryptInit::init(spec.device).with_context(|| format!("opening {dev} for libcryptsetup"))?;
    check
        .context_handle()
        .load::<()>(None, None)
        .with_context(|| format!("{dev} shows no LUKS header after writing one"))?;
    Ok(recovery_slot)
}

/// A directory only root can read, in memory when /run is a tmpfs, removed
/// when dropped.
fn staging_dir() -> Result<tempfile::TempDir> {
    let base = Path::new("/run/luksify");
    let base = if std::fs::create_dir_all(base).is_ok() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    tempfile::Builder::new()
        .prefix("luks-format.")
        .tempdir_in(&base)
        .with_context(|| format!("creating a private directory in {}", base.display()))
}

fn format_detached(
    spec: &FormatSpec,
    header: &Path,
    passphrase: &Passphrase,
    recovery: Option<&Passphrase>,
) -> Result<Option<u32>> {
    let dev = spec.device.display().to_string();
    let (cipher, mode) = spec.options.cipher.split_once('-').ok_or_else(|| {
        anyhow!(
            "cipher {:?} is not of the form cipher-mode (aes-xts-plain64)",
            spec.options.cipher
        )
    })?;
    let uuid =
        uuid::Uuid::parse_str(spec.uuid).with_context(|| format!("bad LUKS UUID {}", spec.uuid))?;
    let mut cd = CryptInit::init_with_data_device(Either::Right((header, spec.device)))
        .with_context(|| format!("opening {dev} for libcryptsetup"))?;
    // Where an attached header would put the data, so the header restored
    // onto the device describes the same layout.
    cd.set_data_offset(spec.options.header_bytes() / 512)
        .context("setting the LUKS data offset")?;
    set_pbkdf(&mut cd, spec.options)?;
    let key_bytes = (spec.options.key_size_bits / 8) as usize;
    match spec.options.version {
        LuksVersion::Luks2 => {
            let params = CryptParamsLuks2 {
                pbkdf: None,
                integrity: None,
                integrity_params: None,
                data_alignment: 0,
                data_device: None,
                sector_size: spec.sector_size,
                label: Some(spec.label.to_string()),
                subsystem: Some(SUBSYSTEM.to_string()),
            };
            let mut params: CryptParamsLuks2Ref =
                (&params).try_into().context("preparing LUKS2 parameters")?;
            cd.context_handle().format(
                EncryptionFormat::Luks2,
                (cipher, mode),
                Some(uuid),
                Either::Right(key_bytes),
                Some(&mut params),
            )
        }
        LuksVersion::Luks1 => {
            let params = CryptParamsLuks1 {
                hash: "sha256".into(),
                data_alignment: 0,
                data_device: None,
            };
            let mut params: CryptParamsLuks1Ref =
                (&params).try_into().context("preparing LUKS1 parameters")?;
            cd.context_handle().format(
                EncryptionFormat::Luks1,
                (cipher, mode),
                Some(uuid),
                Either::Right(key_bytes),
                Some(&mut params),
            )
        }
    }
    .with_context(|| format!("preparing a LUKS header for {dev}"))?;
    cd.keyslot_handle()
        .add_by_key(None, None, passphrase.expose(), CryptVolumeKey::empty())
        .context("adding the passphrase to a keyslot of the new header")?;
    recovery
        .map(|r| {
            cd.keyslot_handle()
                .add_by_passphrase(None, passphrase.expose(), r.expose())
                .context("adding the recovery passphrase to a keyslot of the new header")
        })
        .transpose()
}

/// The key derivation the options ask for, for every keyslot added through `cd`.
fn set_pbkdf(cd: &mut libcryptsetup_rs::CryptDevice, options: &LuksOptions) -> Result<()> {
    let luks_type = match options.version {
        LuksVersion::Luks1 => LuksType::Luks1,
        LuksVersion::Luks2 => LuksType::Luks2,
    };
    let mut pbkdf = CryptSettingsHandle::get_pbkdf_default(&luks_type)
        .context("asking libcryptsetup for its default key derivation settings")?;
    pbkdf.type_ = match (options.version, options.pbkdf) {
        // LUKS1 knows only PBKDF2.
        (LuksVersion::Luks1, _) | (_, Pbkdf::Pbkdf2) => CryptKdf::Pbkdf2,
        (_, Pbkdf::Argon2i) => CryptKdf::Argon2I,
        (_, Pbkdf::Argon2id) => CryptKdf::Argon2Id,
    };
    if pbkdf.type_ == CryptKdf::Pbkdf2 {
        pbkdf.max_memory_kb = 0;
        pbkdf.parallel_threads = 0;
    }
    if let Some(ms) = options.iter_time_ms {
        pbkdf.time_ms = ms;
    }
    cd.settings_handle()
        .set_pbkdf_type(&pbkdf)
        .context("setting the key derivation function")
}

/// Adds `new` as another keyslot (a recovery passphrase), unlocking the
/// volume key with `existing`; returns the keyslot number.
pub fn add_passphrase(
    device: &Path,
    options: &LuksOptions,
    existing: &Passphrase,
    new: &Passphrase,
) -> Result<u32> {
    let dev = device.display().to_string();
    let mut cd =
        CryptInit::init(device).with_context(|| format!("opening {dev} for libcryptsetup"))?;
    cd.context_handle()
        .load::<()>(None, None)
        .with_context(|| format!("{dev} has no readable LUKS header"))?;
    set_pbkdf(&mut cd, options)?;
    cd.keyslot_handle()
        .add_by_passphrase(None, existing.expose(), new.expose())
        .with_context(|| format!("adding the recovery passphrase to a keyslot of {dev}"))
}

/// Opens the container as /dev/mapper/NAME.
pub fn open(device: &Path, name: &str, passphrase: &Passphrase) -> Result<()> {
    let dev = device.display().to_string();
    let mut cd =
        CryptInit::init(device).with_context(|| format!("opening {dev} for libcryptsetup"))?;
    cd.context_handle()
        .load::<()>(None, None)
        .with_context(|| format!("{dev} has no readable LUKS header"))?;
    cd.activate_handle()
        .activate_by_passphrase(
            Some(name),
            None,
            passphrase.expose(),
            CryptActivate::empty(),
        )
        .with_context(|| format!("unlocking {dev} (is the passphrase right?)"))?;
    Ok(())
}

/// Writes the header backup; an existing identical backup is kept, a
/// different one is never overwritten.
pub fn header_backup(device: &Path, path: &Path) -> Result<()> {
    let dev = device.display().to_string();
    let mut cd =
        CryptInit::init(device).with_context(|| format!("opening {dev} for libcryptsetup"))?;
    cd.context_handle()
        .load::<()>(None, None)
        .with_context(|| format!("{dev} has no readable LUKS header"))?;
    if path.exists() {
        let tmp = path.with_extension("luksify-check");
        let _ = std::fs::remove_file(&tmp);
        cd.backup_handle()
            .header_backup(None, &tmp)
            .with_context(|| format!("backing up the LUKS header of {dev}"))?;
        let same = std::fs::read(&tmp)? == std::fs::read(path)?;
        std::fs::remove_file(&tmp)?;
        if same {
            return Ok(());
        }
        anyhow::bail!(
            "{} already exists and is not a backup of {dev}'s header; move it away or name another --header-backup",
            path.display()
        );
    }
    cd.backup_handle()
        .header_backup(None, path)
        .with_context(|| format!("backing up the LUKS header of {dev} to {}", path.display()))?;
    super::atomic_file::sync_dir(path.parent().unwrap_or(Path::new(".")))
}
