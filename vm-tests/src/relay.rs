//! The person's own terminal connected to a guest's serial console, as if it
//! were the machine's screen and keyboard (`cargo xtask demo`).
//!
//! The terminal goes into raw mode so every key, Ctrl-C included, reaches the
//! guest, where the programs do their own echo and line editing; it is
//! restored when the relay ends, on error and on panic. Ctrl-] (as in telnet)
//! leaves the relay.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, SetArg, Termios};

use crate::console::Console;

/// The key that leaves the relay: Ctrl-].
pub const DETACH: u8 = 0x1d;

/// The terminal in raw mode until dropped.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Raw mode on stdin's terminal; `None` when stdin is not a terminal.
    pub fn enter() -> Result<Option<RawTerminal>> {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return Ok(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw)
            .context("putting the terminal into raw mode")?;
        Ok(Some(RawTerminal { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Why the relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The guest powered off (its console closed).
    GuestExited,
    /// The person pressed Ctrl-].
    Detached,
}

/// Copies the guest's output to stdout and stdin's bytes to the guest until
/// the guest exits or Ctrl-] is pressed. Returns why, and everything the
/// guest printed meanwhile.
pub fn relay(c: &mut Console) -> Result<(Ended, Vec<u8>)> {
    let _raw = RawTerminal::enter()?;
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut seen = Vec::new();
    let mut stdin_open = true;
    // At least std's stdin buffer, so reads bypass it and poll sees every key.
    let mut keys = [0u8; 8192];
    loop {
        if stdin_open {
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::from(10u8)).unwrap_or(0) > 0;
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if ready && revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
                let n = stdin.lock().read(&mut keys).unwrap_or(0);
                if n == 0 {
                    stdin_open = false;
                } else if let Some(at) = keys[..n].iter().position(|&b| b == DETACH) {
                    c.send_raw(&keys[..at])?;
                    return Ok((Ended::Detached, seen));
                } else {
                    c.send_raw(&keys[..n])?;
                }
            }
        }
        match c.take_output(Duration::from_millis(10)) {
            None => {
                stdout.flush()?;
                return Ok((Ended::GuestExited, seen));
            }
            Some(out) if !out.is_empty() => {
                stdout.write_all(&out)?;
                stdout.flush()?;
                seen.extend_from_slice(&out);
            }
            Some(_) => {}
        }
    }
}
