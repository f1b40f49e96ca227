//! How much each strategy moves and roughly how long that takes.
//!
//! The estimate is bytes moved divided by half the measured read speed: pvmove
//! reads every extent once and writes it once, and writes are rarely faster
//! than reads. Against a saved snapshot nothing can be measured, so
//! [`ASSUMED_READ_MIB_S`] stands in (a SATA SSD or a fast HDD; `--read-speed`
//! overrides it).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::plan::Strategy;
use crate::plan::capacity::allocated_extents;
use crate::probe::Snapshot;

/// The read speed assumed when none was measured, in MiB/s.
pub const ASSUMED_READ_MIB_S: u32 = 100;

/// Bytes pvmove copies: the allocated extents, twice for spare-return (out to
/// the spare and back into the container), once for spare-keep.
pub fn bytes_moved(snap: &Snapshot, vg: &str, strategy: Strategy) -> u64 {
    let e = snap.vg(vg).map(|v| v.extent_size).unwrap_or(0);
    let data = allocated_extents(snap, vg) * e;
    match strategy {
        Strategy::SpareReturn => 2 * data,
        Strategy::SpareKeep => data,
    }
}

pub fn duration(bytes: u64, read_bytes_per_s: f64) -> Duration {
    Duration::from_secs_f64(bytes as f64 * 2.0 / read_bytes_per_s.max(1.0))
}

/// `about 40 s`, `about 12 min`, `about 3 h 20 min`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs().max(1);
    if s < 90 {
        format!("about {s} s")
    } else if s < 3600 {
        format!("about {} min", s.div_ceil(60))
    } else {
        format!("about {} h {} min", s / 3600, (s % 3600) / 60)
    }
}

/// Reads up to 256 MiB (or 3 s worth) from the start of `device`, after
/// asking the kernel to drop its cached pages so the disk itself is timed.
/// Read-only: the device is opened for reading and nothing else.
pub fn sample_read_speed(device: &Path) -> Result<f64> {
    let mut f = std::fs::File::open(device)
        .with_context(|| format!("opening {} to measure its read speed", device.display()))?;
    let _ = nix::fcntl::posix_fadvise(
        f.as_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
    let mut buf = vec![0u8; 4 << 20];
    let start = Instant::now();
    let mut total = 0u64;
    while total < 256 << 20 && start.elapsed() < Duration::from_secs(3) {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", device.display()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    anyhow::ensure!(total > 0, "{} returned no data", device.display());
    Ok(total as f64 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_return_moves_twice() {
        let s = crate::wizard::seed_fixture();
        let once = 141 * (4 << 20);
        assert_eq!(bytes_moved(&s, "vg0", Strategy::SpareKeep), once);
        assert_eq!(bytes_moved(&s, "vg0", Strategy::SpareReturn), 2 * once);
    }

    #[test]
    fn time_is_read_plus_write() {
        let d = duration(100 << 20, (100 << 20) as f64);
        assert_eq!(d.as_secs(), 2);
        assert_eq!(human(Duration::from_secs(30)), "about 30 s");
        assert_eq!(human(Duration::from_secs(600)), "about 10 min");
        assert_eq!(human(Duration::from_secs(12_000)), "about 3 h 20 min");
    }

    #[test]
    fn measures_a_real_file() {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut t, &vec![7u8; 8 << 20]).unwrap();
        let speed = sample_read_speed(t.path()).unwrap();
        assert!(speed > 0.0);
    }
}
