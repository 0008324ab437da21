//! The local database schema and its migrations. The schema version lives in
//! `PRAGMA user_version`; `migrate` upgrades one step at a time, and a test
//! checks that an upgraded database equals a freshly created one. All tables
//! of the engine share the `rs_` prefix so an app's own tables never clash.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The schema version this engine writes.
pub const VERSION: i32 = 6;

/// Write-ahead-log pages that trigger an automatic checkpoint (SQLite's
/// default), outside a pull.
pub const WAL_AUTOCHECKPOINT: i64 = 1_000;
/// The writer's page cache, in KiB.
pub const CACHE_KIB: i64 = 16_000;

/// Version 1: records, checkpoints, outbox, dead letters, conflicts, meta.
const V1: &str = "
CREATE TABLE rs_collections (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    checkpoint  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE rs_records (
    local_id          INTEGER PRIMARY KEY,
    coll              INTEGER NOT NULL REFERENCES rs_collections(id),
    server_id         INTEGER,
    client_id         INTEGER,
    parent_client_id  INTEGER,
    row_version       INTEGER,
    deleted           INTEGER NOT NULL DEFAULT 0,
    data              TEXT NOT NULL
);
CREATE UNIQUE INDEX rs_records_server ON rs_records(coll, server_id) WHERE server_id IS NOT NULL;
CREATE UNIQUE INDEX rs_records_client ON rs_records(coll, client_id) WHERE client_id IS NOT NULL AND client_id <> 0;
CREATE INDEX rs_records_parent ON rs_records(coll, parent_client_id) WHERE parent_client_id IS NOT NULL;
CREATE TABLE rs_dead_letters (
    id           INTEGER PRIMARY KEY,
    code         INTEGER NOT NULL,
    message      TEXT NOT NULL,
    entity       TEXT,
    field        TEXT,
    tracking_id  TEXT,
    parked_at    TEXT NOT NULL
);
CREATE TABLE rs_outbox (
    local_id      INTEGER PRIMARY KEY REFERENCES rs_records(local_id),
    seq           INTEGER NOT NULL,
    group_id      INTEGER NOT NULL,
    op            TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    counter       INTEGER NOT NULL,
    sent_counter  INTEGER,
    base          TEXT,
    parked        INTEGER REFERENCES rs_dead_letters(id),
    changed_at    TEXT NOT NULL
);
CREATE INDEX rs_outbox_seq ON rs_outbox(seq);
CREATE TABLE rs_conflicts (
    id          INTEGER PRIMARY KEY,
    collection  TEXT NOT NULL,
    server_id   INTEGER,
    client_id   INTEGER,
    base        TEXT,
    local       TEXT,
    server      TEXT,
    fields      TEXT NOT NULL,
    resolution  TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE TABLE rs_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
";

/// Version 2: the sync log (every HTTP call, bounded).
const V2: &str = "
CREATE TABLE rs_sync_log (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    status       INTEGER,
    duration_ms  INTEGER NOT NULL,
    tracking_id  TEXT,
    error        TEXT
);
";

/// Version 3: the record as last sent, so that a pull can tell the echo of
/// our own save (whose answer was lost) from someone else's change.
const V3: &str = "
ALTER TABLE rs_outbox ADD COLUMN sent_data TEXT;
";

/// Version 4: the task queue (uploads and disputes), and the files of the
/// uploads, kept in the replica (so they are encrypted with it, and a copy
/// is one transaction: a kill leaves no half entry).
const V4: &str = "
CREATE TABLE rs_tasks (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('upload', 'order_dispute', 'dispute')),
    request_id  TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,
    local_id    INTEGER,
    size        INTEGER NOT NULL DEFAULT 0,
    sent        INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    parked      INTEGER REFERENCES rs_dead_letters(id),
    queued_at   TEXT NOT NULL
);
CREATE INDEX rs_tasks_record ON rs_tasks(local_id) WHERE local_id IS NOT NULL;
CREATE TABLE rs_task_files (
    task  INTEGER PRIMARY KEY REFERENCES rs_tasks(id) ON DELETE CASCADE,
    data  BLOB NOT NULL
);
";

/// Version 5: who made each pending change (a shared device changes
/// hands: a change goes out only under the user who made it, DESIGN.md
/// invariant 16), and the trail of changes discarded on purpose. The
/// changes already pending are the user's the replica was set up with
/// (its settings' user name), with the visitor of its last login, when
/// known; that login is marked as that user's.
const V5: &str = "
ALTER TABLE rs_outbox ADD COLUMN author TEXT;
ALTER TABLE rs_outbox ADD COLUMN author_visitor INTEGER;
UPDATE rs_outbox SET
    author = (SELECT NULLIF(json_extract(value, '$.username'), '') FROM rs_meta
              WHERE key = 'settings' AND json_valid(value)),
    author_visitor = (SELECT json_extract(value, '$.visitor_id') FROM rs_meta
              WHERE key = 'session' AND json_valid(value));
UPDATE rs_outbox SET author_visitor = NULL WHERE author IS NULL;
INSERT INTO rs_meta(key, value)
    SELECT 'session_user', json_extract(s.value, '$.username') FROM rs_meta s
    WHERE s.key = 'settings' AND json_valid(s.value)
      AND NULLIF(json_extract(s.value, '$.username'), '') IS NOT NULL
      AND EXISTS (SELECT 1 FROM rs_meta WHERE key = 'session');
CREATE TABLE rs_discarded (
    id              INTEGER PRIMARY KEY,
    author          TEXT,
    author_visitor  INTEGER,
    collection      TEXT NOT NULL,
    server_id       INTEGER,
    client_id       INTEGER,
    op              TEXT NOT NULL,
    record          TEXT NOT NULL,
    base            TEXT,
    changed_at      TEXT NOT NULL,
    discarded_at    TEXT NOT NULL,
    reason          TEXT NOT NULL
);
";

/// Version 6: the picture cache's index (the files themselves are in a
/// directory beside the replica): per picture, the server's file name and
/// hash it was fetched for, the local file, its size, when it was last
/// used (a counter), and its state.
const V6: &str = "
CREATE TABLE rs_pictures (
    picture_id  INTEGER PRIMARY KEY,
    file_name   TEXT NOT NULL,
    hash        TEXT,
    local_name  TEXT,
    size        INTEGER NOT NULL DEFAULT 0,
    last_used   INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL CHECK (state IN ('ready', 'failed', 'evicted', 'asked')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX rs_pictures_used ON rs_pictures(last_used) WHERE state = 'ready';
";

const STEPS: [&str; VERSION as usize] = [V1, V2, V3, V4, V5, V6];

/// Sets the connection up (WAL, synchronous=NORMAL, foreign keys) and brings
/// the schema to `VERSION`.
pub fn init(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(conn, VERSION)
}

/// Upgrades the schema to `target`, one version per transaction.
pub fn migrate(conn: &mut Connection, target: i32) -> Result<()> {
    let current: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > VERSION {
        return Err(Error::Database(format!(
            "the database has schema version {current}, newer than this engine's {VERSION}"
        )));
    }
    for version in current..target {
        let tx = conn.transaction()?;
        tx.execute_batch(STEPS[version as usize])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(conn: &Connection) -> Vec<(String, String)> {
        let mut stmt = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn upgraded_database_equals_fresh_one() {
        let mut fresh = Connection::open_in_memory().unwrap();
        init(&mut fresh).unwrap();
        let mut old = Connection::open_in_memory().unwrap();
        migrate(&mut old, 1).unwrap();
        old.execute("INSERT INTO rs_meta(key, value) VALUES ('k', 'v')", [])
            .unwrap();
        init(&mut old).unwrap();
        assert_eq!(dump(&fresh), dump(&old));
        let v: String = old
            .query_row("SELECT value FROM rs_meta WHERE key = 'k'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, "v");
        let uv: i32 = old
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(uv, VERSION);
    }

    #[test]
    fn pending_changes_of_an_older_replica_are_its_users() {
        let mut old = Connection::open_in_memory().unwrap();
        migrate(&mut old, 4).unwrap();
        old.execute_batch(
            r#"INSERT INTO rs_meta(key, value) VALUES ('settings', '{"username": "ali"}');
               INSERT INTO rs_meta(key, value) VALUES ('session', '{"visitor_id": 31}');
               INSERT INTO rs_collections(id, name) VALUES (1, 'orders');
               INSERT INTO rs_records(local_id, coll, data) VALUES (1, 1, '{}');
               INSERT INTO rs_outbox(local_id, seq, group_id, op, counter, changed_at)
                   VALUES (1, 1, 1, 'create', 1, 'now');"#,
        )
        .unwrap();
        init(&mut old).unwrap();
        let (author, visitor): (Option<String>, Option<i64>) = old
            .query_row(
                "SELECT author, author_visitor FROM rs_outbox WHERE local_id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((author.as_deref(), visitor), (Some("ali"), Some(31)));
        let user: String = old
            .query_row(
                "SELECT value FROM rs_meta WHERE key = 'session_user'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(user, "ali");
        // A replica set up with no user name: its changes stay unattributed.
        let mut anonymous = Connection::open_in_memory().unwrap();
        migrate(&mut anonymous, 4).unwrap();
        anonymous
            .execute_batch(
                r#"INSERT INTO rs_meta(key, value) VALUES ('settings', 'not json');
                   INSERT INTO rs_collections(id, name) VALUES (1, 'orders');
                   INSERT INTO rs_records(local_id, coll, data) VALUES (1, 1, '{}');
                   INSERT INTO rs_outbox(local_id, seq, group_id, op, counter, changed_at)
                       VALUES (1, 1, 1, 'create', 1, 'now');"#,
            )
            .unwrap();
        init(&mut anonymous).unwrap();
        let author: Option<String> = anonymous
            .query_row("SELECT author FROM rs_outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(author, None);
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(init(&mut conn), Err(Error::Database(_))));
    }
}
