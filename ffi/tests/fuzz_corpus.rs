//! Replays the C API fuzz corpus (`fuzz/corpus/c_api`) on stable, through
//! the same entry point as `make fuzz`: no input may panic.

use std::path::PathBuf;

#[test]
fn c_api_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/c_api");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        rowsync_ffi::fuzzing::c_api_json(&std::fs::read(&f).unwrap());
    }
    rowsync_ffi::fuzzing::reset();
}
