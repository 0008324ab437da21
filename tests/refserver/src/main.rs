//! The `rowsync-refserver` binary: the reference Mahak Sync API server on a
//! TCP port. All of it is in the library's `run_cli`.

fn main() {
    if let Err(e) = rowsync_refserver::run_cli(std::env::args().skip(1)) {
        eprintln!("{e}");
        std::process::exit(2);
    }
}
