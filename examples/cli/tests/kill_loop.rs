//! The kill loop (issue 12, part 1): real `rowsync` processes are SIGKILLed
//! at random moments of `put` (creates and updates), `delete`, `dlq retry`
//! and `sync`, on two replicas, against the reference server, which itself
//! loses some answers after applying the save. A ledger keeps every write
//! whose command returned success. At the end (faults off, every replica
//! synced to the end): each acknowledged write is on the server exactly
//! once and as written, nothing a killed command may have written is there
//! twice, the replicas equal the server, and `PRAGMA integrity_check` is ok.
//!
//! `ROWSYNC_KILLS` kills (300 by default; `make test-crash` runs 1,000).
//! The moments come from `ROWSYNC_KILL_SEED` (printed; random by default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rowsync::{Engine, RecordId, Settings};
use rowsync_refserver::{FaultConfig, RunningServer, ServerConfig};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_rowsync");
const PASSWORD: &str = "pass1";
/// An order naming this person is refused by the server: parked.
const NO_SUCH_PERSON: i64 = 9_999_999;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// What the app was told about one person it created.
#[derive(Debug, Default)]
struct Person {
    replica: usize,
    client_id: i64,
    /// The create returned success.
    acked: bool,
    /// The last mobile an update returned success for, and whether a
    /// killed update may have written another one after it.
    mobile: String,
    maybe_mobile: Vec<String>,
    /// A delete returned success / may have been written by a killed one.
    deleted: bool,
    maybe_deleted: bool,
}

struct Run {
    rng: fastrand::Rng,
    dbs: Vec<PathBuf>,
    kills: BTreeMap<&'static str, u64>,
    finished: BTreeMap<&'static str, u64>,
    /// Every person by its name (a unique marker).
    people: BTreeMap<String, Person>,
    n: u64,
}

enum Outcome {
    /// Exit 0, with its stdout.
    Done(String),
    Killed,
    /// Exited with an error before the kill (a sync that found the server
    /// losing answers, say): not acknowledged.
    Failed,
}

