//! Asking, or not: every question goes to the person at the terminal, or,
//! when luksify may not ask (--yes, no terminal), becomes an error naming the
//! flag that answers it. Prompts are plain lines so a serial console works.

use std::io::IsTerminal;

use anyhow::{Result, anyhow};
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use zeroize::Zeroizing;

use crate::app::Refused;
use crate::plan::Refusal;

/// Ctrl-C at a question. Nothing has been written when a question is asked.
#[derive(Debug, thiserror::Error)]
#[error("interrupted at a question; nothing was written")]
pub struct Interrupted;

pub struct Asker {
    may_ask: bool,
    theme: Box<dyn Theme>,
}

/// Colour only on a terminal that shows it and when NO_COLOR is unset;
/// console's own check covers NO_COLOR, a non-terminal stdout and TERM=dumb.
/// The vt1xx/vt2xx serial terminals get plain text as well.
pub fn colour_wanted() -> bool {
    let term = std::env::var("TERM").unwrap_or_default();
    console::colors_enabled() && !term.starts_with("vt") && term != "dumb"
}

impl Asker {
    pub fn new(yes: bool) -> Self {
        let tty = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        let theme: Box<dyn Theme> = if colour_wanted() {
            Box::new(ColorfulTheme::default())
        } else {
            console::set_colors_enabled(false);
            console::set_colors_enabled_stderr(false);
            Box::new(SimpleTheme)
        };
        Asker {
            may_ask: !yes && tty,
            theme,
        }
    }

    pub fn may_ask(&self) -> bool {
        self.may_ask
    }

    /// The error for a question that may not be asked.
    pub fn missing(&self, what: &str, flag: &str) -> anyhow::Error {
        anyhow!(Refused(Refusal::MissingChoice {
            what: what.into(),
            flag: flag.into(),
        }))
    }

    /// A line of text, `default` taken on an empty answer.
    pub fn line(&self, prompt: &str, default: Option<&str>) -> Result<String> {
        let mut input = dialoguer::Input::<String>::with_theme(&*self.theme)
            .with_prompt(prompt)
            .allow_empty(true);
        if let Some(d) = default {
            input = input.default(d.to_string());
        }
        let answer = input.interact_text().map_err(interrupted)?;
        Ok(answer.trim().to_string())
    }

    /// Yes or no, answered with a line (y/n and Enter).
    pub fn yes_no(&self, prompt: &str, default: bool) -> Result<bool> {
        dialoguer::Confirm::with_theme(&*self.theme)
            .with_prompt(prompt)
            .default(default)
            .wait_for_newline(true)
            .interact()
            .map_err(interrupted)
    }

    /// A line typed without echo.
    pub fn secret(&self, prompt: &str) -> Result<Zeroizing<String>> {
        dialoguer::Password::with_theme(&*self.theme)
            .with_prompt(prompt)
            .allow_empty_password(true)
            .interact()
            .map(Zeroizing::new)
            .map_err(interrupted)
    }
}

/// The terminal settings from before the first question, so Ctrl-C during a
/// no-echo passphrase prompt does not leave the terminal silent.
static SAVED_TERMIOS: std::sync::OnceLock<nix::libc::termios> = std::sync::OnceLock::new();

extern "C" fn on_sigint(_: nix::libc::c_int) {
    const MSG: &[u8] = b"\r\nluksify: interrupted at a question; nothing was written\r\n";
    // Only async-signal-safe calls here: tcsetattr, write, _exit.
    unsafe {
        if let Some(t) = SAVED_TERMIOS.get() {
            nix::libc::tcsetattr(0, nix::libc::TCSANOW, t);
        }
        nix::libc::write(2, MSG.as_ptr().cast(), MSG.len());
        nix::libc::_exit(crate::wizard::EXIT_INTERRUPTED);
    }
}

/// While questions are asked, Ctrl-C (delivered as SIGINT when the terminal
/// is in line mode) ends luksify with a clear message; nothing has been
/// written yet. Before the run starts the default behaviour comes back, so an
/// interrupt then reaches pvmove and luksify as usual.
pub fn questions_interruptible(on: bool) {
    if on && SAVED_TERMIOS.get().is_none() {
        let mut t = std::mem::MaybeUninit::<nix::libc::termios>::uninit();
        // SAFETY: tcgetattr fills the struct when it returns 0.
        if unsafe { nix::libc::tcgetattr(0, t.as_mut_ptr()) } == 0 {
            let _ = SAVED_TERMIOS.set(unsafe { t.assume_init() });
        }
    }
    let handler = if on {
        on_sigint as *const () as nix::libc::sighandler_t
    } else {
        nix::libc::SIG_DFL
    };
    // SAFETY: the handler only makes async-signal-safe calls.
    unsafe {
        nix::libc::signal(nix::libc::SIGINT, handler);
    }
}

fn interrupted(e: dialoguer::Error) -> anyhow::Error {
    let dialoguer::Error::IO(io) = e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        // dialoguer hides the cursor while a prompt is active.
        let _ = console::Term::stderr().show_cursor();
        anyhow!(Interrupted)
    } else {
        anyhow!(io).context("reading an answer from the terminal")
    }
}
