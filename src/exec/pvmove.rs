//! pvmove with progress a person can follow, and a word when it stalls.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::render;
use super::runner::{elapsed, lvm_env};
use crate::sys::process::Cmd;

/// Runs `lvm pvmove -i 1`, showing its progress: a bar on a terminal, a
/// line per 10 % elsewhere, a serial console included.
pub fn run(source: Option<&str>, dest: Option<&str>) -> Result<()> {
    let argv = render::pvmove_argv(source, dest);
    let c = lvm_env(Cmd::new(&argv[0]).args(&argv[1..]));
    // A serial console is a terminal of unknown size: indicatif would pad
    // the bar to 80 columns and the next line would land on it there.
    let sized_tty =
        std::io::stdout().is_terminal() && console::Term::stdout().size_checked().is_some();
    let bar = if sized_tty {
        let b = indicatif::ProgressBar::new(10_000);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "  {bar:40} {percent:>3}% {elapsed_precise} eta {eta}",
            )
            .expect("static template"),
        );
        Some(b)
    } else {
        None
    };
    let mut last_printed = -1i64;
    let started = Instant::now();
    let mut stall = StallWatch::new(STALL_NOTICE);
    c.run_streaming(|line| {
        if let Some(pct) = parse_pvmove_percent(line) {
            if let Some(quiet) = stall.observe(pct, Instant::now()) {
                let msg = format!(
                    "  no progress for {} (still at {pct:.1}%): pvmove is still running; if it stays stuck, check the disks (dmesg) — Ctrl-C is safe, `luksify migrate` resumes the move",
                    elapsed(quiet)
                );
                match &bar {
                    Some(b) => b.println(msg),
                    None => println!("{msg}"),
                }
            }
            match &bar {
                Some(b) => b.set_position((pct * 100.0) as u64),
                None => {
                    let decile = (pct / 10.0) as i64;
                    if decile > last_printed {
                        last_printed = decile;
                        let spent = started.elapsed();
                        let eta = if pct > 0.0 {
                            elapsed(spent.mul_f64((100.0 - pct) / pct))
                        } else {
                            "?".into()
                        };
                        println!("  moved {pct:.1}%  elapsed {}  eta {eta}", elapsed(spent));
                    }
                }
            }
        }
    })?;
    if let Some(b) = bar {
        b.finish();
    }
    Ok(())
}

/// How long pvmove may report the same percentage before we say so: a
/// person at a console must be able to tell a stuck move from a slow one.
const STALL_NOTICE: Duration = Duration::from_secs(60);

/// Notices when pvmove's reported progress stops changing.
struct StallWatch {
    every: Duration,
    last_pct: f64,
    since: Option<Instant>,
    notices: u32,
}

impl StallWatch {
    fn new(every: Duration) -> Self {
        StallWatch {
            every,
            last_pct: -1.0,
            since: None,
            notices: 0,
        }
    }

    /// Feeds one progress report; returns how long progress has stood still
    /// each time that crosses another multiple of `every`.
    fn observe(&mut self, pct: f64, now: Instant) -> Option<Duration> {
        match self.since {
            Some(since) if pct == self.last_pct => {
                let quiet = now - since;
                let due = self.every * (self.notices + 1);
                if quiet >= due {
                    self.notices += 1;
                    return Some(quiet);
                }
                None
            }
            _ => {
                self.last_pct = pct;
                self.since = Some(now);
                self.notices = 0;
                None
            }
        }
    }
}

/// `  /dev/vda2: Moved: 37.50%` → 37.5
pub fn parse_pvmove_percent(line: &str) -> Option<f64> {
    let (_, rest) = line.split_once("Moved:")?;
    rest.trim().trim_end_matches('%').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_pvmove_is_reported_once_per_period() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = StallWatch::new(Duration::from_secs(60));
        assert_eq!(w.observe(10.0, at(0)), None);
        assert_eq!(w.observe(10.0, at(59)), None);
        assert_eq!(w.observe(10.0, at(60)), Some(Duration::from_secs(60)));
        assert_eq!(w.observe(10.0, at(61)), None);
        assert_eq!(w.observe(10.0, at(121)), Some(Duration::from_secs(121)));
        // Progress resets the clock.
        assert_eq!(w.observe(11.0, at(122)), None);
        assert_eq!(w.observe(11.0, at(181)), None);
        assert_eq!(w.observe(11.0, at(182)), Some(Duration::from_secs(60)));
    }

    #[test]
    fn pvmove_progress_lines() {
        assert_eq!(
            parse_pvmove_percent("  /dev/vda2: Moved: 37.50%"),
            Some(37.5)
        );
        assert_eq!(
            parse_pvmove_percent("  /dev/vda2: Moved: 100.00%"),
            Some(100.0)
        );
        assert_eq!(parse_pvmove_percent("  Done"), None);
    }
}
