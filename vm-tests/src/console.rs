//! The guest's serial console: everything it prints is kept (and logged to a
//! file) so a test can wait for patterns, type lines after a prompt, and run
//! shell commands with their exit status coming back through printed markers.
//!
//! The marker protocol (see vm-notes): echo is turned off and PS1 emptied,
//! then each command is followed by `printf '@@%s@@\n' "END<n>:$?"`. The
//! typed text contains `@@%s@@`, never `@@END<n>:`, so even an echoed
//! command cannot be mistaken for its own completion.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use regex::bytes::Regex;

/// Longest line we type: the tty's canonical-mode buffer holds 4095 bytes.
const MAX_LINE: usize = 3000;
/// Between a no-echo prompt appearing and typing the secret.
const SECRET_PAUSE: Duration = Duration::from_millis(1500);

#[derive(Default)]
struct Shared {
    buf: Vec<u8>,
    closed: bool,
}

/// What a pattern matched, and everything printed before it since the last match.
#[derive(Debug, Clone)]
pub struct Match {
    pub before: Vec<u8>,
    pub groups: Vec<Option<String>>,
}

/// Exact stdout and stderr of a command run in the guest.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

pub struct Console {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    writer: UnixStream,
    log: Arc<Mutex<File>>,
    log_path: PathBuf,
    /// Everything before this offset has been consumed by a match.
    cursor: usize,
    next_tag: u64,
    attached: Instant,
    /// Extra text for error messages (QEMU's own stderr).
    diagnostics: Box<dyn Fn() -> String + Send>,
}

