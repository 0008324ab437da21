//! Encryption at rest (issue 14): the replica's key, and how a connection is
//! keyed and checked. SQLCipher (the `encryption` feature) encrypts every
//! page of the one database file, its WAL and its temporary files; the
//! engine keeps no side file. The key lives only in memory: never written,
//! never logged, its bytes overwritten when dropped.

use std::fmt;
use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The key of an encrypted replica: 32 raw bytes (from the platform's
/// keystore, say), or a passphrase (stretched by SQLCipher's PBKDF2).
#[derive(Clone, PartialEq, Eq)]
pub enum DbKey {
    /// A 256-bit key, used as is.
    Raw([u8; 32]),
    /// A passphrase (UTF-8 bytes), stretched by SQLCipher's key derivation.
    Passphrase(Vec<u8>),
}

impl DbKey {
    /// A passphrase key.
    pub fn passphrase(text: &str) -> DbKey {
        DbKey::Passphrase(text.as_bytes().to_vec())
    }

    /// A raw key from exactly 32 bytes.
    pub fn raw(bytes: &[u8]) -> Result<DbKey> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::Config(format!(
                "a raw key is 32 bytes, not {} (or use a passphrase)",
                bytes.len()
            ))
        })?;
        Ok(DbKey::Raw(key))
    }

    /// The value of `PRAGMA key` / `rekey`: a blob literal for a raw key, a
    /// quoted string for a passphrase. Never logged.
    fn pragma_value(&self) -> Result<String> {
        match self {
            DbKey::Raw(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                Ok(format!("\"x'{hex}'\""))
            }
            DbKey::Passphrase(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| Error::Config("a passphrase must be UTF-8".into()))?;
                if text.is_empty() || text.contains('\0') {
                    return Err(Error::Config(
                        "a passphrase must be non-empty, with no NUL".into(),
                    ));
                }
                Ok(format!("'{}'", text.replace('\'', "''")))
            }
        }
    }
}

impl fmt::Debug for DbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbKey::Raw(_) => f.write_str("DbKey::Raw(<redacted>)"),
            DbKey::Passphrase(_) => f.write_str("DbKey::Passphrase(<redacted>)"),
        }
    }
}

impl Drop for DbKey {
    fn drop(&mut self) {
        match self {
            DbKey::Raw(bytes) => bytes.fill(0),
            DbKey::Passphrase(bytes) => bytes.fill(0),
        }
    }
}

/// True when this build can encrypt (the `encryption` feature).
pub const fn available() -> bool {
    cfg!(feature = "encryption")
}

fn unavailable() -> Error {
    Error::Config("this build of rowsync has no encryption (cargo feature `encryption`)".into())
}

/// Keeps SQLCipher from writing its own log lines to stderr (a wrong key
/// is an error the app gets, not a line on its console). A no-op on a
/// plain build.
pub(crate) fn quiet(conn: &Connection) {
    if available() {
        let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE;");
    }
}

/// Keys `conn` (before anything else is read or written).
pub(crate) fn apply(conn: &Connection, key: &DbKey) -> Result<()> {
    if !available() {
        return Err(unavailable());
    }
    quiet(conn);
    let sql = format!("PRAGMA key = {};", key.pragma_value()?);
    conn.execute_batch(&sql)?;
    Ok(())
}

/// Changes the key of the keyed (or, for a plain file, unkeyed) `conn`.
pub(crate) fn rekey(conn: &Connection, key: &DbKey) -> Result<()> {
    if !available() {
        return Err(unavailable());
    }
    let sql = format!("PRAGMA rekey = {};", key.pragma_value()?);
    conn.execute_batch(&sql)?;
    Ok(())
}

/// The first 16 bytes of every plain SQLite file.
const PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// True when `path` is a plain (not encrypted) SQLite file.
pub fn is_plain(path: &Path) -> bool {
    let mut header = [0u8; 16];
    match std::fs::File::open(path) {
        Ok(mut f) => {
            std::io::Read::read_exact(&mut f, &mut header).is_ok() && &header == PLAIN_HEADER
        }
        Err(_) => false,
    }
}

