//! Starting and stopping QEMU guests: kernel/initrd or disk boot, virtio raw
//! disks, the serial console on a unix socket handed to a [`Console`].

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::console::Console;
use crate::logs;

static CHOICE: OnceLock<Accel> = OnceLock::new();

/// The accelerator chosen by an earlier [`accel`] call in this process.
pub fn probed_accel() -> Option<Accel> {
    CHOICE.get().copied()
}

/// How the guest's CPU is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// KVM when it really works on this host (nested KVM often aborts QEMU),
/// TCG otherwise. `LUKSIFY_VM_ACCEL=tcg|kvm` skips the probe.
pub fn accel(probe_kernel: &Path) -> Accel {
    *CHOICE.get_or_init(|| match std::env::var("LUKSIFY_VM_ACCEL").as_deref() {
        Ok("kvm") => Accel::Kvm,
        Ok("tcg") => Accel::Tcg,
        _ => {
            if kvm_boots(probe_kernel) {
                Accel::Kvm
            } else {
                Accel::Tcg
            }
        }
    })
}

/// Boots `kernel` without a root under KVM: if it gets as far as the panic
/// about the missing root fs, KVM works.
fn kvm_boots(kernel: &Path) -> bool {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return false;
    }
    let Ok(mut child) = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-m",
            "256",
            "-display",
            "none",
            "-nodefaults",
        ])
        .args(["-no-reboot", "-serial", "stdio", "-kernel"])
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out);
    out.contains("Kernel panic")
}

#[derive(Debug, Clone)]
struct Disk {
    path: PathBuf,
    serial: Option<String>,
    snapshot: bool,
}

/// Describes a guest; [`GuestBuilder::start`] boots it.
#[derive(Debug, Clone)]
pub struct GuestBuilder {
    name: String,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: String,
    disks: Vec<Disk>,
    memory_mib: u32,
    cpus: u32,
    accel: Option<Accel>,
    extra_args: Vec<String>,
}

impl GuestBuilder {
    /// `name` names the console log: target/vm-logs/<name>-<n>.log.
    pub fn new(name: &str) -> Self {
        GuestBuilder {
            name: name.to_string(),
            kernel: None,
            initrd: None,
            append: String::new(),
            disks: Vec::new(),
            memory_mib: 1024,
            cpus: 2,
            accel: None,
            extra_args: Vec::new(),
        }
    }

