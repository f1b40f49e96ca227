//! systemd-boot: BLS entries on the ESP (and on an XBOOTLDR /boot, which
//! systemd-boot reads too), plus /etc/kernel/cmdline for future kernels.
//! loader.conf itself needs nothing.

use std::path::Path;

use super::flavour_params::Flavour;
use super::{BootChanges, BootRefusal, BootRequest, bls, target_fs};

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
    for d in &dirs {
        bls::plan_entries(root, d, req, flavour, ch)?;
    }
    bls::plan_kernel_cmdline(root, req, flavour, ch)?;
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