/// Reads the schema once, so a wrong or missing key fails here, before
/// anything is written: `WrongKey` for an encrypted file opened without
/// its key (or a plain one with a key), `Database` for a damaged plain one.
pub(crate) fn check(conn: &Connection, path: &Path, keyed: bool) -> Result<()> {
    quiet(conn);
    let read = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    });
    match read {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            let plain = is_plain(path);
            Err(match (keyed, plain) {
                (true, true) => Error::WrongKey(
                    "the replica is not encrypted: open it without a key, or encrypt it first"
                        .into(),
                ),
                (true, false) => Error::WrongKey("the key does not open this replica".into()),
                (false, false) => Error::WrongKey(
                    "the replica is encrypted (or is not a database): a key is needed".into(),
                ),
                (false, true) => Error::Database("the replica file is damaged".into()),
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    p.into()
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Database(format!("{}: {e}", path.display()))),
    }
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Database(format!("{what}: {e}"))
}

/// Encrypts the plain replica at `path` in place (see
/// `Engine::encrypt_in_place`): export into `<path>.encrypting`, sync it,
/// rename it over `path`, sync the directory.
pub(crate) fn encrypt_in_place(path: &Path, key: &DbKey) -> Result<()> {
    if !available() {
        return Err(unavailable());
    }
    if !path.is_file() {
        return Err(Error::Config(format!("no replica at {}", path.display())));
    }
    if !is_plain(path) {
        return Err(Error::WrongKey(
            "the replica is already encrypted (or is not a database)".into(),
        ));
    }
    let tmp = with_suffix(path, ".encrypting");
    for stale in [
        ".encrypting",
        ".encrypting-journal",
        ".encrypting-wal",
        ".encrypting-shm",
    ] {
        remove_if_there(&with_suffix(path, stale))?;
    }
    let tmp_text = tmp
        .to_str()
        .ok_or_else(|| Error::Config("the replica's path must be UTF-8 to encrypt it".into()))?;
    {
        let conn = Connection::open(path)?;
        check(&conn, path, false)?;
        // Everything into the main file first: the export reads it whole.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let attach = format!(
            "ATTACH DATABASE '{}' AS rs_encrypted KEY {};",
            tmp_text.replace('\'', "''"),
            key.pragma_value()?
        );
        conn.execute_batch(&attach)?;
        conn.query_row("SELECT sqlcipher_export('rs_encrypted')", [], |_| Ok(()))?;
        conn.execute_batch(&format!(
            "PRAGMA rs_encrypted.user_version = {version}; DETACH DATABASE rs_encrypted;"
        ))?;
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("syncing the encrypted copy", e))?;
    // The plain file's WAL is empty now (checkpointed, closed): it must not
    // meet the new file.
    remove_if_there(&with_suffix(path, "-wal"))?;
    remove_if_there(&with_suffix(path, "-shm"))?;
    std::fs::rename(&tmp, path).map_err(|e| io("replacing the plain replica", e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing the directory", e))?;
    }
    Ok(())
}

/// A connection to the replica at `path` beside the writer's (`flags` plus
/// no mutex: each is used by one thread at a time), keyed with `key` for an
/// encrypted replica.
pub(crate) fn open_beside(
    path: &Path,
    flags: rusqlite::OpenFlags,
    key: Option<&DbKey>,
) -> Result<Connection> {
    let conn =
        Connection::open_with_flags(path, flags | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    if let Some(key) = key {
        apply(&conn, key)?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_show_and_are_checked() {
        let k = DbKey::passphrase("it's secret");
        assert_eq!(format!("{k:?}"), "DbKey::Passphrase(<redacted>)");
        assert_eq!(k.pragma_value().unwrap(), "'it''s secret'");
        let raw = DbKey::raw(&[0xAB; 32]).unwrap();
        assert!(!format!("{raw:?}").contains("ab"));
        assert!(raw.pragma_value().unwrap().starts_with("\"x'abab"));
        assert!(matches!(DbKey::raw(&[1; 31]), Err(Error::Config(_))));
        assert!(DbKey::passphrase("").pragma_value().is_err());
    }
}
