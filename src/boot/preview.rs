//! The boot-configuration changes `plan` can show from a snapshot alone.

use super::{BootRefusal, BootRequest, Flavour, crypttab};

/// The crypttab change as the plan shows it, computed from the crypttab the
/// probe captured. The runner computes the complete set of boot changes with
/// [`plan_boot_changes`] on the mounted target and applies those.
pub fn planned_edits(
    _snap: &crate::probe::Snapshot,
    l: &crate::plan::layout::Layout,
) -> Result<Vec<crate::plan::FileDiff>, BootRefusal> {
    let t = l.target;
    let (vg, lv) = t.root_lv.split_once('/').unwrap_or((&l.vg, ""));
    let flavour = match t.initramfs_generator.as_deref() {
        Some("dracut") => Flavour::Dracut,
        Some("mkinitcpio") => Flavour::MkinitcpioEncrypt,
        Some("nash") => Flavour::Nash,
        _ => Flavour::InitramfsTools,
    };
    let req = BootRequest {
        luks_uuid: l.luks_uuid.clone(),
        mapper_name: l.mapper_name.clone(),
        vg: vg.into(),
        root_lv: lv.into(),
        flavour: Some(flavour),
        initrd_path: None,
        discard: false,
    };
    Ok(crypttab::edit(&t.crypttab, &req, flavour)?
        .map(|after| crate::plan::FileDiff {
            path: "etc/crypttab".into(),
            before: (!t.crypttab.is_empty()).then(|| t.crypttab.clone()),
            after,
        })
        .into_iter()
        .collect())
}
