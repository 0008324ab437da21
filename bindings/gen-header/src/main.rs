//! Writes the C header of `rowsync-ffi` with the pinned cbindgen:
//! `cargo run -p rowsync-gen-header [-- OUTPUT]` (default
//! `ffi/include/rowsync.h`). `bindings/scripts/check-header.sh` runs it into
//! a temporary file and diffs the result against the committed header.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
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
