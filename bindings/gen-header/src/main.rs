//! Writes the C header of `rowsync-ffi` with the pinned cbindgen:
//! `cargo run -p rowsync-gen-header [-- OUTPUT]` (default
//! `ffi/include/rowsync.h`). `bindings/scripts/check-header.sh` runs it into
//! a temporary file and diffs the result against the committed header.

use std::path::PathBuf;
use std::process::ExitCode;

/// The workspace root: the nearest ancestor of the current directory that
/// holds `ffi/cbindgen.toml`. Found at run time, not baked in at compile
/// time: a binary built in a target directory shared by several checkouts
/// must read the sources of the checkout it is run in.
fn workspace_root() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|dir| dir.join("ffi/cbindgen.toml").is_file())
        .map(PathBuf::from)
}

fn main() -> ExitCode {
    let Some(root) = workspace_root() else {
        eprintln!(
            "gen-header: run it inside the rowsync workspace (no ffi/cbindgen.toml above here)"
        );
        return ExitCode::FAILURE;
    };
    let ffi = root.join("ffi");
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| ffi.join("include/rowsync.h"));
    let config = match cbindgen::Config::from_file(ffi.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gen-header: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cbindgen::Builder::new()
        .with_config(config)
        .with_src(ffi.join("src/c_api.rs"))
        .with_src(ffi.join("src/c_api/live.rs"))
        .with_src(ffi.join("src/engine.rs"))
        .generate()
    {
        Ok(b) => {
            b.write_to_file(&out);
            println!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-header: {e}");
            ExitCode::FAILURE
        }
    }
}
