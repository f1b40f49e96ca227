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
