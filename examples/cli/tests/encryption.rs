//! The CLI and encrypted replicas (issue 14): the key comes from
//! $ROWSYNC_DB_KEY (a passphrase) or --key-file (32 raw bytes), never an
//! argument value; `encrypt` migrates a plain replica in place and a kill at
//! any moment of it leaves a replica that opens, plain or encrypted, whole;
//! `rekey` changes the key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rowsync::{DbKey, Engine, Error};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_rowsync");

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rowsync-cli-enc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rowsync(db: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("--db").arg(db).args(args).stdin(Stdio::null());
    c.env_remove("ROWSYNC_DB_KEY")
        .env_remove("ROWSYNC_NEW_DB_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn init(db: &Path, env: &[(&str, &str)], extra: &[&str]) {
    let mut args = vec![
        "init",
        "--url",
        "http://127.0.0.1:9/API/v3",
        "--username",
        "u",
        "--database-id",
        "1",
        "--package-number",
        "2",
    ];
    args.extend_from_slice(extra);
    let out = rowsync(db, env, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_key_comes_from_the_environment_or_a_key_file() {
    let d = dir("key");
    let db = d.join("r.db");
    let env = [("ROWSYNC_DB_KEY", "a passphrase")];
    init(&db, &env, &[]);
    let out = rowsync(
        &db,
        &env,
        &["put", "people", r#"{"name":"نرگس","mobile":"09129990000"}"#],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = std::fs::read(&db).unwrap();
    assert!(!raw.windows(11).any(|w| w == b"09129990000"));
    // No key, or another one: a clear error, exit 1, the file unchanged.
    for env in [&[][..], &[("ROWSYNC_DB_KEY", "another")][..]] {
        let out = rowsync(&db, env, &["list", "people"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("wrong key"));
    }
    // A key file of 32 bytes works for a replica made with it; any other size
    // is refused.
    let kf = d.join("key.bin");
    std::fs::write(&kf, [9u8; 32]).unwrap();
    let db2 = d.join("r2.db");
    init(&db2, &[], &["--key-file", kf.to_str().unwrap()]);
    let out = rowsync(&db2, &[], &["--key-file", kf.to_str().unwrap(), "status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(Engine::open_encrypted(&db2, DbKey::raw(&[9u8; 32]).unwrap()).is_ok());
    std::fs::write(&kf, b"short").unwrap();
    let out = rowsync(&db2, &[], &["--key-file", kf.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 bytes"));
    // rekey: the old key stops working, the new one opens it.
    let out = rowsync(
        &db,
        &[
            ("ROWSYNC_DB_KEY", "a passphrase"),
            ("ROWSYNC_NEW_DB_KEY", "the new one"),
        ],
        &["rekey"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!rowsync(&db, &env, &["status"]).status.success());
    let out = rowsync(
        &db,
        &[("ROWSYNC_DB_KEY", "the new one")],
        &["list", "people"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("نرگس"));
    let _ = std::fs::remove_dir_all(&d);
}

/// A plain replica with `n` customers and their pending changes.
fn plain_replica(db: &Path, n: usize) {
    let e = Engine::open(db).unwrap();
    e.write(|w| {
        for i in 0..n {
            w.create(
                "people",
                json!({"name": format!("مشتری {i}"), "mobile": format!("0912{i:07}")}),
            )?;
        }
        Ok(())
    })
    .unwrap();
}

/// The replica opens, plain or encrypted with `key`, with its `n` people.
fn whole(db: &Path, key: &DbKey, n: u64) -> &'static str {
    match Engine::open(db) {
        Ok(e) => {
            assert_eq!(e.count("people", false).unwrap(), n, "plain, whole");
            "plain"
        }
        Err(Error::WrongKey(_)) => {
            let e = Engine::open_encrypted(db, key.clone()).expect("the new file opens");
            assert_eq!(e.count("people", false).unwrap(), n, "encrypted, whole");
            "encrypted"
        }
        Err(e) => panic!("neither plain nor encrypted: {e}"),
    }
}

#[test]
fn encrypt_killed_at_any_moment_leaves_a_whole_replica() {
    let d = dir("kill");
    let template = d.join("template.db");
    const N: usize = 3_000;
    plain_replica(&template, N);
    // A raw key (no key derivation at each open: the test stays quick).
    let key = DbKey::raw(&[5u8; 32]).unwrap();
    let kf = d.join("key.bin");
    std::fs::write(&kf, [5u8; 32]).unwrap();
    let kf = kf.to_str().unwrap().to_string();
    let mut seen = std::collections::BTreeMap::new();
    let mut rng = fastrand::Rng::with_seed(std::process::id() as u64);
    // How long a whole `encrypt` takes here: the kills land across it and
    // a little past its end.
    let probe = d.join("probe.db");
    std::fs::copy(&template, &probe).unwrap();
    let started = std::time::Instant::now();
    let out = rowsync(&probe, &[], &["--key-file", &kf, "encrypt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let span = started.elapsed().as_micros() as u64 * 5 / 4 + 1;
    assert_eq!(whole(&probe, &key, N as u64), "encrypted");
    for round in 0..30 {
        let db = d.join(format!("r{round}.db"));
        std::fs::copy(&template, &db).unwrap();
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .args(["--key-file", &kf, "encrypt"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.u64(0..span)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
        let state = whole(&db, &key, N as u64);
        *seen.entry((killed, state)).or_insert(0) += 1;
        // Finishing after a kill works, whatever the kill left.
        if state == "plain" {
            Engine::encrypt_in_place(&db, &key).unwrap();
            assert_eq!(whole(&db, &key, N as u64), "encrypted");
        }
    }
    println!("encrypt kills: (killed, left) -> rounds: {seen:?}");
    assert!(
        seen.keys().any(|(killed, _)| *killed),
        "no kill landed: {seen:?}"
    );
    assert!(
        seen.keys().any(|(_, left)| *left == "encrypted"),
        "no round got past the rename: {seen:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
