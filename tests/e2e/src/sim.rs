//! Deterministic simulation (issue 12, part 2): several engines against the
//! in-process reference server, through a seeded network that drops
//! requests, loses answers after the server applied them, cuts bodies and
//! answers 429 and 5xx; engines are "killed" (dropped mid-sync or between
//! writes, then reopened) at seeded points; a [`VirtualClock`] makes every
//! backoff and `Retry-After` instantaneous. Everything that varies comes
//! from the seed, so a failing seed replays exactly:
//! `ROWSYNC_SIM_SEED=<seed> cargo test -p rowsync-e2e --test sim -- --nocapture`.
//!
//! After the run the network heals and every engine syncs to the end; then
//! the ledger of every write that returned success is checked against the
//! server and every replica (no loss, no duplicate, convergence), along with
//! the invariants of `docs/DESIGN.md` that can be observed from outside.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rowsync::{
    Clock, Credentials, Dialect, Engine, HttpRequest, HttpResponse, RecordId, Settings, Transport,
    TransportError, TransportErrorKind, VirtualClock,
};
use rowsync_refserver::{InProcessTransport, RefServer, RunningServer, ServerConfig};

use crate::proxy::FaultProxy;
use serde_json::{json, Map, Value};

/// What a seed's run did, for the totals a long run prints.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Requests the engines sent.
    pub requests: u64,
    /// Faults injected (every kind).
    pub faults: u64,
    /// Faults after the server applied the request (lost or cut answers,
    /// 500 after apply).
    pub applied_then_lost: u64,
    /// Engines killed (dropped mid-sync or between writes, then reopened).
    pub kills: u64,
    /// Writes that returned success to the app.
    pub acked_writes: u64,
    /// Syncs run (before healing).
    pub syncs: u64,
}

impl Stats {
    /// Adds `other` to these totals.
    pub fn add(&mut self, other: &Stats) {
        self.requests += other.requests;
        self.faults += other.faults;
        self.applied_then_lost += other.applied_then_lost;
        self.kills += other.kills;
        self.acked_writes += other.acked_writes;
        self.syncs += other.syncs;
    }
}

/// The seeded network between the engines and the server.
struct Net {
    server: Arc<RefServer>,
    rng: Mutex<fastrand::Rng>,
    /// Probability that a request meets a fault.
    rate: Mutex<f64>,
    requests: AtomicU64,
    faults: AtomicU64,
    applied_then_lost: AtomicU64,
}

impl Net {
    fn roll(&self) -> Option<u8> {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let rate = *self.rate.lock().unwrap_or_else(|e| e.into_inner());
        (rng.f64() < rate).then(|| rng.u8(0..11))
    }

    fn pick(&self, n: usize) -> usize {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .usize(0..n)
    }
}

fn io(message: &str) -> TransportError {
    TransportError::new(TransportErrorKind::Io, message)
}

fn status(code: u16, headers: Vec<(String, String)>, body: &str) -> HttpResponse {
    HttpResponse {
        status: code,
        headers,
        body: body.as_bytes().to_vec(),
        wire_bytes: None,
    }
}

