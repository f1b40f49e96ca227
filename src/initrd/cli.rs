//! `luksify initrd ...` subcommands. The lead wires [`InitrdCommand`] into the
//! main command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::compression::{CompressOptions, Compression};
use super::flavour::{Flavour, Settings};
use super::image::Image;
use super::inject::{InjectOptions, inject};
use super::list::list;
use super::segment::ReadOptions;
use super::verify::verify;
use super::write::{WriteMode, WriteOptions, write_parts};

#[derive(Debug, clap::Subcommand)]
pub enum InitrdCommand {
    /// Show an initramfs image's segments (offset, length, compression, cpio format)
    /// and entries (mode, owner, size, name, link target). Reads only; never unpacks.
    List {
        /// The initramfs image, e.g. /mnt/target/boot/initrd.img-6.1.0-13-amd64
        image: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Teach an initramfs to unlock the root's LUKS container (by UUID) and
    /// activate its volume group: cryptsetup and its libraries and the cipher's
    /// kernel modules from the target root, plus the generator's hook.
    Inject(InjectArgs),
    /// Check that an image can unlock this LUKS container and activate this VG;
    /// lists whatever is missing. Exit 0 when nothing is, 4 otherwise.
    Verify {
        image: PathBuf,
        #[arg(long)]
        luks_uuid: String,
        #[arg(long)]
        vg: String,
        /// dm-crypt cipher of the container (see `cryptsetup luksDump`).
        #[arg(long, default_value = "aes-xts-plain64")]
        cipher: String,
        /// auto|initramfs-tools|dracut|mkinitcpio|nash|busybox
        #[arg(long, default_value = "auto")]
        flavour: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// The initramfs image to read.
    pub image: PathBuf,
    /// The target system's root (binaries, libraries, modules come from it).
    #[arg(long)]
    pub root: PathBuf,
    #[arg(long)]
    pub luks_uuid: String,
    #[arg(long)]
    pub vg: String,
    /// The root logical volume: root=/dev/mapper/VG-LV where the flavour can carry it.
    #[arg(long)]
    pub lv: Option<String>,
    /// dm-crypt mapping name (default luks-UUID).
    #[arg(long)]
    pub mapper: Option<String>,
    /// auto|initramfs-tools|dracut|mkinitcpio|nash|busybox
    #[arg(long, default_value = "auto")]
    pub flavour: String,
    /// Kernel version whose modules to add (default: the image's).
    #[arg(long)]
    pub kver: Option<String>,
    /// dm-crypt cipher of the container (see `cryptsetup luksDump`).
    #[arg(long, default_value = "aes-xts-plain64")]
    pub cipher: String,
    /// Merge the changes into the main segment and recompress (the default):
    /// the result is one archive that every tool reads.
    #[arg(long, conflicts_with = "overlay")]
    pub rewrite: bool,
    /// Append the changes as one extra compressed segment instead, keeping the
    /// original bytes as a prefix (much faster; falls back to rewrite where the
    /// kernel could not apply it). The kernel reads it, but Debian's
    /// lsinitramfs/unmkinitramfs and 3cpio read one cpio archive from the
    /// first compressed segment on and do not show the injected files.
    #[arg(long)]
    pub overlay: bool,
    /// Compression of the written segment (default: the image's own).
    #[arg(long)]
    pub compress: Option<Compression>,
    /// Where to write the new image.
    #[arg(short = 'o', long, required_unless_present = "in_place")]
    pub output: Option<PathBuf>,
    /// Replace IMAGE, keeping the original as IMAGE.orig.
    #[arg(long, conflicts_with = "output")]
    pub in_place: bool,
}

/// Runs a subcommand; returns the process exit code.
pub fn run(cmd: InitrdCommand) -> anyhow::Result<i32> {
    match cmd {
        InitrdCommand::List { image, json } => {
            // Headers, names and link targets are all a listing shows: skimming
            // keeps no file contents (on the 48 MB mkinitramfs image: 59 MB peak
            // memory instead of 205, 0.15 s instead of 0.23).
            let headers_only = ReadOptions {
                contents: false,
                ..ReadOptions::default()
            };
            let img = Image::open_with(&image, &headers_only)?;
            let l = list(&img);
            let text = if json {
                l.to_json() + "\n"
            } else {
                l.to_text()
            };
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                // `luksify initrd list img | head` is fine.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
                r => r.context("writing the listing to stdout").map(|_| 0),
            }
        }
        InitrdCommand::Inject(a) => run_inject(a),
        InitrdCommand::Verify {
            image,
            luks_uuid,
            vg,
            cipher,
            flavour,
            json,
        } => {
            let img = Image::open(&image)?;
            let s = Settings::new(&luks_uuid, &vg, None, None)?;
            let f = Flavour::parse(&flavour, &img)?;
            let v = verify(&img, &s, &cipher, f);
            let text = if json {
                v.to_json() + "\n"
            } else {
                v.to_text()
            };
            std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .context("writing the verdict to stdout")?;
            Ok(if v.ok() {
                crate::app::exit::OK
            } else {
                crate::app::exit::VERIFY_FAILED
            })
        }
    }
}

fn run_inject(a: InjectArgs) -> anyhow::Result<i32> {
    let out = match (&a.output, a.in_place) {
        (Some(o), _) => o.clone(),
        (None, true) => a.image.clone(),
        (None, false) => anyhow::bail!("give -o OUT, or --in-place to replace the image"),
    };
    let same = out == a.image
        || std::fs::canonicalize(&out)
            .ok()
            .is_some_and(|o| std::fs::canonicalize(&a.image).ok().is_some_and(|i| i == o));
    if same && !a.in_place {
        anyhow::bail!(
            "-o {} is the input image; pass --in-place to replace it (the original is kept as .orig)",
            out.display()
        );
    }
    let mut img = Image::open(&a.image)?;
    let s = Settings::new(&a.luks_uuid, &a.vg, a.lv.as_deref(), a.mapper.as_deref())?;
    let opts = InjectOptions {
        root: a.root.clone(),
        flavour: Flavour::parse(&a.flavour, &img)?,
        kver: a.kver.clone(),
        cipher: a.cipher.clone(),
    };
    let report = inject(&mut img, &s, &opts)?;
    let written = write_parts(
        &img,
        &WriteOptions {
            mode: if a.overlay && !a.rewrite {
                WriteMode::Auto
            } else {
                WriteMode::Rewrite
            },
            compression: a.compress,
            compress: CompressOptions::default(),
        },
    )?;
    if same {
        let orig = a.image.with_file_name(format!(
            "{}.orig",
            a.image.file_name().unwrap_or_default().to_string_lossy()
        ));
        if !orig.exists() {
            crate::sys::atomic_file::write_atomic(&orig, img.raw(), 0o600)
                .with_context(|| format!("keeping the original image as {}", orig.display()))?;
        }
    }
    // An overlay is the original bytes then a tail: written straight from both.
    crate::sys::atomic_file::write_atomic_with(&out, 0o600, |w| {
        written.write_to(w)?;
        Ok(())
    })
    .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "luksify: {} image for kernel {}: added {} files ({:?}); wrote {}",
        report.flavour.name(),
        report.kver,
        report.added.len(),
        written.method,
        out.display()
    );
    for n in report.notes.iter().chain(&written.rewrite_reasons) {
        eprintln!("  {n}");
    }
    Ok(crate::app::exit::OK)
}
