//! Uploads and disputes with real kills (issue 13): a `rowsync` process is
//! SIGKILLed while its upload or dispute is at the server (which applies it
//! after the client died), and while `rowsync upload` copies a file into
//! the replica. Nothing is lost, nothing half-written is left, and nothing
//! is sent twice where the server does not deduplicate.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rowsync::{Dialect, Engine, OrderDisputeItem, RecordId, Settings, UploadSource};
use rowsync_refserver::{Fault, RunningServer, ServerConfig};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_rowsync");

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rowsync-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn engine(db: &Path, server: &RunningServer, dialect: Dialect) -> Engine {
    let e = Engine::open(db).unwrap();
    let config = server.server().config();
    e.configure(Settings {
        dialect,
        base_url: server.base_url(),
        username: "user1".into(),
        database_id: config.database_id,
        package_number: config.package_number,
        max_upload_bytes: 64 << 20,
        ..Settings::default()
    })
    .unwrap();
    e.set_credentials(config.credentials()).unwrap();
    e
}

fn sync_process(db: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--db")
        .arg(db)
        .arg("sync")
        .env("ROWSYNC_PASSWORD", "pass1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Waits until the replica's one task is marked sent (the request is on
/// its way), read from another connection while the process runs.
fn wait_until_sent(db: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| {
                    c.query_row("SELECT MAX(sent) FROM rs_tasks", [], |r| {
                        r.get::<_, Option<i64>>(0)
                    })
                });
        if let Ok(Some(1)) = sent {
            return;
        }
        assert!(Instant::now() < deadline, "the task was never sent");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a sync process, kills it while its task's request is held at
/// the server, and waits until the server has applied it anyway.
fn kill_while_at_the_server(db: &Path, server: &RunningServer, endpoint: &str) {
    server.server().faults().inject(
        Some(endpoint),
        Fault::Latency(Duration::from_millis(1_500)),
        1,
    );
    let mut child = sync_process(db).spawn().unwrap();
    wait_until_sent(db);
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed mid-call"
    );
}

#[test]
fn an_upload_killed_at_the_server_is_sent_again_and_stored_once() {
    let server = RunningServer::start(ServerConfig {
        admin: true,
        ..ServerConfig::default()
    })
    .unwrap();
    let dir = temp_dir("kill-upload");
    let db = dir.join("replica.db");
    let photo: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    {
        let e = engine(&db, &server, Dialect::Mahak);
        let pic = e
            .create("pictures", json!({"fileName": "front.jpg"}))
            .unwrap();
        let cid = pic["pictureClientId"].as_i64().unwrap();
        e.sync().unwrap();
        e.queue_upload(
            "pictures",
            RecordId::Client(cid),
            UploadSource::Bytes(photo.clone()),
            "front.jpg",
        )
        .unwrap();
    }
    kill_while_at_the_server(&db, &server, "Upload");
    let admin = server.server().admin();
    wait_for("the upload to be stored", || admin.uploads().len() == 1);
    assert!(sync_process(&db).status().unwrap().success());
    let stored = admin.uploads();
    assert_eq!(stored.len(), 1, "stored once");
    assert_eq!(stored[0].received, 2, "sent again after the kill");
    assert_eq!(stored[0].data, photo);
    let e = Engine::open(&db).unwrap();
    assert!(e.tasks().unwrap().is_empty());
    assert!(e.dead_letters().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dispute_killed_at_the_server_is_never_sent_twice() {
    for dialect in [Dialect::Mahak, Dialect::Documented] {
        let server = RunningServer::start(ServerConfig {
            admin: true,
            dialect: match dialect {
                Dialect::Mahak => rowsync_refserver::Dialect::Mahak,
                Dialect::Documented => rowsync_refserver::Dialect::Documented,
            },
            ..ServerConfig::default()
        })
        .unwrap();
        let dir = temp_dir(&format!("kill-dispute-{dialect}"));
        let db = dir.join("replica.db");
        {
            let e = engine(&db, &server, dialect);
            e.sync().unwrap();
            e.solve_order_dispute(vec![OrderDisputeItem {
                order_id: 41,
                code: 2,
                resolution: "reject".into(),
                ..Default::default()
            }])
            .unwrap();
        }
        kill_while_at_the_server(&db, &server, "SolveOrderDispute");
        let admin = server.server().admin();
        wait_for("the dispute to be received", || admin.disputes().len() == 1);
        assert!(sync_process(&db).status().unwrap().success());
        assert!(sync_process(&db).status().unwrap().success());
        assert_eq!(admin.disputes().len(), 1, "{dialect}: received once");
        let e = Engine::open(&db).unwrap();
        let letters = e.dead_letters().unwrap();
        match dialect {
            // It cannot know: parked for the app, with the reason.
            Dialect::Mahak => {
                assert_eq!(letters.len(), 1);
                assert_eq!(letters[0].tasks.len(), 1);
                assert!(letters[0].message.contains("never came"));
            }
            // Resent with its request id; the server answered as before.
            Dialect::Documented => {
                assert!(letters.is_empty());
                assert!(e.tasks().unwrap().is_empty());
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn rowsync_upload_killed_mid_copy_leaves_no_half_entry() {
    let server = RunningServer::start(ServerConfig::default()).unwrap();
    let dir = temp_dir("kill-copy");
    let db = dir.join("replica.db");
    let file = dir.join("scan.pdf");
    std::fs::write(&file, vec![0x25u8; 24 << 20]).unwrap();
    let cid = {
        let e = engine(&db, &server, Dialect::Mahak);
        let pic = e
            .create("pictures", json!({"fileName": "scan.pdf"}))
            .unwrap();
        pic["pictureClientId"].as_i64().unwrap()
    };
    let upload = || {
        Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .args(["upload", "pictures", &format!("c:{cid}")])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole copy takes here, to aim the kills inside it.
    let started = Instant::now();
    assert!(upload().wait().unwrap().success());
    let full = started.elapsed().as_millis().max(20) as u64;
    let mut seed = started.elapsed().as_nanos() as u64 | 1;
    // Copies killed before their commit (no entry added) and after it.
    let (mut cut, mut late, mut finished) = (0, 0, 1);
    let mut entries = 1;
    for _ in 0..12 {
        let mut child = upload();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % full));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let succeeded = status.success();
        // Whatever the moment: every queued upload holds its whole file,
        // and no file is left without its entry.
        let c = rusqlite::Connection::open(&db).unwrap();
        let (tasks, whole, orphans): (i64, i64, i64) = c
            .query_row(
                "SELECT (SELECT COUNT(*) FROM rs_tasks),
                        (SELECT COUNT(*) FROM rs_tasks t JOIN rs_task_files f ON f.task = t.id
                          WHERE length(f.data) = t.size AND t.size = ?1),
                        (SELECT COUNT(*) FROM rs_task_files f
                          WHERE NOT EXISTS (SELECT 1 FROM rs_tasks t WHERE t.id = f.task))",
                [24i64 << 20],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((tasks, orphans), (whole, 0), "no half entry");
        match (succeeded, tasks - entries) {
            (true, 1) => finished += 1,
            (false, 1) => late += 1,
            (false, 0) => cut += 1,
            other => panic!("a copy added {} entries (exit ok: {})", other.1, other.0),
        }
        entries = tasks;
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
    eprintln!("{cut} copies killed before their commit, {late} after it, {finished} finished");
    assert!(cut > 0, "no kill landed inside a copy");
    let _ = std::fs::remove_dir_all(&dir);
}
