//! Answers `luksify migrate`'s guided conversation on a guest's serial
//! console the way a person would: wait for each question, pause like a
//! person does, type the answer and Enter.
//!
//! The pause matters: dialoguer's no-echo prompt (like cryptsetup's) writes
//! the prompt, then switches the terminal with TCSAFLUSH, which throws away
//! whatever was typed before: under TCG the prompt reaches the console well
//! before that, and a passphrase typed at once loses its first characters.
//! Prompts are matched on their text only, so the plain theme (TERM=dumb,
//! NO_COLOR, vt*) and the coloured one (TERM=linux on the live console) both
//! work.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::console::Console;

/// How long a person takes between seeing a question and typing.
const THINK: Duration = Duration::from_millis(1500);
/// From one question to the next (a probe or read-speed sample in between).
const NEXT: Duration = Duration::from_secs(300);

/// What the person answers.
#[derive(Debug, Clone)]
pub struct Answers {
    /// Answer to "Spare disk (1-N or its path)": a number or a device path.
    pub spare: String,
    /// Answer to "Strategy (1, 2 or its name)".
    pub strategy: String,
    /// Answer to "Header backup file"; empty takes the offered default.
    pub header_backup: String,
    pub passphrase: String,
    /// Accept the generated recovery passphrase (and type its last group back).
    pub recovery: bool,
    /// Typed to confirm; the wizard starts only when it is the VG's name.
    pub vg: String,
}

/// How the conversation and the run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// luksify's exit status.
    pub code: i32,
    /// Everything the console showed from the command to its exit, `\r` removed.
    pub transcript: String,
    /// The recovery passphrase the wizard showed, when accepted.
    pub recovery: Option<String>,
}

/// Prompt text followed, on the same line, by the end of a dialoguer prompt:
/// `: ` (plain), `›` (coloured, followed by a colour reset) or `[Y/n] `.
fn prompt(text: &str) -> String {
    format!(r"{}[^\n]*?(?:: |›|\] )", regex::escape(text))
}

/// Waits for the question `text`, keeps what came before it in `log`, and
/// pauses as a person reading it would.
fn await_question(c: &mut Console, text: &str, log: &mut String) -> Result<()> {
    let m = c
        .wait_for(&prompt(text), NEXT)
        .with_context(|| format!("waiting for the question {text:?}"))?;
    log.push_str(&String::from_utf8_lossy(&m.before));
    log.push_str(text);
    std::thread::sleep(THINK);
    Ok(())
}

fn answer(c: &mut Console, text: &str, line: &str, log: &mut String) -> Result<()> {
    await_question(c, text, log)?;
    c.send_line(line)
}

fn answer_secret(c: &mut Console, text: &str, secret: &str, log: &mut String) -> Result<()> {
    await_question(c, text, log)?;
    c.send_secret(secret.as_bytes())
}

/// Runs `luksify migrate {args}` at the guest's marker-protocol shell (see
/// [`Console::init_shell`]) with echo on, as on a person's terminal, answers
/// every question from `a`, and waits up to `run_timeout` for it to finish.
pub fn migrate(c: &mut Console, args: &str, a: &Answers, run_timeout: Duration) -> Result<Outcome> {
    // One line: whatever follows would be typed into luksify's questions.
    c.send_line(&format!(
        "stty echo; luksify migrate {args}; r=$?; stty -echo; printf '@@%s@@\\n' \"WIZARD-EXIT:$r\""
    ))?;
    let mut log = String::new();
    answer(c, "Spare disk (1-", &a.spare, &mut log)?;
    answer(c, "Strategy (1, 2 or its name)", &a.strategy, &mut log)?;
    answer(c, "Header backup file", &a.header_backup, &mut log)?;
    answer_secret(c, "Passphrase", &a.passphrase, &mut log)?;
    answer_secret(c, "Type it again", &a.passphrase, &mut log)?;
    answer(
        c,
        "Add a generated recovery passphrase to write down?",
        if a.recovery { "y" } else { "n" },
        &mut log,
    )?;
    let recovery = if a.recovery {
        let m = c.wait_for(
            r"\n {4}([0-9a-z]{5}(?:-[0-9a-z]{5}){7})\r?\n",
            Duration::from_secs(30),
        )?;
        log.push_str(&String::from_utf8_lossy(&m.before));
        let r = m.groups[0].clone().unwrap_or_default();
        let last = r.rsplit('-').next().unwrap_or_default().to_string();
        answer(c, "Type its last group of 5 characters", &last, &mut log)?;
        Some(r)
    } else {
        None
    };
    let confirm = format!("Type the volume group name ({})", a.vg);
    answer(c, &confirm, &a.vg, &mut log)?;
    let end = c
        .wait_for(r"@@WIZARD-EXIT:(\d+)@@\r?\n", run_timeout)
        .context("waiting for luksify migrate to finish")?;
    log.push_str(&String::from_utf8_lossy(&end.before));
    let code = end.groups[0].as_deref().unwrap_or("").parse()?;
    Ok(Outcome {
        code,
        transcript: log.replace('\r', ""),
        recovery,
    })
}

/// Fails if `secret` appears anywhere in the console log at `log_path`: the
/// proof that nothing echoed it.
pub fn assert_not_in_log(log_path: &std::path::Path, secret: &str) -> Result<()> {
    let log = std::fs::read(log_path)
        .with_context(|| format!("reading the console log {}", log_path.display()))?;
    if log.windows(secret.len()).any(|w| w == secret.as_bytes()) {
        bail!(
            "the passphrase appears in the console log {}",
            log_path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_match_both_themes_and_not_the_explanations() {
        let re = |t: &str| regex::Regex::new(&prompt(t)).unwrap();
        assert!(re("Header backup file").is_match("Header backup file [/root/x]: "));
        assert!(
            re("Passphrase")
                .is_match("\x1b[1m? \x1b[0m\x1b[1mPassphrase\x1b[0m \x1b[38;5;8m›\x1b[0m ")
        );
        assert!(
            re("Add a generated recovery passphrase to write down?")
                .is_match("Add a generated recovery passphrase to write down? [Y/n] ")
        );
        assert!(!re("Passphrase").is_match("Passphrase chosen.\n"));
    }
}
