//! Replays the fuzz corpus (`fuzz/corpus/{login,pull,save}`) on stable:
//! every input the fuzzers kept, and every crash they found once fixed,
//! goes through the same entry points as under `make fuzz`. None may
//! panic, and what the pull path accepts must read back.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no corpus in {}", dir.display());
    out
}

#[test]
fn login_corpus() {
    for (_, input) in corpus("login") {
        rowsync::fuzz_login_answer(&input);
    }
}

#[test]
fn pull_corpus_never_panics_and_what_is_accepted_reads_back() {
    let mut applied = 0;
    for (path, input) in corpus("pull") {
        let n = rowsync::fuzz_pull_answer(&input);
        if path.ends_with("mahak-products") {
            assert!(
                n > 0,
                "the real capture applies: the harness reaches the store"
            );
        }
        applied += n;
    }
    assert!(applied > 0);
}

#[test]
fn save_corpus() {
    for (_, input) in corpus("save") {
        rowsync::fuzz_save_answer(&input);
    }
}
