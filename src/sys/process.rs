//! The one way luksify runs another program. It logs the command line, captures
//! the output, and has no way to put a secret into argv or the environment:
//! secrets can only travel through the child's stdin.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use zeroize::Zeroizing;

use super::secret::Passphrase;

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// With verbose on, every command line is echoed to stderr before it runs.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// A program to run with its arguments and what its stdin gets.
#[derive(Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Stdin,
}

#[derive(Debug)]
enum Stdin {
    Null,
    Bytes(Vec<u8>),
    Secret(Passphrase),
}

/// What a finished program left behind.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A program that ran but failed. The message names the command and ends with
/// what it printed on stderr, so the person sees the tool's own words.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed ({status}){}", stderr_tail(.stderr))]
pub struct CommandFailed {
    pub command: String,
    pub status: String,
    pub stderr: String,
}

fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(6);
    format!(": {}", lines[start..].join(" | "))
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: Stdin::Null,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable. Only for configuration, never secrets.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    pub fn stdin_bytes(mut self, data: Vec<u8>) -> Self {
        self.stdin = Stdin::Bytes(data);
        self
    }

    /// Hands a secret to the child on stdin; it is not logged.
    pub fn stdin_secret(mut self, secret: &Passphrase) -> Self {
        self.stdin = Stdin::Secret(Passphrase::from_bytes(secret.expose().to_vec()));
        self
    }

    /// The command line as a person would type it, shell-quoted.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(self.args.iter())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn spawn(&self, stdout: Stdio) -> Result<std::process::Child> {
        if VERBOSE.load(Ordering::Relaxed) {
            eprintln!("+ {}", self.display());
        }
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(stdout)
            .stderr(Stdio::piped())
            .stdin(match self.stdin {
                Stdin::Null => Stdio::null(),
                _ => Stdio::piped(),
            });
        let mut child = c
            .spawn()
            .with_context(|| format!("starting `{}`", self.display()))?;
        let data: Option<Zeroizing<Vec<u8>>> = match &self.stdin {
            Stdin::Null => None,
            Stdin::Bytes(b) => Some(Zeroizing::new(b.clone())),
            Stdin::Secret(s) => Some(Zeroizing::new(s.expose().to_vec())),
        };
        if let (Some(data), Some(mut pipe)) = (data, child.stdin.take()) {
            // A child that exits without reading its stdin is not our error;
            // its exit status tells what happened.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        Ok(child)
    }

    /// Runs to completion and returns the output whatever the exit status.
    pub fn output(&self) -> Result<Output> {
        let child = self.spawn(Stdio::piped())?;
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for `{}`", self.display()))?;
        Ok(Output {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs to completion; a non-zero exit is an error naming the command.
    pub fn run(&self) -> Result<Output> {
        let out = self.output()?;
        if out.success() {
            Ok(out)
        } else {
            Err(self.failed(&out).into())
        }
    }

    /// Runs, handing each line of stdout to `on_line` as it arrives (pvmove
    /// progress); a non-zero exit is an error.
    pub fn run_streaming(&self, mut on_line: impl FnMut(&str)) -> Result<Output> {
        let mut child = self.spawn(Stdio::piped())?;
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr_thread = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr_pipe.read_to_end(&mut s);
            s
        });
        let mut stdout = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            for line in BufReader::new(pipe).split(b'\n') {
                let line = line.with_context(|| format!("reading from `{}`", self.display()))?;
                on_line(&String::from_utf8_lossy(&line));
                stdout.extend_from_slice(&line);
                stdout.push(b'\n');
            }
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for `{}`", self.display()))?;
        let stderr = stderr_thread.join().unwrap_or_default();
        let out = Output {
            code: status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        if out.success() {
            Ok(out)
        } else {
            Err(self.failed(&out).into())
        }
    }

    fn failed(&self, out: &Output) -> CommandFailed {
        CommandFailed {
            command: self.display(),
            status: match out.code {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".into(),
            },
            stderr: out.stderr.clone(),
        }
    }
}

/// Quotes a word for a POSIX shell, leaving plain words alone.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_reaches_stdin_but_not_the_command_line() {
        let secret = Passphrase::from_bytes(b"s3cr3t pass".to_vec());
        let cmd = Cmd::new("cat").stdin_secret(&secret);
        assert!(!cmd.display().contains("s3cr3t"));
        assert!(!format!("{cmd:?}").contains("s3cr3t"));
        assert_eq!(cmd.run().unwrap().stdout, b"s3cr3t pass");
    }

    #[test]
    fn failure_names_command_and_stderr() {
        let err = Cmd::new("sh")
            .args(["-c", "echo 'Volume group \"vg0\" not found' >&2; exit 5"])
            .run()
            .unwrap_err()
            .to_string();
        assert!(err.contains("exit status 5"), "{err}");
        assert!(err.contains("Volume group \"vg0\" not found"), "{err}");
        assert!(err.contains("sh -c"), "{err}");
    }

    #[test]
    fn streaming_sees_each_line() {
        let mut seen = Vec::new();
        Cmd::new("printf")
            .arg("a\\nb\\n")
            .run_streaming(|l| seen.push(l.to_string()))
            .unwrap();
        assert_eq!(seen, ["a", "b"]);
    }

    #[test]
    fn quoting_is_shell_safe() {
        assert_eq!(shell_quote("/dev/vda2"), "/dev/vda2");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