/// A mahak save answer whose every result says `Index: 1` and names no
/// client id.
pub fn repeat_index(body: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let objects = v
        .get_mut("Data")
        .and_then(|d| d.get_mut("Objects"))
        .and_then(serde_json::Value::as_object_mut);
    for entry in objects.into_iter().flat_map(|o| o.values_mut()) {
        let results = entry
            .get_mut("Results")
            .and_then(serde_json::Value::as_array_mut);
        for r in results.into_iter().flatten() {
            if let Some(r) = r.as_object_mut() {
                r.insert("Index".into(), serde_json::Value::from(1));
                r.remove("EntityClientId");
            }
        }
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

const HTML_503: &str = "<html><body><h1>503 Service Unavailable</h1></body></html>";

/// One engine's link to the network: faults from the shared [`Net`], and
/// the engine's own death at its `kill_at`-th call.
struct Link {
    net: Arc<Net>,
    calls: AtomicU32,
    /// The call (1-based) at which the process dies; 0: never.
    kill_at: AtomicU32,
    dead: AtomicBool,
}

impl Link {
    fn deliver(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        InProcessTransport::new(self.net.server.clone()).send(request)
    }
}

impl Transport for Link {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let net = &self.net;
        if self.dead.load(Ordering::SeqCst) {
            return Err(TransportError::new(
                TransportErrorKind::Connect,
                "the process is dead",
            ));
        }
        net.requests.fetch_add(1, Ordering::SeqCst);
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if std::env::var("ROWSYNC_SIM_DEBUG").is_ok() {
            eprintln!(
                "    -> {} {}",
                request.url.rsplit('/').next().unwrap_or_default(),
                String::from_utf8_lossy(&request.body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
        }
        if call == self.kill_at.load(Ordering::SeqCst) {
            // Killed during this call: the request reached the server or not.
            self.dead.store(true, Ordering::SeqCst);
            net.faults.fetch_add(1, Ordering::SeqCst);
            if net.pick(2) == 0 {
                let _ = self.deliver(request);
                net.applied_then_lost.fetch_add(1, Ordering::SeqCst);
            }
            return Err(io("killed"));
        }
        let Some(kind) = net.roll() else {
            return self.deliver(request);
        };
        net.faults.fetch_add(1, Ordering::SeqCst);
        let lost_after_apply = |net: &Net| {
            net.applied_then_lost.fetch_add(1, Ordering::SeqCst);
        };
        match kind {
            0 => Err(TransportError::new(
                TransportErrorKind::Connect,
                "connection refused",
            )),
            1 => Err(io("connection reset before the request was read")),
            2 => {
                let secs = net.pick(40);
                Ok(status(
                    429,
                    vec![("Retry-After".into(), secs.to_string())],
                    "",
                ))
            }
            3 => Ok(status(
                503,
                vec![("Content-Type".into(), "text/html".into())],
                HTML_503,
            )),
            4 => {
                let _ = self.deliver(request)?;
                lost_after_apply(net);
                Err(io("connection reset before the answer"))
            }
            5 => {
                // The answer is cut: the transport saw a short body.
                let answer = self.deliver(request)?;
                lost_after_apply(net);
                if answer.body.len() > 1 && net.pick(2) == 0 {
                    let cut = net.pick(answer.body.len());
                    return Ok(HttpResponse {
                        body: answer.body[..cut].to_vec(),
                        ..answer
                    });
                }
                Err(io("connection closed in the middle of the answer"))
            }
            6 => {
                let _ = self.deliver(request)?;
                lost_after_apply(net);
                Ok(status(500, Vec::new(), "Internal Server Error"))
            }
            7 => Ok(status(502, Vec::new(), "")),
            // The answer stalls (headers, part of the body, then nothing)
            // after the server handled the request.
            8 => {
                let _ = self.deliver(request)?;
                lost_after_apply(net);
                Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    "the answer stalled",
                ))
            }
            // Hostile save answers of the real dialect (issue 23): applied,
            // then refused as a whole with no per-record result, or with
            // results that repeat `Index: 1` and name no client id.
            kind => {
                let answer = self.deliver(request)?;
                let save = request.url.to_ascii_lowercase().contains("/sync/saveall");
                if !save || self.net.server.dialect() != rowsync_refserver::Dialect::Mahak {
                    return Ok(answer);
                }
                lost_after_apply(net);
                if kind == 9 {
                    return Ok(status(
                        200,
                        Vec::new(),
                        r#"{"Result":false,"Message":"خطا در ذخیره اطلاعات"}"#,
                    ));
                }
                Ok(HttpResponse {
                    body: repeat_index(&answer.body),
                    ..answer
                })
            }
        }
    }
}

/// The names a dialect gives the simulated shop's collections.
#[derive(Debug, Clone, Copy)]
struct Names {
    people: &'static str,
}

impl Names {
    fn of(dialect: Dialect) -> Names {
        match dialect {
            Dialect::Mahak => Names { people: "people" },
            Dialect::Documented => Names { people: "persons" },
        }
    }
}

/// What the app was told about one record it created: its collection, its
/// client id, the fields it last wrote (as acknowledged) and whether it
/// deleted it.
#[derive(Debug, Clone)]
struct Acked {
    collection: &'static str,
    client_id: i64,
    /// The parent order's client id (order lines).
    parent: Option<i64>,
    fields: Map<String, Value>,
    deleted: bool,
}

struct Client {
    db: PathBuf,
    engine: Option<Engine>,
    link: Option<Arc<Link>>,
    /// Every record this client created and was told was written.
    acked: Vec<Acked>,
    /// The checkpoints last read from the replica (never go back).
    checkpoints: BTreeMap<String, i64>,
}

/// One seed's world.
pub struct World {
    seed: u64,
    rng: fastrand::Rng,
    dialect: Dialect,
    names: Names,
    server: Arc<RefServer>,
    net: Arc<Net>,
    clock: VirtualClock,
    clients: Vec<Client>,
    dir: PathBuf,
    stats: Stats,
    settings: Settings,
    /// Seeded product details and people, for orders.
    details: Vec<i64>,
    people: Vec<i64>,
    products: Vec<i64>,
    marker: u64,
    /// Over real HTTP: the server on loopback and the faulty proxy in front.
    http: Option<(RunningServer, FaultProxy)>,
}

/// How the engines reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// In-process, through the seeded [`Link`]s (kills land inside syncs).
    InProcess,
    /// Over loopback HTTP with each engine's own ureq transport, through a
    /// [`FaultProxy`] (kills land between operations).
    Proxy,
}

