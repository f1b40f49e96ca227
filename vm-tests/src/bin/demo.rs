//! `cargo xtask demo`: a Debian 12 machine with root on LVM, encrypted by
//! luksify from a live system, then booted and unlocked.
//!
//! Interactive (the default): your terminal becomes the live system's serial
//! console; you run `luksify migrate`, answer its questions and type the
//! passphrase; after `poweroff -f` the migrated disk boots alone and you type
//! the passphrase at its unlock prompt. `--non-interactive` (CI) answers the
//! same conversation with the wizard driver and checks the unlocked boot.
//!
//! The disk images stay in target/demo/; console logs in target/vm-logs/.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use vm_tests::console::Console;
use vm_tests::disk::{self, MIB};
use vm_tests::guest_kernel::GuestKernel;
use vm_tests::live_env::{self, PROMPT};
use vm_tests::qemu::GuestBuilder;
use vm_tests::relay::{self, Ended};
use vm_tests::unlock_boot::{self, BootCheck};
use vm_tests::wizard_driver::{self, Answers};
use vm_tests::{logs, luksify_bin, target_disk};

/// The passphrase of the non-interactive run (a demo disk; nothing to protect).
const DEMO_PASSPHRASE: &str = "luksify-demo-passphrase";
const T: Duration = Duration::from_secs(300);

fn say(s: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        eprintln!("\n\x1b[1mdemo:\x1b[0m {s}");
    } else {
        eprintln!("\ndemo: {s}");
    }
}

fn main() {
    let non_interactive = std::env::args().skip(1).any(|a| a == "--non-interactive");
    if let Err(e) = run(non_interactive) {
        eprintln!("\ndemo failed: {e:#}");
        std::process::exit(1);
    }
}

