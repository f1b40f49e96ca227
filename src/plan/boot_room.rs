//! Whether the target's /boot has room for the initramfs step: luksify adding
//! the unlock to the images (the same arithmetic at plan time, from the probe's
//! `BootSpace`, and at the step, from the mounted file system), or the target's
//! update-initramfs rebuilding them; so a plan that passes is not stopped by a
//! full /boot after the data has moved.

use super::refusal::Refusal;
use crate::probe::TargetOs;

/// Appended to an image's name for the copy of the original.
pub const BACKUP_SUFFIX: &str = ".luksify-backup";

/// Appended to an image's name for the file the target's dracut writes
/// before it replaces the image.
pub const NEW_SUFFIX: &str = ".luksify-new";

/// Room the new image may take beyond the original: cryptsetup, its
/// libraries, the dm-crypt modules and the hook, compressed, are a few MiB.
pub const GROWTH: u64 = 16 << 20;

/// Kernel `kver`'s initramfs in /boot as the generator names it, most likely first.
pub fn image_names(generator: Option<&str>, kver: &str) -> Vec<String> {
    let debian = format!("/boot/initrd.img-{kver}");
    let dracut = format!("/boot/initramfs-{kver}.img");
    let old_redhat = format!("/boot/initrd-{kver}.img");
    match generator {
        Some("dracut") | Some("mkinitcpio") => vec![dracut, debian, old_redhat],
        Some("nash") => vec![old_redhat, dracut, debian],
        _ => vec![debian, dracut, old_redhat],
    }
}

/// Bytes /boot must have free for images of these sizes, each with whether a
/// backup of it exists already: a backup of each that has none, plus the
/// largest new image while it is written (before it replaces the old one),
/// plus the growth of each (the images replaced first keep theirs while the
/// next is written).
pub fn needed(images: impl IntoIterator<Item = (u64, bool)>) -> u64 {
    let (mut backups, mut largest, mut count) = (0u64, 0u64, 0u64);
    for (len, backed_up) in images {
        if !backed_up {
            backups += len;
        }
        largest = largest.max(len);
        count += 1;
    }
    backups + largest + GROWTH * count.max(1)
}

/// Bytes /boot must have free for a generator that writes each new image
/// beside the old one and then renames it over it: the largest new image.
pub fn needed_beside(images: impl IntoIterator<Item = u64>) -> u64 {
    needed(images.into_iter().map(|len| (len, true)))
}

/// The refusal's words when the target's dracut cannot write its largest new
/// image beside the old one (luksify has it do so), shared with the step.
pub fn dracut_shortfall(avail: u64, needed: u64) -> Option<String> {
    shortfall_for(avail, needed, |mib| {
        format!(
            "the target's dracut needs about {mib} MiB there to write each new image beside the old one, which stays until the new one is complete"
        )
    })
}

/// The refusal's words for `avail` free against `needed` when luksify writes
/// the images, shared with the step.
pub fn shortfall(avail: u64, needed: u64) -> Option<String> {
    shortfall_for(avail, needed, |mib| {
        format!(
            "adding the unlock needs about {mib} MiB there (a backup of each initramfs and room to write the new one)"
        )
    })
}

/// "has N MiB free, but " and `what` says what needs the MiB it is given.
fn shortfall_for(avail: u64, needed: u64, what: impl Fn(u64) -> String) -> Option<String> {
    (avail < needed).then(|| {
        format!(
            "has {} MiB free, but {}",
            avail >> 20,
            what(needed.div_ceil(1 << 20))
        )
    })
}