/// A failed check: the seed and what broke.
#[derive(Debug)]
pub struct Failure {
    /// The seed that fails.
    pub seed: u64,
    /// What broke.
    pub message: String,
    /// Over which network.
    pub network: Network,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (var, test) = match self.network {
            Network::InProcess => ("ROWSYNC_SIM_SEED", "sim"),
            Network::Proxy => ("ROWSYNC_PROXY_SEED", "proxy"),
        };
        write!(
            f,
            "seed {} failed: {}\nreplay: {var}={} cargo test -p rowsync-e2e --test {test} -- --nocapture",
            self.seed, self.message, self.seed
        )
    }
}

type Check<T> = Result<T, String>;

fn scratch_dir(seed: u64) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("rowsync-sim-{}-{seed}", std::process::id()))
}

/// The sync's deadline in the simulation (virtual time).
const DEADLINE: Duration = Duration::from_secs(120);

impl World {
    /// A new world for `seed`: a server with a small shop, 1 to 3 engines.
    pub fn new(seed: u64) -> Check<World> {
        World::over(seed, Network::InProcess)
    }

    /// A new world for `seed` whose engines reach the server over `network`.
    pub fn over(seed: u64, network: Network) -> Check<World> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let dialect = if rng.u8(0..4) == 0 {
            Dialect::Documented
        } else {
            Dialect::Mahak
        };
        let names = Names::of(dialect);
        let config = ServerConfig {
            admin: true,
            seed,
            dialect: match dialect {
                Dialect::Mahak => rowsync_refserver::Dialect::Mahak,
                Dialect::Documented => rowsync_refserver::Dialect::Documented,
            },
            ..ServerConfig::default()
        };
        let server = RefServer::open(config).map_err(|e| format!("server: {e}"))?;
        let admin = server.admin();
        admin.seed_products(4).map_err(|e| e.to_string())?;
        admin.seed_persons(3).map_err(|e| e.to_string())?;
        let ids = |collection: &str, key: &str| -> Vec<i64> {
            admin
                .dump(collection)
                .iter()
                .filter_map(|r| r[key].as_i64())
                .collect()
        };
        let mut details = ids("productDetails", "productDetailId");
        let people = ids(names.people, "personId");
        let products = ids("products", "productId");
        if details.is_empty() {
            // The documented shop has no product details: lines name products.
            details.clone_from(&products);
        }
        if details.is_empty() || people.is_empty() {
            return Err("the seeded shop is empty".into());
        }
        let net = Arc::new(Net {
            server: server.clone(),
            rng: Mutex::new(fastrand::Rng::with_seed(seed.rotate_left(17) ^ 0x5EED)),
            rate: Mutex::new([0.0, 0.05, 0.15, 0.3][rng.usize(0..4)]),
            requests: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            applied_then_lost: AtomicU64::new(0),
        });
        let dir = scratch_dir(seed);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let http = match network {
            Network::InProcess => None,
            Network::Proxy => {
                let running = RunningServer::serve(server.clone(), "127.0.0.1:0")
                    .map_err(|e| format!("server: {e}"))?;
                let rate = [0.1, 0.2, 0.3][rng.usize(0..3)];
                let proxy = FaultProxy::start(running.addr(), seed ^ 0xFA17, rate)
                    .map_err(|e| format!("proxy: {e}"))?;
                Some((running, proxy))
            }
        };
        let base_url = match &http {
            Some((_, proxy)) => proxy.base_url(),
            None => "http://127.0.0.1/API/v3".into(),
        };
        let settings = Settings {
            dialect,
            base_url,
            connect_timeout_ms: 2_000,
            read_timeout_ms: 3_000,
            timeout_ms: 10_000,
            page_size: [2, 5, 100][rng.usize(0..3)],
            batch_size: [1, 3, 50][rng.usize(0..3)],
            max_attempts: 3,
            base_delay_ms: 500,
            max_delay_ms: 30_000,
            sync_deadline_ms: DEADLINE.as_millis() as u64,
            retry_budget: 6,
            // The shop's collections only: each pull asks for five, not 57.
            collections: [
                "products",
                "productDetails",
                names.people,
                "orders",
                "orderDetails",
            ]
            .map(String::from)
            .to_vec(),
            ..Settings::default()
        };
        let n = rng.usize(1..4);
        let clients = (0..n)
            .map(|i| Client {
                db: dir.join(format!("c{i}.db")),
                engine: None,
                link: None,
                acked: Vec::new(),
                checkpoints: BTreeMap::new(),
            })
            .collect();
        let clock = VirtualClock::new(chrono::Utc::now());
        let mut world = World {
            seed,
            rng,
            dialect,
            names,
            server,
            net,
            clock,
            clients,
            dir,
            stats: Stats::default(),
            settings,
            details,
            people,
            products,
            marker: 0,
            http,
        };
        for i in 0..n {
            world.open(i)?;
        }
        Ok(world)
    }

    fn credentials(&self) -> Credentials {
        self.server.config().credentials()
    }

    /// Opens (or reopens, after a kill) client `i`'s engine, and checks that
    /// every write it acknowledged is there (invariant 10).
    fn open(&mut self, i: usize) -> Check<()> {
        let link = Arc::new(Link {
            net: self.net.clone(),
            calls: AtomicU32::new(0),
            kill_at: AtomicU32::new(0),
            dead: AtomicBool::new(false),
        });
        let e = Engine::open(&self.clients[i].db).map_err(|e| format!("open: {e}"))?;
        e.configure(self.settings.clone())
            .map_err(|e| format!("configure: {e}"))?;
        e.set_credentials(self.credentials())
            .map_err(|e| format!("credentials: {e}"))?;
        if self.http.is_none() {
            e.set_transport(link.clone())
                .map_err(|e| format!("transport: {e}"))?;
        }
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        e.set_clock(Some(clock));
        let c = &mut self.clients[i];
        c.engine = Some(e);
        c.link = Some(link);
        self.check_acked_locally(i)
    }

    fn engine(&self, i: usize) -> Check<&Engine> {
        self.clients[i]
            .engine
            .as_ref()
            .ok_or_else(|| format!("client {i} has no engine"))
    }

    fn kill(&mut self, i: usize) -> Check<()> {
        self.stats.kills += 1;
        self.clients[i].engine = None;
        self.clients[i].link = None;
        self.open(i)
    }

    fn next_marker(&mut self, i: usize) -> String {
        self.marker += 1;
        format!("sim-{}-c{i}-{}", self.seed, self.marker)
    }

    /// Runs the seed: a random program of writes, syncs, kills, server
    /// edits and clock jumps; then heals and checks.
    pub fn run(mut self) -> Result<Stats, Failure> {
        let result = self.play().and_then(|()| self.heal_and_check());
        let _ = std::fs::remove_dir_all(&self.dir);
        match result {
            Ok(()) => Ok(self.stats),
            Err(message) => Err(Failure {
                seed: self.seed,
                message,
                network: if self.http.is_some() {
                    Network::Proxy
                } else {
                    Network::InProcess
                },
            }),
        }
    }

    fn play(&mut self) -> Check<()> {
        let steps = self.rng.usize(8..30);
        for step in 0..steps {
            let i = self.rng.usize(0..self.clients.len());
            let what = self.rng.u8(0..100);
            let r = match what {
                0..=39 => self.write(i),
                40..=74 => self.sync(i, true),
                75..=81 => self.kill(i),
                82..=91 => self.server_edit(),
                _ => {
                    self.clock
                        .advance(Duration::from_secs(self.rng.u64(1..3_600)));
                    Ok(())
                }
            };
            if std::env::var("ROWSYNC_SIM_DEBUG").is_ok() {
                eprintln!("step {step}: client {i} op {what}: {r:?}");
            }
            r.map_err(|e| format!("step {step} (client {i}): {e}"))?;
        }
        Ok(())
    }

    /// One local write the app makes, recorded in the ledger when it
    /// returned success.
    fn write(&mut self, i: usize) -> Check<()> {
        let choice = self.rng.u8(0..6);
        let marker = self.next_marker(i);
        let detail = self.details[self.rng.usize(0..self.details.len())];
        let person = self.people[self.rng.usize(0..self.people.len())];
        let lines = self.rng.usize(1..4);
        let pick = self.rng.usize(..);
        let people = self.names.people;
        let visitor = self.server.config().visitor_id;
        let e = self.engine(i)?;
        let mut acked = Vec::new();
        let mut changes: Vec<(usize, Map<String, Value>, bool)> = Vec::new();
        match choice {
            0 | 1 => {
                // A sale: an order and its lines, one write group.
                let order = json!({"orderType": 201, "personId": person, "visitorId": visitor,
                    "orderDate": "2025-11-29T12:00:00", "description": marker});
                let written = e.write(|w| {
                    let o = w.create("orders", order.clone())?;
                    let oc = o["orderClientId"].as_i64().unwrap_or_default();
                    let mut ls = Vec::new();
                    for n in 0..lines {
                        let line = json!({"orderClientId": oc, "productDetailId": detail,
                            "count1": 1 + n, "price": 1_000 * (n + 1), "description": format!("{marker}-l{n}")});
                        let l = w.create("orderDetails", line.clone())?;
                        ls.push((l["orderDetailClientId"].as_i64().unwrap_or_default(), line));
                    }
                    Ok((oc, ls))
                });
                let (oc, ls) = written.map_err(|e| format!("sale: {e}"))?;
                acked.push(Acked {
                    collection: "orders",
                    client_id: oc,
                    parent: None,
                    fields: fields_of(&order),
                    deleted: false,
                });
                for (lc, line) in ls {
                    acked.push(Acked {
                        collection: "orderDetails",
                        client_id: lc,
                        parent: Some(oc),
                        fields: fields_of(&line),
                        deleted: false,
                    });
                }
            }
            2 => {
                let person = json!({"name": marker, "mobile": "0912", "personCode": self.marker});
                let p = e
                    .create(people, person.clone())
                    .map_err(|e| format!("create person: {e}"))?;
                acked.push(Acked {
                    collection: people,
                    client_id: p["personClientId"].as_i64().unwrap_or_default(),
                    parent: None,
                    fields: fields_of(&person),
                    deleted: false,
                });
            }
            3 | 4 => {
                // Edit one of this client's own live records.
                let live: Vec<usize> = (0..self.clients[i].acked.len())
                    .filter(|&k| {
                        let a = &self.clients[i].acked[k];
                        !a.deleted && a.collection != "orderDetails"
                    })
                    .collect();
                if live.is_empty() {
                    return Ok(());
                }
                let k = live[pick % live.len()];
                let a = &self.clients[i].acked[k];
                let (field, value) = match a.collection {
                    "orders" => ("description", json!(format!("{marker}-edit"))),
                    _ => ("mobile", json!(format!("09{}", self.marker))),
                };
                if std::env::var("ROWSYNC_SIM_DEBUG").is_ok() {
                    eprintln!(
                        "  update {} c:{} {field}={value}",
                        a.collection, a.client_id
                    );
                }
                e.update(
                    a.collection,
                    RecordId::Client(a.client_id),
                    json!({ field: value.clone() }),
                )
                .map_err(|e| format!("update: {e}"))?;
                let mut f = Map::new();
                f.insert(field.into(), value);
                changes.push((k, f, false));
            }
            _ => {
                // Delete one of this client's own order lines or people.
                let live: Vec<usize> = (0..self.clients[i].acked.len())
                    .filter(|&k| {
                        let a = &self.clients[i].acked[k];
                        !a.deleted && a.collection != "orders"
                    })
                    .collect();
                if live.is_empty() {
                    return Ok(());
                }
                let k = live[pick % live.len()];
                let a = &self.clients[i].acked[k];
                e.delete(a.collection, RecordId::Client(a.client_id))
                    .map_err(|e| format!("delete: {e}"))?;
                changes.push((k, Map::new(), true));
            }
        }
        self.stats.acked_writes += 1;
        let c = &mut self.clients[i];
        c.acked.extend(acked);
        for (k, fields, deleted) in changes {
            c.acked[k].fields.extend(fields);
            c.acked[k].deleted |= deleted;
        }
        Ok(())
    }

    /// A sync of client `i`, perhaps killed at a seeded call. Checks its
    /// deadline (invariant 13) and its checkpoints (invariant 2).
    fn sync(&mut self, i: usize, may_kill: bool) -> Check<()> {
        self.stats.syncs += 1;
        let kill_at = if may_kill && self.http.is_none() && self.rng.u8(0..5) == 0 {
            self.rng.u32(1..12)
        } else {
            0
        };
        if let Some(link) = &self.clients[i].link {
            link.calls.store(0, Ordering::SeqCst);
            link.kill_at.store(kill_at, Ordering::SeqCst);
        }
        let started = self.clock.monotonic();
        let result = self.engine(i)?.sync();
        if std::env::var("ROWSYNC_SIM_DEBUG").is_ok() {
            let e = self.engine(i)?;
            eprintln!(
                "  sync kill_at={kill_at}: {:?}\n  status {:?}\n  log {:?}",
                result.as_ref().map(|r| (r.pushed, r.conflicts)),
                e.status().map(|s| s.counts),
                e.sync_log(12).map(|l| l
                    .into_iter()
                    .map(|x| (x.endpoint, x.status, x.error))
                    .collect::<Vec<_>>())
            );
        }
        let took = self.clock.monotonic().saturating_sub(started);
        if took > DEADLINE + Duration::from_secs(1) {
            return Err(format!(
                "a sync ran {took:?} of virtual time, past its deadline"
            ));
        }
        let killed = self.clients[i].link.as_ref().is_some_and(|l| {
            l.kill_at.store(0, Ordering::SeqCst);
            l.dead.load(Ordering::SeqCst)
        });
        if let Err(e) = &result {
            if !e.is_transient() && !killed {
                return Err(format!("sync failed for good: {e:?}"));
            }
        }
        self.check_checkpoints(i)?;
        if killed {
            self.kill(i)?;
        }
        Ok(())
    }

    /// A change made on the server by another program: a price, a product
    /// renamed or deleted.
    fn server_edit(&mut self) -> Check<()> {
        let admin = self.server.admin();
        let id = self.products[self.rng.usize(0..self.products.len())];
        let alive = admin
            .get("products", id)
            .is_some_and(|r| r["deleted"] != json!(true));
        if !alive {
            return Ok(());
        }
        if self.rng.u8(0..6) == 0 {
            admin.delete("products", id).map_err(|e| e.to_string())?;
        } else {
            let mut f = Map::new();
            f.insert(
                "name".into(),
                json!(format!("renamed {}", self.rng.u32(..))),
            );
            admin
                .update_fields("products", id, f)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Reads client `i`'s checkpoints from its replica: none may go back.
    fn check_checkpoints(&mut self, i: usize) -> Check<()> {
        let now = read_checkpoints(&self.clients[i].db)?;
        let c = &mut self.clients[i];
        for (name, before) in &c.checkpoints {
            let after = now.get(name).copied().unwrap_or(0);
            if after < *before {
                return Err(format!(
                    "checkpoint of {name} went back: {before} -> {after}"
                ));
            }
        }
        c.checkpoints = now;
        Ok(())
    }

    /// Every write client `i` acknowledged is in its replica as written.
    fn check_acked_locally(&self, i: usize) -> Check<()> {
        let e = self.engine(i)?;
        for a in &self.clients[i].acked {
            let local = e
                .get(a.collection, RecordId::Client(a.client_id))
                .map_err(|e| format!("get: {e}"))?;
            match local {
                None if a.deleted => {}
                None => {
                    return Err(format!(
                        "acknowledged {} c:{} is missing from its replica",
                        a.collection, a.client_id
                    ))
                }
                Some(r) if a.deleted && r["deleted"] != json!(true) => {
                    return Err(format!(
                        "deleted {} c:{} is alive in its replica",
                        a.collection, a.client_id
                    ))
                }
                Some(_) if a.deleted => {}
                Some(r) => same_fields(&a.fields, &r).map_err(|m| {
                    format!("{} c:{} in its replica: {m}", a.collection, a.client_id)
                })?,
            }
        }
        Ok(())
    }

    /// The network heals; every engine syncs until none has anything left;
    /// then the ledger, the server and the replicas are compared.
    fn heal_and_check(&mut self) -> Check<()> {
        *self.net.rate.lock().unwrap_or_else(|e| e.into_inner()) = 0.0;
        self.stats.requests = self.net.requests.load(Ordering::SeqCst);
        self.stats.faults = self.net.faults.load(Ordering::SeqCst);
        self.stats.applied_then_lost = self.net.applied_then_lost.load(Ordering::SeqCst);
        if let Some((_, proxy)) = &self.http {
            proxy.set_rate(0.0);
            let p = proxy.stats();
            self.stats.requests = p.requests;
            self.stats.faults = p.faults();
            self.stats.applied_then_lost = p.lost_after_apply + p.cut;
        }
        // Two rounds so every engine sees what the others pushed; a third
        // when one is still unsettled (an in-doubt create may need a pull
        // before it is sent again).
        for round in 0..3 {
            if round == 2 && self.settled()? {
                break;
            }
            for i in 0..self.clients.len() {
                let e = self.engine(i)?;
                e.sync()
                    .map_err(|e| format!("healed sync {round} of client {i}: {e:?}"))?;
                self.check_checkpoints(i)?;
            }
        }
        for i in 0..self.clients.len() {
            let counts = self.engine(i)?.status().map_err(|e| e.to_string())?.counts;
            if (
                counts.pending,
                counts.parked,
                counts.in_doubt,
                counts.dead_letters,
            ) != (0, 0, 0, 0)
            {
                let letters = self.engine(i)?.dead_letters().map_err(|e| e.to_string())?;
                return Err(format!(
                    "client {i} is not settled: {counts:?}; dead letters: {letters:?}"
                ));
            }
            self.check_acked_locally(i)?;
            integrity_ok(&self.clients[i].db)?;
        }
        self.check_server()?;
        for i in 0..self.clients.len() {
            self.check_converged(i)?;
        }
        Ok(())
    }

    /// True when no engine has anything left to push or settle.
    fn settled(&self) -> Check<bool> {
        for i in 0..self.clients.len() {
            let c = self.engine(i)?.status().map_err(|e| e.to_string())?.counts;
            if c.pending + c.in_doubt + c.parked > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// No loss, no duplicate: each acknowledged record is on the server
    /// once, as last written; nothing else was created there.
    fn check_server(&self) -> Check<()> {
        let admin = self.server.admin();
        let mut by_marker: HashMap<(String, String), usize> = HashMap::new();
        for collection in ["orders", "orderDetails", self.names.people] {
            for r in admin.dump(collection) {
                let field = if collection == self.names.people {
                    "name"
                } else {
                    "description"
                };
                if let Some(m) = r[field].as_str().filter(|m| m.starts_with("sim-")) {
                    *by_marker
                        .entry((collection.to_string(), m.trim_end().to_string()))
                        .or_default() += 1;
                }
            }
        }
        let mut expected = 0usize;
        for (i, c) in self.clients.iter().enumerate() {
            for a in &c.acked {
                let id = admin.id_for_client(a.collection, a.client_id);
                let Some(id) = id else {
                    if a.deleted {
                        // Created and deleted before it was pushed: the
                        // engine rightly sends neither.
                        continue;
                    }
                    if std::env::var("ROWSYNC_SIM_DEBUG").is_ok() {
                        let local = self
                            .engine(i)?
                            .get(a.collection, RecordId::Client(a.client_id));
                        eprintln!("local: {local:?}\nserver: {:#?}", admin.dump(a.collection));
                    }
                    return Err(format!(
                        "client {i}'s acknowledged {} c:{} never reached the server",
                        a.collection, a.client_id
                    ));
                };
                let Some(r) = admin.get(a.collection, id) else {
                    return Err(format!("{} {id} is gone from the server", a.collection));
                };
                if a.deleted {
                    if r["deleted"] != json!(true) {
                        return Err(format!("{} {id} was deleted but is alive", a.collection));
                    }
                } else {
                    same_fields(&a.fields, &r)
                        .map_err(|m| format!("{} {id} on the server: {m}", a.collection))?;
                }
                if let Some(parent) = a.parent {
                    let order = admin.id_for_client("orders", parent);
                    if order.is_none() || r["orderId"].as_i64() != order {
                        return Err(format!("line {id} is not linked to its order c:{parent}"));
                    }
                }
                expected += 1;
            }
        }
        let dups: Vec<_> = by_marker.iter().filter(|(_, n)| **n > 1).collect();
        if !dups.is_empty() {
            return Err(format!("duplicated on the server: {dups:?}"));
        }
        let found: usize = by_marker.values().sum();
        // Edits rename orders (`<marker>-edit`), still one record each.
        if found != expected {
            return Err(format!(
                "the server holds {found} simulated records, the ledger {expected}"
            ));
        }
        Ok(())
    }

    /// Client `i`'s replica holds exactly the server's live records, at the
    /// server's versions.
    fn check_converged(&self, i: usize) -> Check<()> {
        let e = self.engine(i)?;
        let admin = self.server.admin();
        for (collection, key) in [
            ("products", "productId"),
            ("productDetails", "productDetailId"),
            ("orders", "orderId"),
            ("orderDetails", "orderDetailId"),
            (self.names.people, "personId"),
        ] {
            let server: BTreeMap<i64, i64> = admin
                .dump(collection)
                .iter()
                .filter(|r| r["deleted"] != json!(true))
                .filter_map(|r| Some((r[key].as_i64()?, version(r)?)))
                .collect();
            let local: BTreeMap<i64, i64> = crate::local_all(e, collection)
                .iter()
                .filter_map(|r| Some((r[key].as_i64()?, version(r)?)))
                .collect();
            if server != local {
                return Err(format!(
                    "client {i}'s {collection} differ from the server's:\n  server {server:?}\n  local  {local:?}"
                ));
            }
        }
        Ok(())
    }

    /// The seed's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}

fn version(r: &Value) -> Option<i64> {
    r.get("rowVersion")
        .or_else(|| r.get("RowVersion"))
        .and_then(Value::as_i64)
}

fn fields_of(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Every field of `expected` is in `actual` with the same value (text
/// compared without trailing spaces, as the real server pads some).
fn same_fields(expected: &Map<String, Value>, actual: &Value) -> Check<()> {
    for (k, v) in expected {
        let found = actual.get(k.as_str()).or_else(|| {
            actual
                .as_object()
                .and_then(|m| m.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
                .map(|(_, v)| v)
        });
        let equal = match (v, found) {
            (Value::String(a), Some(Value::String(b))) => a.trim_end() == b.trim_end(),
            (a, Some(b)) => a == b,
            (_, None) => false,
        };
        if !equal {
            return Err(format!("{k}: expected {v}, found {found:?}"));
        }
    }
    Ok(())
}

fn read_checkpoints(db: &Path) -> Check<BTreeMap<String, i64>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
    let mut st = conn
        .prepare("SELECT name, checkpoint FROM rs_collections")
        .map_err(|e| e.to_string())?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

fn integrity_ok(db: &Path) -> Check<()> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if ok == "ok" {
        Ok(())
    } else {
        Err(format!("integrity_check: {ok}"))
    }
}

/// Runs `seed` to the end, in-process.
pub fn run_seed(seed: u64) -> Result<Stats, Failure> {
    run_seed_over(seed, Network::InProcess)
}

/// Runs `seed` to the end over `network`.
pub fn run_seed_over(seed: u64, network: Network) -> Result<Stats, Failure> {
    World::over(seed, network)
        .map_err(|message| Failure {
            seed,
            message,
            network,
        })?
        .run()
}
