//! The dry-run renderer: the plan as a person reads it, with the exact
//! command lines and file diffs.

use std::fmt::Write;

use similar::TextDiff;

use crate::plan::{Action, LuksVersion, Pbkdf, Plan};
use crate::sys::process::shell_quote;

fn quote_all(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `lvm pvmove -i 1 [SOURCE [DEST]]`: one-second progress reports instead of
/// the default fifteen; with no source it resumes interrupted moves.
pub fn pvmove_argv(source: Option<&str>, dest: Option<&str>) -> Vec<String> {
    ["lvm", "pvmove", "-i", "1"]
        .into_iter()
        .chain(source)
        .chain(dest)
        .map(String::from)
        .collect()
}

/// The command lines a step amounts to (what a person would type by hand).
pub fn commands(action: &Action) -> Vec<String> {
    match action {
        Action::Command { argv, stdin } => {
            let mut line = quote_all(argv);
            if let Some(s) = stdin {
                line = format!("printf '%s' {} | {line}", shell_quote(s));
            }
            vec![line]
        }
        Action::PvMove { source, dest, .. } => {
            vec![quote_all(&pvmove_argv(source.as_deref(), dest.as_deref()))]
        }
        Action::VgMetadataBackup { vg, path } => vec![format!(
            "lvm vgcfgbackup -f {} {}",
            path.as_deref()
                .map(shell_quote)
                .unwrap_or("<beside --header-backup>".into()),
            shell_quote(vg)
        )],
        Action::LuksFormat {
            device,
            uuid,
            options,
            sector_size,
            label,
        } => {
            let version = match options.version {
                LuksVersion::Luks1 => "luks1",
                LuksVersion::Luks2 => "luks2",
            };
            let pbkdf = match options.pbkdf {
                Pbkdf::Argon2id => "argon2id",
                Pbkdf::Argon2i => "argon2i",
                Pbkdf::Pbkdf2 => "pbkdf2",
            };
            let mut line = format!(
                "cryptsetup luksFormat --type {version} --cipher {} --key-size {} --pbkdf {pbkdf}",
                options.cipher, options.key_size_bits
            );
            if let Some(ms) = options.iter_time_ms {
                let _ = write!(line, " --iter-time {ms}");
            }
            if options.version == LuksVersion::Luks2 {
                let _ = write!(line, " --sector-size {sector_size} --label {label}");
            }
            let _ = write!(line, " --uuid {uuid} {}", shell_quote(device));
            vec![format!(
                "{line}   # through libcryptsetup; the passphrase is never on a command line"
            )]
        }
        Action::LuksHeaderBackup { device, path } => vec![format!(
            "cryptsetup luksHeaderBackup {} --header-backup-file {}",
            shell_quote(device),
            path.as_deref()
                .map(shell_quote)
                .unwrap_or("<--header-backup PATH>".into())
        )],
        Action::LuksOpen { device, name, .. } => vec![format!(
            "cryptsetup open --type luks {} {}",
            shell_quote(device),
            shell_quote(name)
        )],
        Action::MountTarget {
            root_device,
            boot_device,
            mount_point,
        } => {
            let mut v = vec![format!(
                "mount {} {}",
                shell_quote(root_device),
                shell_quote(mount_point)
            )];
            if let Some(b) = boot_device {
                v.push(format!(
                    "mount {} {}/boot",
                    shell_quote(b),
                    shell_quote(mount_point)
                ));
            }
            for fs in ["dev", "proc", "sys", "run"] {
                v.push(format!(
                    "mount --bind /{fs} {}/{fs}",
                    shell_quote(mount_point)
                ));
            }
            v
        }
        Action::Initramfs {
            target_root,
            kernels,
            generator,
            use_target_generator,
            luks_uuid,
            vg,
            root_lv,
            mapper_name,
        } => {
            if *use_target_generator {
                match generator.as_deref() {
                    Some("dracut") => std::iter::once(format!(
                        "write {target_root}{}   # dracut: crypt, lvm and /etc/crypttab in every image",
                        super::dracut_target::CONF_PATH
                    ))
                    .chain(kernels.iter().map(|k| {
                        format!(
                            "chroot {target_root} dracut --force IMAGE{new} {k}, then rename IMAGE{new} over IMAGE   # IMAGE: /boot/initrd.img-{k} on Debian, else /boot/initramfs-{k}.img",
                            new = super::dracut_target::NEW_SUFFIX
                        )
                    }))
                    .collect(),
                    _ => vec![format!("chroot {target_root} update-initramfs -u -k all")],
                }
            } else {
                kernels
                    .iter()
                    .flat_map(|k| {
                        let img = format!(
                            "{target_root}{}",
                            super::inject_target::image_names(generator.as_deref(), k)[0]
                        );
                        let new = format!("{img}.luksify-new");
                        let backup = super::inject_target::backup_of(std::path::Path::new(&img));
                        [
                            format!("cp -n {img} {}", backup.display()),
                            format!(
                                "luksify initrd inject --root {target_root} --kver {k} --luks-uuid {luks_uuid} --vg {vg} --lv {root_lv} --mapper {mapper_name} -o {new} {img}"
                            ),
                            format!("luksify initrd verify {new} --luks-uuid {luks_uuid} --vg {vg}"),
                            format!("mv {new} {img}"),
                        ]
                    })
                    .collect()
            }
        }
        Action::BootConfig { commands, .. } => commands.clone(),
        Action::Verify {
            target_root,
            luks_uuid,
            ..
        } => vec![
            format!("grep UUID={luks_uuid} {target_root}/etc/crypttab"),
            format!(
                "chroot {target_root} lsinitramfs /boot/initrd.img-KVER   # or lsinitrd, for each kernel"
            ),
        ],
        Action::CopyBoot {
            target_root,
            from_device,
            to_device,
            fstype,
        } => {
            let boot = format!("{target_root}/boot");
            let mut v = vec![format!(
                "mount -t {fstype} {} {boot}",
                shell_quote(to_device)
            )];
            if let Some(from) = from_device {
                let old = crate::plan::spare_boot::OLD_BOOT_MOUNT;
                let marker = crate::plan::spare_boot::COPY_MARKER;
                let ro = if fstype == "ext2" { "ro" } else { "ro,noload" };
                v.extend([
                    format!("mount -t {fstype} -o {ro} {} {old}", shell_quote(from)),
                    format!("cp -a {old}/. {boot}/   # unless {boot}/{marker} exists"),
                    format!("umount {old}"),
                    format!("sync; echo 'luksify copied /boot here from {from}' > {boot}/{marker}"),
                ]);
            }
            v
        }
        Action::RetargetBoot {
            target_root,
            new_uuid,
            ..
        } => vec![format!(
            "edit {target_root}/etc/fstab: /boot by UUID={new_uuid}   # backup: /etc/fstab.luksify-backup"
        )],
        Action::GrubInstall {
            target_root, disk, ..
        } => vec![
            format!(
                "chroot {target_root} grub-install --target=i386-pc {}",
                shell_quote(disk)
            ),
            format!(
                "echo 'grub-pc grub-pc/install_devices multiselect /dev/disk/by-id/…' | chroot {target_root} debconf-set-selections   # Debian: grub-pc upgrades reinstall on {disk}"
            ),
            format!("chroot {target_root} grub-mkconfig -o /boot/grub/grub.cfg   # = update-grub"),
        ],
        Action::UnmountTarget { mount_point } => {
            vec![format!("umount -R {}", shell_quote(mount_point))]
        }
    }
}

/// A unified diff with `a/` and `b/` prefixes, as `diff -u` prints it.
pub fn unified_diff(path: &str, before: Option<&str>, after: &str) -> String {
    let before_text = before.unwrap_or("");
    TextDiff::from_lines(before_text, after)
        .unified_diff()
        .context_radius(3)
        .header(
            &if before.is_some() {
                format!("a/{path}")
            } else {
                "/dev/null".into()
            },
            &format!("b/{path}"),
        )
        .to_string()
}

pub fn text(plan: &Plan) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Plan: encrypt volume group {} ({} strategy)",
        plan.vg,
        plan.strategy.name()
    );
    let _ = writeln!(o, "  original PV:    {}", plan.original_pv);
    let _ = writeln!(o, "  spare:          {}", plan.spare);
    let _ = writeln!(
        o,
        "  LUKS container: {} (UUID {})",
        plan.container, plan.luks_uuid
    );
    let _ = writeln!(o, "  opened as:      /dev/mapper/{}", plan.mapper_name);
    if let Some(r) = &plan.resumed {
        let _ = writeln!(
            o,
            "  resuming:       {r}; only the remaining steps are listed"
        );
    }
    let _ = writeln!(o);
    let width = plan.steps.len().to_string().len();
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(o, "{:>width$}. {}", i + 1, step.title);
        let pad = " ".repeat(width + 2);
        for c in commands(&step.action) {
            let _ = writeln!(o, "{pad}$ {c}");
        }
        if let Action::BootConfig {
            edits, complete, ..
        } = &step.action
        {
            if edits.is_empty() {
                let _ = writeln!(o, "{pad}(no file needs to change)");
            }
            for e in edits {
                for line in unified_diff(&e.path, e.before.as_deref(), &e.after).lines() {
                    let _ = writeln!(o, "{pad}{line}");
                }
            }
            let _ = writeln!(
                o,
                "{pad}{}",
                if *complete {
                    "(computed from the target's files as the probe read them; migrate computes them again on the mounted target and shows any difference)"
                } else {
                    "(crypttab only: this snapshot holds no view of the bootloader files; `luksify boot plan --root DIR` shows those diffs on a mounted target)"
                }
            );
        }
        if let Action::RetargetBoot { edit, .. } = &step.action {
            match edit {
                Some(e) => {
                    for line in unified_diff(&e.path, e.before.as_deref(), &e.after).lines() {
                        let _ = writeln!(o, "{pad}{line}");
                    }
                }
                None => {
                    let _ = writeln!(
                        o,
                        "{pad}(no diff to show: the snapshot holds no fstab text, or fstab already names the new /boot; migrate shows what it changes)"
                    );
                }
            }
        }
        let _ = writeln!(o, "{pad}why: {}", step.why);
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(o, "\nNotes:");
        for n in &plan.notes {
            let _ = writeln!(o, "  - {n}");
        }
    }
    o
}
