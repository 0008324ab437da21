//! Encryption at rest (issue 14), with the `encryption` feature (SQLCipher):
//! the file holds none of a record's text, a wrong or missing key is
//! `WrongKey` and leaves the file byte for byte as it was, rekey works, and
//! a plain replica is encrypted in place.
#![cfg(feature = "encryption")]

use std::path::{Path, PathBuf};

use rowsync::{DbKey, Engine, Error, RecordId};
use serde_json::json;

const NAME: &str = "فاطمه رضایی";
const PHONE: &str = "09121234567";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("rowsync-enc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn db(&self) -> PathBuf {
        self.0.join("replica.db")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key() -> DbKey {
    DbKey::raw(&[7u8; 32]).unwrap()
}

/// What is on disk, file by file (name, length, a hash): compared whole,
/// printed short.
fn files(db: &Path) -> Vec<(String, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_os_string();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            b.hash(&mut h);
            out.push((suffix.to_string(), b.len(), h.finish()));
        }
    }
    out
}

/// Every byte the replica has on disk (the file, its WAL and SHM).
fn bytes_on_disk(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_os_string();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn write_customer(e: &Engine) -> i64 {
    let p = e
        .create("people", json!({"name": NAME, "mobile": PHONE}))
        .unwrap();
    p["personClientId"].as_i64().unwrap()
}

#[test]
fn an_encrypted_replica_holds_none_of_a_records_text() {
    let dir = Dir::new("text");
    let e = Engine::open_encrypted(dir.db(), key()).unwrap();
    let c = write_customer(&e);
    // While open (the WAL holds the write) and after closing.
    let disk = bytes_on_disk(&dir.db());
    assert!(!contains(&disk, NAME) && !contains(&disk, PHONE));
    drop(e);
    let disk = bytes_on_disk(&dir.db());
    assert!(!disk.is_empty());
    assert!(!contains(&disk, NAME) && !contains(&disk, PHONE));
    assert!(!contains(&disk, "SQLite format 3"));
    // The control: a plain replica does show them.
    let plain = Dir::new("plain");
    let p = Engine::open(plain.db()).unwrap();
    write_customer(&p);
    drop(p);
    assert!(contains(&bytes_on_disk(&plain.db()), PHONE));
    // And the key reads it back.
    let e = Engine::open_encrypted(dir.db(), key()).unwrap();
    let r = e.get("people", RecordId::Client(c)).unwrap().unwrap();
    assert_eq!(r["name"], NAME);
}

#[test]
fn a_wrong_or_missing_key_is_wrong_key_and_changes_nothing() {
    let dir = Dir::new("wrong");
    let e = Engine::open_encrypted(dir.db(), key()).unwrap();
    write_customer(&e);
    drop(e);
    let before = files(&dir.db());
    let other = DbKey::passphrase("not the key");
    assert!(matches!(
        Engine::open_encrypted(dir.db(), other),
        Err(Error::WrongKey(_))
    ));
    assert_eq!(files(&dir.db()), before, "byte for byte");
    assert!(matches!(Engine::open(dir.db()), Err(Error::WrongKey(_))));
    assert_eq!(files(&dir.db()), before, "byte for byte");
    // A plain replica opened with a key: WrongKey too, nothing changed.
    let plain = Dir::new("plain-key");
    drop(Engine::open(plain.db()).unwrap());
    let before = files(&plain.db());
    assert!(matches!(
        Engine::open_encrypted(plain.db(), key()),
        Err(Error::WrongKey(_))
    ));
    assert_eq!(files(&plain.db()), before);
    // The right key still opens it, with the data.
    let e = Engine::open_encrypted(dir.db(), key()).unwrap();
    assert_eq!(e.count("people", false).unwrap(), 1);
}

#[test]
fn rekey_changes_the_key() {
    let dir = Dir::new("rekey");
    let e = Engine::open_encrypted(dir.db(), DbKey::passphrase("old secret")).unwrap();
    let c = write_customer(&e);
    e.rekey(key()).unwrap();
    // Still readable through both connections after the rekey.
    assert!(e.get("people", RecordId::Client(c)).unwrap().is_some());
    write_customer(&e);
    drop(e);
    assert!(matches!(
        Engine::open_encrypted(dir.db(), DbKey::passphrase("old secret")),
        Err(Error::WrongKey(_))
    ));
    let e = Engine::open_encrypted(dir.db(), key()).unwrap();
    assert_eq!(e.count("people", false).unwrap(), 2);
}

#[test]
fn a_plain_replica_is_encrypted_in_place() {
    let dir = Dir::new("migrate");
    let e = Engine::open(dir.db()).unwrap();
    let c = write_customer(&e);
    let pending = e.status().unwrap().counts.pending;
    drop(e);
    Engine::encrypt_in_place(dir.db(), &key()).unwrap();
    let disk = bytes_on_disk(&dir.db());
    assert!(!contains(&disk, NAME) && !contains(&disk, PHONE));
    assert!(matches!(Engine::open(dir.db()), Err(Error::WrongKey(_))));
    let e = Engine::open_encrypted(dir.db(), key()).unwrap();
    assert_eq!(
        e.get("people", RecordId::Client(c)).unwrap().unwrap()["mobile"],
        PHONE
    );
    assert_eq!(
        e.status().unwrap().counts.pending,
        pending,
        "the outbox came along"
    );
    drop(e);
    // Twice is refused: it is encrypted already.
    assert!(matches!(
        Engine::encrypt_in_place(dir.db(), &key()),
        Err(Error::WrongKey(_))
    ));
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("encrypting"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