impl Console {
    /// Starts reading from `stream`; all output goes to `log_path` too.
    pub fn attach(
        stream: UnixStream,
        log_path: &Path,
        diagnostics: Box<dyn Fn() -> String + Send>,
    ) -> Result<Console> {
        let log = File::create(log_path)
            .with_context(|| format!("creating console log {}", log_path.display()))?;
        let log = Arc::new(Mutex::new(log));
        let shared: Arc<(Mutex<Shared>, Condvar)> = Arc::default();
        let mut reader = stream.try_clone().context("cloning the console socket")?;
        let (sh, lg) = (shared.clone(), log.clone());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                let n = reader.read(&mut chunk).unwrap_or(0);
                let (lock, cv) = &*sh;
                let mut s = lock.lock().unwrap();
                if n == 0 {
                    s.closed = true;
                    cv.notify_all();
                    return;
                }
                s.buf.extend_from_slice(&chunk[..n]);
                let _ = lg.lock().unwrap().write_all(&chunk[..n]);
                cv.notify_all();
            }
        });
        Ok(Console {
            shared,
            writer: stream,
            log,
            log_path: log_path.to_path_buf(),
            cursor: 0,
            next_tag: 0,
            attached: Instant::now(),
            diagnostics,
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `n` bytes the guest printed, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let s = self.shared.0.lock().unwrap();
        let start = s.buf.len().saturating_sub(n);
        String::from_utf8_lossy(&s.buf[start..]).replace('\r', "")
    }

    /// Puts a host-side note, stamped with seconds since the console
    /// attached, into the log between the guest's output.
    fn note(&self, what: &str) {
        let secs = self.attached.elapsed().as_secs_f64();
        let _ = write!(
            self.log.lock().unwrap(),
            "\n[vm-tests +{secs:.1}s: {what}]\n"
        );
    }

    /// Waits until `pattern` appears in output not yet consumed.
    pub fn wait_for(&mut self, pattern: &str, timeout: Duration) -> Result<Match> {
        let re = Regex::new(pattern).with_context(|| format!("bad pattern {pattern:?}"))?;
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().unwrap();
        loop {
            if let Some(c) = re.captures(&s.buf[self.cursor..]) {
                let whole = c.get(0).unwrap();
                let before = s.buf[self.cursor..self.cursor + whole.start()].to_vec();
                let groups = c
                    .iter()
                    .skip(1)
                    .map(|g| g.map(|g| String::from_utf8_lossy(g.as_bytes()).into_owned()))
                    .collect();
                self.cursor += whole.end();
                drop(s);
                self.note(&format!("matched {pattern:?}"));
                return Ok(Match { before, groups });
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                let why = if s.closed {
                    "the guest's console closed (QEMU exited)"
                } else {
                    "timed out"
                };
                drop(s);
                bail!(
                    "{why} after waiting {:?} for {pattern:?} on the guest console.\n--- console tail ---\n{}\n--- end (full log: {}) ---{}",
                    timeout,
                    self.tail(3000),
                    self.log_path.display(),
                    (self.diagnostics)()
                );
            }
            s = cv.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .and_then(|_| self.writer.flush())
            .context("writing to the guest console")
    }

    /// Types a line. Call it only after the guest showed its prompt (use
    /// [`Console::send_line_after`]): a program turning off echo flushes
    /// input that arrived earlier.
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        if line.len() > MAX_LINE {
            bail!(
                "console line of {} bytes is longer than the tty accepts",
                line.len()
            );
        }
        self.note(&format!("typed: {line}"));
        self.write_raw(format!("{line}\n").as_bytes())
    }

    /// Waits for `prompt`, then types `line`.
    pub fn send_line_after(&mut self, prompt: &str, line: &str, timeout: Duration) -> Result<()> {
        self.wait_for(prompt, timeout)?;
        self.send_line(line)
    }

    /// Waits for `prompt`, pauses as a person would, then types a secret;
    /// the log records only that a secret was typed. The pause matters:
    /// cryptsetup's and dialoguer's no-echo prompts print the prompt, then
    /// discard input typed before they read, and under load that window
    /// lost the first characters of a passphrase.
    pub fn send_secret_after(
        &mut self,
        prompt: &str,
        secret: &[u8],
        timeout: Duration,
    ) -> Result<()> {
        self.wait_for(prompt, timeout)?;
        std::thread::sleep(SECRET_PAUSE);
        self.note("typed a secret");
        let mut data = secret.to_vec();
        data.push(b'\n');
        self.write_raw(&data)
    }

    /// Types a secret now; the log records only that a secret was typed.
    /// For prompts that need a pause between appearing and reading (see
    /// `wizard_driver`); otherwise use [`Console::send_secret_after`].
    pub fn send_secret(&mut self, secret: &[u8]) -> Result<()> {
        self.note("typed a secret");
        let mut data = secret.to_vec();
        data.push(b'\n');
        self.write_raw(&data)
    }

    /// Sends bytes exactly as a terminal would (keys of a person at a relay).
    /// Not logged: they may be a passphrase (the guest's echo, if any, is).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_raw(bytes)
    }

    /// Output not yet consumed, waiting up to `wait` for some to arrive;
    /// consumes it. `None` once the console closed and nothing is left.
    pub fn take_output(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().unwrap();
        if s.buf.len() == self.cursor && !s.closed {
            s = cv.wait_timeout(s, wait).unwrap().0;
        }
        if s.buf.len() == self.cursor {
            return if s.closed { None } else { Some(Vec::new()) };
        }
        let out = s.buf[self.cursor..].to_vec();
        self.cursor = s.buf.len();
        Some(out)
    }

    /// Waits for the shell's `prompt`, then switches to the marker protocol:
    /// echo off, empty prompts.
    pub fn init_shell(&mut self, prompt: &str, timeout: Duration) -> Result<()> {
        self.send_line_after(
            prompt,
            "stty -echo; PS1=''; PS2=''; printf '@@%s@@\\n' SHELL-READY",
            timeout,
        )?;
        self.wait_for("@@SHELL-READY@@\r?\n", Duration::from_secs(30))?;
        Ok(())
    }

    /// Runs a shell command (stdin is the console) and returns its exit code
    /// and what it printed, `\r\n` turned into `\n`.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        self.next_tag += 1;
        let tag = self.next_tag;
        self.send_line(&format!("{cmd}\nprintf '@@%s@@\\n' \"END{tag}:$?\""))?;
        let m = self
            .wait_for(&format!(r"@@END{tag}:(\d+)@@\r?\n"), timeout)
            .with_context(|| format!("running `{cmd}` in the guest"))?;
        let code = m.groups[0].as_deref().unwrap_or("").parse()?;
        Ok((code, String::from_utf8_lossy(&m.before).replace('\r', "")))
    }

    /// Runs a command and fails unless it exits 0; returns its output.
    pub fn run_ok(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let (code, out) = self.run(cmd, timeout)?;
        if code != 0 {
            bail!("`{cmd}` failed in the guest with exit code {code}:\n{out}");
        }
        Ok(out)
    }

    /// Runs a command with stdin from /dev/null and returns its exact stdout
    /// and stderr (carried back base64-encoded).
    pub fn exec(&mut self, cmd: &str, timeout: Duration) -> Result<ExecOutput> {
        self.next_tag += 1;
        let tag = self.next_tag;
        let line = format!(
            "{{ {cmd}\n}} >/tmp/.vm-o 2>/tmp/.vm-e </dev/null; r=$?; printf '@@%s@@\\n' OUT{tag}; base64 /tmp/.vm-o; \
             printf '@@%s@@\\n' ERR{tag}; base64 /tmp/.vm-e; printf '@@%s@@\\n' \"END{tag}:$r\""
        );
        self.send_line(&line)?;
        let deadline = Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        let what = || format!("running `{cmd}` in the guest");
        self.wait_for(&format!(r"@@OUT{tag}@@\r?\n"), left())
            .with_context(what)?;
        let out = self
            .wait_for(&format!(r"@@ERR{tag}@@\r?\n"), left())
            .with_context(what)?;
        let end = self
            .wait_for(&format!(r"@@END{tag}:(\d+)@@\r?\n"), left())
            .with_context(what)?;
        Ok(ExecOutput {
            code: end.groups[0].as_deref().unwrap_or("").parse()?,
            stdout: decode_base64(&out.before)?,
            stderr: decode_base64(&end.before)?,
        })
    }

    /// Writes `data` to a file in the guest, in chunks short enough for the tty.
    pub fn put_file(&mut self, guest_path: &str, data: &[u8], timeout: Duration) -> Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        self.run_ok(": > /tmp/.vm-in", timeout)?;
        for chunk in b64.as_bytes().chunks(2000) {
            let chunk = std::str::from_utf8(chunk)?;
            self.run_ok(&format!("printf '%s\\n' '{chunk}' >> /tmp/.vm-in"), timeout)?;
        }
        self.run_ok(
            &format!("base64 -d /tmp/.vm-in > '{guest_path}' && rm /tmp/.vm-in"),
            timeout,
        )?;
        Ok(())
    }

    /// Copies a guest directory's contents to `host_dir` (created if needed)
    /// through a tar stream.
    pub fn fetch_dir(&mut self, guest_dir: &str, host_dir: &Path, timeout: Duration) -> Result<()> {
        let out = self.exec(&format!("tar -C '{guest_dir}' -cf - ."), timeout)?;
        if out.code != 0 {
            bail!(
                "packing {guest_dir} in the guest failed: {}",
                out.stderr_str()
            );
        }
        std::fs::create_dir_all(host_dir)?;
        luksify::sys::process::Cmd::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(host_dir)
            .arg("-f")
            .arg("-")
            .stdin_bytes(out.stdout)
            .run()
            .with_context(|| {
                format!(
                    "unpacking {guest_dir} from the guest into {}",
                    host_dir.display()
                )
            })?;
        Ok(())
    }
}

