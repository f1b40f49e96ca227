//! systemd-boot: BLS entries on the ESP (and on an XBOOTLDR /boot, which
//! systemd-boot reads too), plus /etc/kernel/cmdline for future kernels.
//! loader.conf itself needs nothing.

use std::path::Path;

use super::flavour_params::Flavour;
use super::{BootChanges, BootRefusal, BootRequest, bls, target_fs};

/// loader.conf's `default` glob (`@saved` and friends name EFI variables
/// we cannot read from here, so they count as no default).
fn loader_default(root: &Path, esp: &str) -> Result<Option<String>, BootRefusal> {
    let conf = format!("{}/loader/loader.conf", esp.trim_end_matches('/'));
    Ok(target_fs::read(root, &conf)?.and_then(|(_, b)| {
        String::from_utf8_lossy(&b).lines().rev().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("default"))
                .then(|| w.next().map(str::to_string))
                .flatten()
                .filter(|d| !d.starts_with('@'))
        })
    }))
}

pub fn plan(
    root: &Path,
    esp: &str,
    req: &BootRequest,
    flavour: Flavour,
    ch: &mut BootChanges,
) -> Result<(), BootRefusal> {
    let esp_entries = format!("{}/loader/entries", esp.trim_end_matches('/'));
    let mut dirs = vec![esp_entries.clone()];
    let xbootldr = "/boot/loader/entries";
    if target_fs::resolve(root, Path::new(xbootldr))
        != target_fs::resolve(root, Path::new(&esp_entries))
        && target_fs::is_dir(root, xbootldr)
    {
        dirs.push(xbootldr.to_string());
    }
    let mut entries = Vec::new();
    for d in &dirs {
        entries.extend(bls::plan_entries(root, d, req, flavour, ch)?);
    }
    let default = loader_default(root, esp)?;
    bls::plan_kernel_cmdline(root, req, flavour, &entries, default.as_deref(), ch)?;
    let ukis: Vec<String> = target_fs::list_dir(root, &format!("{esp}/EFI/Linux"))
        .into_iter()
        .filter(|f| f.ends_with(".efi"))
        .collect();
    if !ukis.is_empty() {
        ch.note(format!(
            "unified kernel images in {esp}/EFI/Linux ({}) carry their own command line and are not edited; rebuild them after the migration",
            ukis.join(", ")
        ));
    }
    Ok(())
}
