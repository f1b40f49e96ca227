//! What the person chose: on the command line, in the wizard, or both.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The seed procedure: move the data to the spare, encrypt the original
    /// partition, move the data back. The spare is free again at the end.
    SpareReturn,
    /// Encrypt the spare and move the data onto it once. The data ends on
    /// the spare; the original PV is freed.
    SpareKeep,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SpareReturn => "spare-return",
            Strategy::SpareKeep => "spare-keep",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LuksVersion {
    Luks1,
    Luks2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pbkdf {
    Argon2id,
    Argon2i,
    Pbkdf2,
}

/// How the container is formatted. The defaults are strong; tests may lower
/// the PBKDF cost, never the cipher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LuksOptions {
    pub version: LuksVersion,
    pub cipher: String,
    pub key_size_bits: u32,
    pub pbkdf: Pbkdf,
    /// Milliseconds the key derivation should take; None = libcryptsetup's default.
    pub iter_time_ms: Option<u32>,
}

impl Default for LuksOptions {
    fn default() -> Self {
        LuksOptions {
            version: LuksVersion::Luks2,
            cipher: "aes-xts-plain64".into(),
            key_size_bits: 512,
            pbkdf: Pbkdf::Argon2id,
            iter_time_ms: None,
        }
    }
}

impl LuksOptions {
    /// Bytes between the start of the container and its first data sector.
    /// These are cryptsetup's default data offsets: 16 MiB for LUKS2, 2 MiB
    /// for LUKS1 (its key material grows with the key size, and is aligned
    /// to 1 MiB).
    pub fn header_bytes(&self) -> u64 {
        match self.version {
            LuksVersion::Luks2 => 16 << 20,
            LuksVersion::Luks1 => {
                let key_bytes = u64::from(self.key_size_bits / 8);
                // 8 keyslots of 4000 stripes each, plus the 4 KiB phdr area.
                let slots = 8 * (key_bytes * 4000).div_ceil(4096) * 4096;
                (4096 + slots).div_ceil(1 << 20) * (1 << 20)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Choices {
    /// The volume group to encrypt; None = the one holding the target's root.
    pub vg: Option<String>,
    /// The spare disk or partition.
    pub spare: Option<String>,
    pub strategy: Option<Strategy>,
    pub luks: LuksOptions,
    /// dm name for the opened container; None = `luks-<UUID>`.
    pub mapper_name: Option<String>,
    /// Where to write the LUKS header backup (the VG metadata backup goes beside it).
    pub header_backup: Option<String>,
    /// The person confirmed that signatures on the spare may be wiped.
    pub wipe_spare: bool,
}