    /// Direct kernel boot; without it the guest boots from its first disk.
    pub fn kernel(mut self, path: impl Into<PathBuf>) -> Self {
        self.kernel = Some(path.into());
        self
    }

    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.initrd = Some(path.into());
        self
    }

    pub fn append(mut self, cmdline: impl Into<String>) -> Self {
        self.append = cmdline.into();
        self
    }

    /// Adds a virtio raw disk (vda, vdb, ... in order of adding).
    pub fn disk(mut self, path: impl Into<PathBuf>) -> Self {
        self.disks.push(Disk {
            path: path.into(),
            serial: None,
            snapshot: false,
        });
        self
    }

    /// Adds a virtio raw disk the guest sees with this serial number.
    pub fn disk_with_serial(mut self, path: impl Into<PathBuf>, serial: &str) -> Self {
        self.disks.push(Disk {
            path: path.into(),
            serial: Some(serial.to_string()),
            snapshot: false,
        });
        self
    }

    /// Adds a disk whose writes go to a throw-away overlay: the image file
    /// (e.g. a cached, prepared target disk) stays untouched.
    pub fn disk_snapshot(mut self, path: impl Into<PathBuf>, serial: &str) -> Self {
        self.disks.push(Disk {
            path: path.into(),
            serial: Some(serial.to_string()),
            snapshot: true,
        });
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// Forces an accelerator instead of probing for a working KVM.
    pub fn accel(mut self, accel: Accel) -> Self {
        self.accel = Some(accel);
        self
    }

    pub fn qemu_arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// The QEMU command line (without the console chardev).
    fn args(&self, accel: Accel) -> Vec<String> {
        let mut a: Vec<String> = match accel {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
        .map(String::from)
        .to_vec();
        a.extend(
            [
                "-smp",
                &self.cpus.to_string(),
                "-m",
                &self.memory_mib.to_string(),
                "-display",
                "none",
                "-no-reboot",
                "-nodefaults",
                "-monitor",
                "none",
            ]
            .map(String::from),
        );
        if let Some(k) = &self.kernel {
            a.push("-kernel".into());
            a.push(k.display().to_string());
            if let Some(i) = &self.initrd {
                a.push("-initrd".into());
                a.push(i.display().to_string());
            }
            a.push("-append".into());
            a.push(self.append.clone());
        }
        for (i, d) in self.disks.iter().enumerate() {
            a.push("-drive".into());
            a.push(format!(
                "file={},if=none,id=d{i},format=raw,cache=unsafe{}",
                d.path.display().to_string().replace(',', ",,"),
                if d.snapshot { ",snapshot=on" } else { "" }
            ));
            a.push("-device".into());
            let mut dev = format!("virtio-blk-pci,drive=d{i}");
            if let Some(s) = &d.serial {
                dev.push_str(&format!(",serial={s}"));
            }
            if i == 0 && self.kernel.is_none() {
                dev.push_str(",bootindex=0");
            }
            a.push(dev);
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// Boots the guest and attaches to its console.
    pub fn start(self) -> Result<Guest> {
        let probe = self.kernel.clone().unwrap_or_default();
        let accel = if self.kernel.is_some() {
            accel(&probe)
        } else {
            Accel::Tcg
        };
        let dir = tempfile::Builder::new().prefix("luksify-vm-").tempdir()?;
        let sock = dir.path().join("console.sock");
        let stderr_path = dir.path().join("qemu.stderr");
        let mut args = self.args(accel);
        args.extend([
            "-chardev".into(),
            format!("socket,id=s0,path={},server=on,wait=off", sock.display()),
            "-serial".into(),
            "chardev:s0".into(),
        ]);
        let log_path = logs::next_log_path(&self.name)?;
        let mut child = Command::new("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .context("starting qemu-system-x86_64 (is qemu-system-x86 installed?)")?;
        let stream = connect(&sock, &mut child, &stderr_path)?;
        let err_path = stderr_path.clone();
        let console = Console::attach(
            stream,
            &log_path,
            Box::new(move || {
                let s = std::fs::read_to_string(&err_path).unwrap_or_default();
                if s.trim().is_empty() {
                    String::new()
                } else {
                    format!("\nQEMU stderr:\n{s}")
                }
            }),
        )?;
        Ok(Guest {
            child,
            console,
            _dir: dir,
            started: Instant::now(),
            accel,
            qemu_args: args,
        })
    }
}

fn connect(sock: &Path, child: &mut Child, stderr: &Path) -> Result<UnixStream> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = UnixStream::connect(sock) {
            return Ok(s);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "QEMU exited ({status}) before its console came up: {}",
                std::fs::read_to_string(stderr).unwrap_or_default().trim()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "QEMU's console socket {} did not appear within 30 s",
                sock.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running guest. Dropping it kills QEMU.
pub struct Guest {
    child: Child,
    console: Console,
    _dir: tempfile::TempDir,
    started: Instant,
    pub accel: Accel,
    pub qemu_args: Vec<String>,
}

impl Guest {
    pub fn console(&mut self) -> &mut Console {
        &mut self.console
    }

    /// Time since QEMU was started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Pulls the plug: SIGKILL to QEMU, the guest gets no chance to flush.
    pub fn kill_9(&mut self) -> Result<()> {
        self.child.kill().context("killing QEMU")?;
        self.child.wait()?;
        Ok(())
    }

    /// Waits for QEMU to exit by itself (guest powered off or rebooted
    /// under -no-reboot).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "the guest did not power off within {timeout:?}.\n--- console tail ---\n{}",
                    self.console.tail(2000)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Syncs and powers the guest off through its shell, then waits for QEMU.
    pub fn poweroff(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.console.send_line("sync; poweroff -f")?;
        self.wait_exit(timeout)
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_has_disks_console_free_and_escaped_commas() {
        let args = GuestBuilder::new("t")
            .kernel("/k")
            .initrd("/i")
            .append("console=ttyS0")
            .disk("/a,b.img")
            .disk_with_serial("/c.img", "spare")
            .disk_snapshot("/base.img", "base")
            .args(Accel::Tcg);
        let s = args.join(" ");
        assert!(s.starts_with("-accel tcg -cpu max -smp 2 -m 1024"), "{s}");
        assert!(
            s.contains("file=/a,,b.img,if=none,id=d0,format=raw,cache=unsafe"),
            "{s}"
        );
        assert!(s.contains("virtio-blk-pci,drive=d1,serial=spare"), "{s}");
        assert!(
            s.contains("file=/base.img,if=none,id=d2,format=raw,cache=unsafe,snapshot=on"),
            "{s}"
        );
        assert!(!s.contains("id=d1,format=raw,cache=unsafe,snapshot"), "{s}");
        assert!(
            s.contains("-kernel /k -initrd /i -append console=ttyS0"),
            "{s}"
        );
        assert!(!s.contains("bootindex"), "{s}");
    }
}