/// Refuses, at plan time, a target whose /boot cannot hold what the initramfs
/// step writes there; silent when the probe could not tell (luksify's own
/// step checks again on the mounted file system).
pub fn check(t: &TargetOs) -> Result<(), Refusal> {
    let Some(space) = &t.boot_space else {
        return Ok(());
    };
    // Each kernel's image as /boot names it: (name, size, has a backup).
    let images: Vec<(String, u64, bool)> = (t.kernels.iter())
        .filter_map(|k| {
            image_names(t.initramfs_generator.as_deref(), k)
                .into_iter()
                .map(|n| n.trim_start_matches("/boot/").to_string())
                .find_map(|n| {
                    let len = *space.images.get(&n)?;
                    let backed_up = space.images.contains_key(&format!("{n}{BACKUP_SUFFIX}"));
                    Some((n, len, backed_up))
                })
        })
        .collect();
    let sizes = || images.iter().map(|(_, len, _)| *len);
    let detail = if !super::target_steps::uses_target_generator(t) {
        shortfall(
            space.avail_bytes,
            needed(images.iter().map(|(_, len, b)| (*len, *b))),
        )
    } else if t.initramfs_generator.as_deref() == Some("initramfs-tools") {
        // update-initramfs writes IMAGE.new beside each image (its backup is a
        // hard link), then renames it over the old one.
        shortfall_for(space.avail_bytes, needed_beside(sizes()), |mib| {
            format!(
                "the target's update-initramfs needs about {mib} MiB there to write each new image (with cryptsetup-initramfs's additions) beside the old one"
            )
        })
    } else {
        // A run cut short may have left new images; the step removes them first.
        let stale: u64 = (images.iter())
            .filter_map(|(n, _, _)| space.images.get(&format!("{n}{NEW_SUFFIX}")))
            .sum();
        dracut_shortfall(
            space.avail_bytes.saturating_add(stale),
            needed_beside(sizes()),
        )
    };
    match detail {
        Some(detail) => Err(Refusal::BootTooFull { detail }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::BootSpace;

    const MIB: u64 = 1 << 20;

    fn target(generator: &str, avail_mib: u64, images: &[(&str, u64)]) -> TargetOs {
        TargetOs {
            initramfs_generator: Some(generator.into()),
            kernels: vec!["6.1.0-28-amd64".into(), "6.1.0-30-amd64".into()],
            boot_space: Some(BootSpace {
                avail_bytes: avail_mib * MIB,
                images: images
                    .iter()
                    .map(|(n, m)| (n.to_string(), m * MIB))
                    .collect(),
            }),
            ..TargetOs::default()
        }
    }

    #[test]
    fn room_is_a_backup_of_each_image_without_one_plus_the_largest_plus_growth() {
        assert_eq!(
            needed([(30 * MIB, false), (40 * MIB, false)]),
            110 * MIB + 2 * GROWTH
        );
        assert_eq!(
            needed([(30 * MIB, true), (40 * MIB, false)]),
            80 * MIB + 2 * GROWTH
        );
        assert_eq!(needed([]), GROWTH);
    }

    #[test]
    fn a_boot_without_room_for_backups_and_the_new_image_is_refused_with_the_numbers() {
        let images = [
            ("initrd.img-6.1.0-28-amd64", 30),
            ("initrd.img-6.1.0-30-amd64", 40),
        ];
        // 30 + 40 backups, 40 for the new image, 16 of growth each: 142 MiB.
        let e = check(&target("initramfs-tools", 141, &images)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("has 141 MiB free"), "{text}");
        assert!(text.contains("about 142 MiB"), "{text}");
        assert!(text.contains("apt-get purge linux-image-OLD"), "{text}");
        assert!(check(&target("initramfs-tools", 142, &images)).is_ok());
    }

    #[test]
    fn existing_backups_and_the_generators_own_names_count() {
        // An interrupted run made one backup already: only the other needs one.
        let images = [
            ("initrd.img-6.1.0-28-amd64", 30),
            ("initrd.img-6.1.0-28-amd64.luksify-backup", 30),
            ("initrd.img-6.1.0-30-amd64", 40),
        ];
        assert!(check(&target("initramfs-tools", 112, &images)).is_ok());
        assert!(check(&target("initramfs-tools", 111, &images)).is_err());
        // nash names its images initrd-KVER.img.
        let nash = [
            ("initrd-6.1.0-28-amd64.img", 30),
            ("initrd-6.1.0-30-amd64.img", 40),
        ];
        assert!(check(&target("nash", 141, &nash)).is_err());
        assert!(check(&target("nash", 142, &nash)).is_ok());
    }

    #[test]
    fn update_initramfs_needs_room_for_the_largest_new_image_only() {
        let images = [
            ("initrd.img-6.1.0-28-amd64", 30),
            ("initrd.img-6.1.0-30-amd64", 40),
        ];
        let mut t = target("initramfs-tools", 71, &images);
        t.has_cryptsetup_initramfs = true;
        let e = check(&t).unwrap_err().to_string();
        assert!(e.contains("has 71 MiB free"), "{e}");
        assert!(e.contains("update-initramfs needs about 72 MiB"), "{e}");
        t.boot_space.as_mut().unwrap().avail_bytes = 72 * MIB;
        assert!(check(&t).is_ok());
    }

    #[test]
    fn dracut_needs_room_for_the_largest_new_image_beside_the_old_one() {
        // Debian's dracut keeps Debian's names; Fedora's are its own.
        let images = [
            ("initrd.img-6.1.0-28-amd64", 30),
            ("initramfs-6.1.0-30-amd64.img", 40),
        ];
        // 40 for the largest, 16 of growth each: 72 MiB.
        let e = check(&target("dracut", 71, &images))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has 71 MiB free"), "{e}");
        assert!(e.contains("dracut needs about 72 MiB"), "{e}");
        assert!(check(&target("dracut", 72, &images)).is_ok());
        // What an interrupted run left beside an image is removed before
        // dracut runs; beside another kernel's image, it stays.
        let left = [
            ("initrd.img-6.1.0-28-amd64", 30),
            ("initrd.img-6.1.0-28-amd64.luksify-new", 20),
            ("initramfs-6.1.0-30-amd64.img", 40),
            ("initrd.img-5.10.0-9-amd64.luksify-new", 100),
        ];
        assert!(check(&target("dracut", 52, &left)).is_ok());
        assert!(check(&target("dracut", 51, &left)).is_err());
    }

    #[test]
    fn an_unknown_boot_space_is_left_to_the_step() {
        let mut t = target("initramfs-tools", 0, &[]);
        t.boot_space = None;
        assert!(check(&t).is_ok());
    }
}
