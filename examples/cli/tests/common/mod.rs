//! What the CLI's test files share: reading a finished `rowsync` run.

#![allow(dead_code)] // each test file uses its own part

use std::process::Output;

use serde_json::Value;

/// The run's stdout; fails the test, with both streams, unless it exited 0.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The run's stdout as JSON (it exited 0).
pub fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}
