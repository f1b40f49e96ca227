//! Helpers of the migration scenarios.
#![allow(dead_code)]

use std::time::Duration;

use vm_tests::console::Console;

/// Stores `secret` in the guest file `path` by typing it on the console
/// (echo is off), so it appears in no command line and no console log.
pub fn store_secret(c: &mut Console, path: &str, secret: &str, timeout: Duration) {
    c.send_line(&format!(
        "printf '@@%s@@\\n' SECRET-PROMPT; head -n 1 > '{path}'; printf '@@%s@@\\n' \"SECRET-STORED:$?\""
    ))
    .unwrap();
    c.send_secret_after("@@SECRET-PROMPT@@\r?\n", secret.as_bytes(), timeout)
        .unwrap();
    c.wait_for("@@SECRET-STORED:0@@", timeout).unwrap();
}
