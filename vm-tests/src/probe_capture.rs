//! Captures, inside a guest, what luksify's probe reads (LVM JSON reports,
//! blkid, mountinfo, /sys/block) and copies it to the host. These captures
//! are the real-LVM fixtures the probe parser is tested on; their layout is
//! described in vm-tests/fixtures/README.md.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::console::Console;

const SCRIPT: &[u8] = include_bytes!("probe_capture/capture.sh");
const GUEST_DIR: &str = "/tmp/probe-capture";

/// Runs the capture in the guest and replaces `host_dir` with its result.
pub fn capture(console: &mut Console, host_dir: &Path) -> Result<()> {
    let t = Duration::from_secs(120);
    console.put_file("/tmp/capture-probe.sh", SCRIPT, t)?;
    console.run_ok(&format!("sh /tmp/capture-probe.sh {GUEST_DIR}"), t)?;
    if host_dir.exists() {
        std::fs::remove_dir_all(host_dir)
            .with_context(|| format!("clearing {}", host_dir.display()))?;
    }
    console.fetch_dir(GUEST_DIR, host_dir, t)
}

/// The exit codes recorded by a capture, by output file name.
pub fn exit_codes(dir: &Path) -> Result<Vec<(String, i32)>> {
    let text = std::fs::read_to_string(dir.join("exit-codes"))?;
    text.lines()
        .map(|l| {
            let (name, code) = l
                .rsplit_once(' ')
                .with_context(|| format!("bad exit-codes line {l:?}"))?;
            Ok((name.to_string(), code.parse()?))
        })
        .collect()
}