impl Run {
    fn spawn(
        &mut self,
        replica: usize,
        args: &[&str],
        window_ms: u64,
        what: &'static str,
    ) -> Outcome {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(&self.dbs[replica])
            .arg("--json")
            .args(args)
            .env("ROWSYNC_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("rowsync starts");
        std::thread::sleep(Duration::from_micros(self.rng.u64(0..window_ms * 1_000)));
        let _ = child.kill();
        let out = child.wait_with_output().expect("rowsync ends");
        if std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(9) {
            *self.kills.entry(what).or_default() += 1;
            return Outcome::Killed;
        }
        *self.finished.entry(what).or_default() += 1;
        if out.status.success() {
            Outcome::Done(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            assert_ne!(out.status.code(), Some(101), "{what} panicked");
            Outcome::Failed
        }
    }

    fn total_kills(&self) -> u64 {
        self.kills.values().sum()
    }

    fn step(&mut self) {
        let replica = self.rng.usize(0..self.dbs.len());
        match self.rng.u8(0..100) {
            0..=29 => {
                self.n += 1;
                let name = format!("kl-{}", self.n);
                let body = json!({"name": name, "mobile": format!("09{}", self.n)}).to_string();
                let outcome = self.spawn(replica, &["put", "people", &body], 12, "put (create)");
                let mut p = Person {
                    replica,
                    mobile: format!("09{}", self.n),
                    ..Person::default()
                };
                if let Outcome::Done(out) = outcome {
                    let v: Value = serde_json::from_str(&out).expect("put prints the record");
                    p.client_id = v["personClientId"].as_i64().expect("a client id");
                    p.acked = true;
                }
                self.people.insert(name, p);
            }
            30..=49 => {
                let Some(name) = self.pick_acked(replica) else {
                    return;
                };
                self.n += 1;
                let mobile = format!("09{}", self.n);
                let cid = self.people[&name].client_id;
                let body = json!({"personClientId": cid, "mobile": mobile}).to_string();
                let outcome = self.spawn(replica, &["put", "people", &body], 12, "put (update)");
                let p = self.people.get_mut(&name).expect("picked");
                match outcome {
                    Outcome::Done(_) => {
                        p.mobile = mobile;
                        p.maybe_mobile.clear();
                    }
                    _ => p.maybe_mobile.push(mobile),
                }
            }
            50..=57 => {
                let Some(name) = self.pick_acked(replica) else {
                    return;
                };
                let cid = self.people[&name].client_id;
                let outcome = self.spawn(
                    replica,
                    &["delete", "people", &format!("c:{cid}")],
                    12,
                    "delete",
                );
                let p = self.people.get_mut(&name).expect("picked");
                match outcome {
                    Outcome::Done(_) => p.deleted = true,
                    _ => p.maybe_deleted = true,
                }
            }
            58..=62 => {
                // A sale the server refuses: parked, then retried below.
                let body =
                    json!({"orderType": 201, "personId": NO_SUCH_PERSON, "description": "refused"})
                        .to_string();
                let _ = self.spawn(
                    replica,
                    &["put", "orders", &body],
                    12,
                    "put (refused order)",
                );
            }
            63..=69 => {
                let letters = Engine::open(&self.dbs[replica])
                    .and_then(|e| e.dead_letters())
                    .unwrap_or_default();
                if let Some(dl) = letters.first() {
                    let id = dl.id.to_string();
                    let _ = self.spawn(replica, &["dlq", "retry", &id], 12, "dlq retry");
                }
            }
            _ => {
                let _ = self.spawn(replica, &["sync"], 150, "sync");
            }
        }
    }

    /// A live person created (and acknowledged) on `replica`.
    fn pick_acked(&mut self, replica: usize) -> Option<String> {
        let names: Vec<&String> = self
            .people
            .iter()
            .filter(|(_, p)| p.acked && p.replica == replica && !p.deleted && !p.maybe_deleted)
            .map(|(n, _)| n)
            .collect();
        (!names.is_empty()).then(|| names[self.rng.usize(0..names.len())].clone())
    }
}

fn integrity_ok(db: &Path) {
    let conn = rusqlite::Connection::open(db).expect("opens");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok", "{}", db.display());
}

#[test]
fn commands_killed_at_random_moments_lose_and_double_nothing() {
    let kills = env_u64("ROWSYNC_KILLS").unwrap_or(300);
    let seed = env_u64("ROWSYNC_KILL_SEED").unwrap_or_else(|| fastrand::u64(..));
    println!("kill loop: seed {seed} (replay: ROWSYNC_KILL_SEED={seed} ROWSYNC_KILLS={kills})");
    let server = RunningServer::start(ServerConfig {
        faults: FaultConfig {
            latency_rate: 1.0,
            latency: Duration::from_millis(3),
            lose_after_apply_rate: 0.15,
            ..FaultConfig::default()
        },
        seed,
        ..ServerConfig::default()
    })
    .expect("server");
    let admin = server.server().admin();
    admin.seed_products(20).expect("products");
    admin.seed_persons(10).expect("people");
    let dir = std::env::temp_dir().join(format!("rowsync-kill-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let dbs: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("r{i}.db"))).collect();
    for db in &dbs {
        let e = Engine::open(db).expect("opens");
        e.configure(Settings {
            base_url: server.base_url(),
            username: "user1".into(),
            database_id: 1001,
            package_number: 2002,
            batch_size: 2,
            collections: vec!["people".into(), "orders".into()],
            max_attempts: 2,
            base_delay_ms: 1,
            max_delay_ms: 5,
            ..Settings::default()
        })
        .expect("configure");
    }
    let mut run = Run {
        rng: fastrand::Rng::with_seed(seed),
        dbs,
        kills: BTreeMap::new(),
        finished: BTreeMap::new(),
        people: BTreeMap::new(),
        n: 0,
    };
    let started = std::time::Instant::now();
    let mut steps = 0u64;
    while run.total_kills() < kills {
        run.step();
        steps += 1;
        assert!(
            steps < kills * 20,
            "the kills do not land: {:?}",
            run.finished
        );
    }

    // Heal, then every replica syncs to the end (twice: each sees the other's).
    server.server().faults().set_config(FaultConfig::default());
    for _ in 0..2 {
        for db in &run.dbs {
            let out = Command::new(BIN)
                .arg("--db")
                .arg(db)
                .arg("sync")
                .env("ROWSYNC_PASSWORD", PASSWORD)
                .stdin(Stdio::null())
                .output()
                .expect("sync");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // The server: each marker at most once; each acknowledged write as written.
    let mut on_server: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in admin.dump("people") {
        if let Some(name) = r["name"].as_str().filter(|n| n.starts_with("kl-")) {
            on_server
                .entry(name.trim_end().to_string())
                .or_default()
                .push(r);
        }
    }
    let (mut acked, mut lost, mut doubled) = (0, 0, 0);
    for (name, p) in &run.people {
        let copies = on_server.get(name).map_or(0, Vec::len);
        doubled += usize::from(copies > 1);
        if !p.acked {
            continue;
        }
        acked += 1;
        let Some(r) = on_server.get(name).and_then(|v| v.first()) else {
            if p.deleted || p.maybe_deleted {
                // Created and deleted (by a delete that returned success, or
                // by a killed one that committed) before any push: rightly
                // never sent. The replica must not have it either.
                let e = Engine::open(&run.dbs[p.replica]).expect("opens");
                let local = e.get("people", RecordId::Client(p.client_id)).expect("get");
                assert!(
                    local.is_none_or(|r| r["deleted"] == json!(true)),
                    "{name}: alive in its replica, never on the server"
                );
                continue;
            }
            lost += 1;
            eprintln!("lost: {name} {p:?}");
            continue;
        };
        let deleted = r["deleted"] == json!(true);
        if p.deleted {
            assert!(
                deleted,
                "{name}: an acknowledged delete is not on the server"
            );
        } else if !p.maybe_deleted {
            assert!(!deleted, "{name}: deleted, though no delete was made");
        }
        if !deleted {
            let mobile = r["mobile"]
                .as_str()
                .unwrap_or_default()
                .trim_end()
                .to_string();
            assert!(
                mobile == p.mobile || p.maybe_mobile.contains(&mobile),
                "{name}: mobile {mobile}, acknowledged {} (maybe {:?})",
                p.mobile,
                p.maybe_mobile
            );
        }
    }
    // Refused orders never reach the server.
    assert!(admin
        .dump("orders")
        .iter()
        .all(|o| o["personId"].as_i64() != Some(NO_SUCH_PERSON)));

    // The replicas: settled but for the refused orders, equal to the server.
    let server_people: BTreeMap<i64, i64> = admin
        .dump("people")
        .iter()
        .filter(|r| r["deleted"] != json!(true))
        .filter_map(|r| Some((r["personId"].as_i64()?, r["rowVersion"].as_i64()?)))
        .collect();
    for db in &run.dbs {
        integrity_ok(db);
        let e = Engine::open(db).expect("opens");
        let st = e.status().expect("status").counts;
        assert_eq!((st.pending, st.in_doubt), (0, 0), "{}", db.display());
        for dl in e.dead_letters().expect("dead letters") {
            for c in &dl.changes {
                assert_eq!(
                    c.collection, "orders",
                    "only refused orders are parked: {dl:?}"
                );
                assert_eq!(c.record["personId"], json!(NO_SUCH_PERSON), "{dl:?}");
            }
        }
        let local: BTreeMap<i64, i64> = e
            .list(
                "people",
                &rowsync::ListOptions {
                    limit: u64::MAX >> 1,
                    ..Default::default()
                },
            )
            .expect("list")
            .records
            .iter()
            .filter_map(|r| Some((r["personId"].as_i64()?, r["rowVersion"].as_i64()?)))
            .collect();
        assert_eq!(
            local,
            server_people,
            "{} differs from the server",
            db.display()
        );
        // Each acknowledged create of this replica is here, under its id.
        for p in run
            .people
            .values()
            .filter(|p| p.acked && !p.deleted && !p.maybe_deleted)
        {
            if run.dbs[p.replica] == *db {
                assert!(e
                    .get("people", RecordId::Client(p.client_id))
                    .expect("get")
                    .is_some());
            }
        }
    }
    println!(
        "kill loop: {} kills in {:.1} s ({:?}); commands that finished first: {:?}; ledger: {acked} acknowledged creates, {} people in all, {lost} lost, {doubled} doubled",
        run.total_kills(),
        started.elapsed().as_secs_f64(),
        run.kills,
        run.finished,
        run.people.len(),
    );
    assert_eq!((lost, doubled), (0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}