fn run(non_interactive: bool) -> Result<()> {
    use std::io::IsTerminal;
    if !non_interactive && !std::io::stdin().is_terminal() {
        bail!(
            "the interactive demo needs a terminal to type into; without one, run it with --non-interactive"
        );
    }
    let t0 = Instant::now();
    say(
        "building what the VM needs: Debian's kernel, the demo target disk (a debootstrapped Debian 12, \
         root and swap on LVM, GRUB), luksify in release mode and the live system. \
         The first time this takes a few minutes; afterwards it is cached in ~/.cache/luksify.",
    );
    let kernel = GuestKernel::debian_current()?;
    let disk = target_disk::build(&kernel)?;
    let luksify = luksify_bin::release()?;
    let live = live_env::build(&kernel, &[luksify])?;
    let dir = logs::target_dir().join("demo");
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let target = dir.join("target.img");
    let spare = dir.join("spare.img");
    let _ = std::fs::remove_file(&target);
    let _ = std::fs::remove_file(&spare);
    disk.copy_to(&target)?;
    disk::create_sparse(&spare, (disk.root_mib + 512) * MIB)?;
    say(&format!("ready in {:.0?}.", t0.elapsed()));

    say(
        "booting the live system (\"the live CD\") with the target disk /dev/vda and an empty spare /dev/vdb (emulated CPU: ~10-20 s)...",
    );
    let mut g = GuestBuilder::new("demo-live")
        .kernel(&live.kernel)
        .initrd(&live.initrd)
        .append(&live.append)
        .disk_with_serial(&target, "target")
        .disk_with_serial(&spare, "spare")
        .start()?;
    let c = g.console();
    c.wait_for("luksify-live: ready", T)?;
    let t_migrate = Instant::now();
    let uuid = if non_interactive {
        Some(migrate_driven(c)?)
    } else {
        c.wait_for(PROMPT, T)?;
        say(
            "you are at the live system's root shell, on its serial console. The installed system \
             is on /dev/vda (volume group vg0); /dev/vdb is empty. Run\n\n    luksify migrate\n\n\
             and answer its questions (under emulation, adding `--pbkdf pbkdf2 --iter-time 1000` makes \
             the key derivation quicker; the default argon2id works too). When it has finished, type\n\n    \
             sync; poweroff -f\n\nto shut the live system down. Ctrl-] leaves the demo at any time.\n",
        );
        // What a person does first on a live CD that does not activate LVM.
        print!("{PROMPT}");
        c.send_line("vgchange -ay vg0")?;
        match relay::relay(c)?.0 {
            Ended::GuestExited => None,
            Ended::Detached => {
                say("left the live system; the demo stops here (the guest is stopped).");
                return Ok(());
            }
        }
    };
    let migrate_time = t_migrate.elapsed();
    g.wait_exit(Duration::from_secs(60))?;
    drop(g);

    let t_boot = Instant::now();
    let report = if let Some(uuid) = &uuid {
        say(
            "booting the migrated disk alone (the spare detached) and typing the passphrase at its unlock prompt...",
        );
        let r = unlock_boot::boot_and_unlock("demo-boot", &target, DEMO_PASSPHRASE)?;
        r.verify_migrated(Some(uuid))?;
        r
    } else {
        say(
            "booting the target disk through SeaBIOS, then its GRUB, then its \
             kernel and initramfs, which ask \"Please unlock disk ...:\". Type your passphrase. The \
             target then checks its files and powers off (about a minute under emulation).\n",
        );
        // After spare-keep the data, /boot and GRUB live on the spare: it
        // boots alone, the original detached.
        let keep = spare_in_use(&spare);
        if keep {
            say(
                "the spare carries the volume group, its own /boot and GRUB now (spare-keep): it boots alone, the original disk detached.",
            );
        }
        let mut g =
            unlock_boot::boot_target("demo-boot", if keep { &spare } else { &target }, None)?;
        let (ended, seen) = relay::relay(g.console())?;
        if ended == Ended::Detached {
            say("left the target's console; the demo stops here.");
            return Ok(());
        }
        BootCheck::from_text(&String::from_utf8_lossy(&seen))
    };
    eprintln!();
    match report.verify_migrated(uuid.as_deref()) {
        Ok(()) => say(&format!(
            "the migrated disk booted through GRUB, unlocked with the passphrase, and its root is on \
             the LUKS container with every file intact and swap working.\n\
             timings: preparation and live boot {:.0?}, migration {:.0?}, boot + unlock + check {:.0?}; total {:.0?}.\n\
             Disk images: {}; console logs: {}.",
            t_migrate - t0,
            migrate_time,
            t_boot.elapsed(),
            t0.elapsed(),
            dir.display(),
            dir.with_file_name("vm-logs").display()
        )),
        Err(e) if uuid.is_none() => say(&format!(
            "the target booted, but it does not look migrated: {e:#}"
        )),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The conversation answered by the wizard driver; returns the LUKS UUID.
fn migrate_driven(c: &mut Console) -> Result<String> {
    c.init_shell(PROMPT, T)?;
    sh(c, "vgchange -ay vg0")?;
    say("running `luksify migrate` and answering its questions on the serial console...");
    let out = wizard_driver::migrate(
        c,
        "--pbkdf pbkdf2 --iter-time 100",
        &Answers {
            spare: "1".into(),
            strategy: "spare-return".into(),
            header_backup: "/root/vg0.luks-header".into(),
            passphrase: DEMO_PASSPHRASE.into(),
            recovery: false,
            vg: "vg0".into(),
        },
        Duration::from_secs(1800),
    )?;
    eprintln!("{}", out.transcript);
    if out.code != 0 {
        bail!("luksify migrate exited with {}", out.code);
    }
    wizard_driver::assert_not_in_log(c.log_path(), DEMO_PASSPHRASE)?;
    let uuid = sh(c, "cryptsetup luksUUID /dev/vda2")?.trim().to_string();
    c.send_line("sync; poweroff -f")?;
    Ok(uuid)
}

fn sh(c: &mut Console, cmd: &str) -> Result<String> {
    let out = c.exec(cmd, T)?;
    if out.code != 0 {
        bail!(
            "`{cmd}` failed in the live system: {}{}",
            out.stdout_str(),
            out.stderr_str()
        );
    }
    Ok(out.stdout_str())
}

/// Does the spare image carry any signature (a LUKS header, an LVM label)?
fn spare_in_use(spare: &std::path::Path) -> bool {
    std::process::Command::new("blkid")
        .arg("-p")
        .arg(spare)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
