//! `rowsync-demo`: the first command of the README. Plays a point-of-sale
//! day against an in-process reference server (see `lib.rs` for the story)
//! and exits non-zero if the story did not happen as expected.

use std::process::ExitCode;

fn main() -> ExitCode {
    if rowsync_demo::run() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
