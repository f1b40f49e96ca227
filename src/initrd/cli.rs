//! `luksify initrd ...` subcommands. The lead wires [`InitrdCommand`] into the
//! main command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::image::Image;
use super::list::list;

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
}

/// Runs a subcommand; returns the process exit code.
pub fn run(cmd: InitrdCommand) -> anyhow::Result<i32> {
    match cmd {
        InitrdCommand::List { image, json } => {
            let img = Image::open(&image)?;
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
    }
}