/// Decodes base64 that went through a tty (line breaks, `\r`).
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>> {
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .context("decoding base64 from the guest console")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A console whose "guest" is a real shell on the other end of a socket
    /// pair, so the protocol is tested against sh's real behaviour.
    fn shell_console() -> (Console, std::process::Child, tempfile::TempDir) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let fd_in = theirs.try_clone().unwrap();
        let child = std::process::Command::new("sh")
            .arg("-i")
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(fd_in)))
            .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs.try_clone().unwrap(),
            )))
            .stderr(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs,
            )))
            .env("PS1", "test$ ")
            .spawn()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = Console::attach(ours, &dir.path().join("log"), Box::new(String::new)).unwrap();
        (c, child, dir)
    }

    #[test]
    fn run_exec_and_files_round_trip_through_a_shell() {
        let (mut c, mut child, dir) = shell_console();
        let t = Duration::from_secs(10);
        // No tty here, so stty fails; PS1 is still emptied and the marker still comes.
        c.init_shell(r"test\$ ", t).unwrap();
        let (code, out) = c.run("echo hello; false", t).unwrap();
        assert_eq!((code, out.as_str()), (1, "hello\n"));
        let (code, _) = c.run("sleep 0 &", t).unwrap();
        assert_eq!(code, 0);

        let e = c
            .exec("printf 'a\\0b'; echo oops >&2; (exit 3)", t)
            .unwrap();
        assert_eq!(
            (e.code, e.stdout.as_slice(), e.stderr.as_slice()),
            (3, &b"a\0b"[..], &b"oops\n"[..])
        );

        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let guest_dir = dir.path().join("g");
        std::fs::create_dir(&guest_dir).unwrap();
        c.put_file(&guest_dir.join("f").display().to_string(), &data, t)
            .unwrap();
        let host_dir = dir.path().join("h");
        c.fetch_dir(&guest_dir.display().to_string(), &host_dir, t)
            .unwrap();
        assert_eq!(std::fs::read(host_dir.join("f")).unwrap(), data);

        let err = c
            .wait_for("never-printed", Duration::from_millis(200))
            .unwrap_err();
        assert!(format!("{err:#}").contains("console tail"), "{err:#}");
        child.kill().unwrap();
        let _ = child.wait();
        assert!(
            std::fs::read_to_string(c.log_path())
                .unwrap()
                .contains("typed: echo hello")
        );
    }

    #[test]
    fn base64_across_tty_lines() {
        assert_eq!(decode_base64(b"aGVs\r\nbG8=\r\n").unwrap(), b"hello");
    }
}
