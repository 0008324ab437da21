//! Issue 25.3, the server's clock, over loopback HTTP: the login answer's
//! `ServerTime` (Tehran wall time) gives the skew between the device's
//! clock and the server's. The sync report and the status carry it; past
//! `clock_skew_warning_seconds` (13 minutes by default) they warn and the
//! status listeners are told a `ClockSkewed` notice, while the connection
//! state keeps its meaning (`Online` after a sync that got answers).
//! Nothing is refused and no date is changed because of it. The reference
//! server's habits: `clock_offset_seconds` (its clock ahead or behind) and
//! `omit_server_time` (no `ServerTime` at all).
//!
//! The real clock drifts while a test runs: skews are checked within a
//! tolerance, never to the second.

use std::sync::{Arc, Mutex};

use rowsync::{ConnectionState, Engine, StatusListener, SyncReport, VirtualClock};
use rowsync_e2e::*;
use rowsync_refserver::{RunningServer, ServerConfig};
use serde_json::json;

/// How far a measured skew may be from the one set up (real time passes
/// between the server's answer and the client's reading of it).
const TOLERANCE: i64 = 5;

#[derive(Default)]
struct Seen(Mutex<Vec<ConnectionState>>);

impl StatusListener for Seen {
    fn on_status(&self, state: &ConnectionState) {
        self.0.lock().unwrap().push(state.clone());
    }
}

impl Seen {
    fn notices(&self) -> Vec<i64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|s| match s {
                ConnectionState::ClockSkewed { skew_seconds } => Some(*skew_seconds),
                _ => None,
            })
            .collect()
    }
}

fn server(offset: i64, omit: bool) -> RunningServer {
    let server = start(ServerConfig {
        clock_offset_seconds: offset,
        omit_server_time: omit,
        ..mahak_server_config()
    });
    server.server().admin().seed_products(1).unwrap();
    server.server().admin().seed_persons(1).unwrap();
    server
}

fn engine_warning_at(db: &TempDb, server: &RunningServer, threshold: Option<u64>) -> Engine {
    let mut settings = mahak_settings(&server.base_url());
    if let Some(t) = threshold {
        settings.clock_skew_warning_seconds = t;
    }
    let e = Engine::open(&db.0).unwrap();
    e.configure(settings).unwrap();
    e.set_credentials(credentials()).unwrap();
    e
}

fn assert_near(got: Option<i64>, want: i64) {
    let got = got.unwrap_or_else(|| panic!("a skew near {want} was expected, got none"));
    assert!(
        (got - want).abs() <= TOLERANCE,
        "skew {got}, expected {want}"
    );
}

/// Syncs with a listener on; returns the report and the notices told.
fn sync_seen(e: &Engine) -> (SyncReport, Vec<i64>) {
    let seen = Arc::new(Seen::default());
    let _sub = e.subscribe_status(seen.clone());
    let report = e.sync().unwrap();
    (report, seen.notices())
}

/// The habit off: the server's clock is the device's. The skew is about 0,
/// nothing warns, and the state is `Online`.
#[test]
fn a_server_on_time_shows_no_skew_worth_a_warning() {
    let server = server(0, false);
    let db = TempDb::new("clock-on-time");
    let e = engine_warning_at(&db, &server, None);
    let (report, notices) = sync_seen(&e);
    assert_near(report.clock_skew_seconds, 0);
    assert!(!report.clock_skew_warning);
    assert!(notices.is_empty(), "{notices:?}");
    assert_eq!(report.connection, Some(ConnectionState::Online));
    let status = e.status().unwrap();
    assert_near(status.clock_skew_seconds, 0);
    assert!(!status.clock_skew_warning);
    assert_eq!(e.settings().unwrap().clock_skew_warning_seconds, 780);
}

/// A server 20 minutes ahead: the device is 1200 s behind, past the 13
/// minutes of the default. The report and the status warn, the listeners
/// are told `ClockSkewed` once, and the state is still `Online`. Nothing
/// is refused: an order written with its date is pushed, the date as
/// written.
#[test]
fn twenty_minutes_off_warns_and_refuses_nothing() {
    let server = server(20 * 60, false);
    let db = TempDb::new("clock-20min");
    let e = engine_warning_at(&db, &server, None);
    let (report, notices) = sync_seen(&e);
    assert_near(report.clock_skew_seconds, -1200);
    assert!(report.clock_skew_warning);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_near(notices.first().copied(), -1200);
    assert_eq!(report.connection, Some(ConnectionState::Online));
    let status = e.status().unwrap();
    assert!(status.clock_skew_warning);
    assert_eq!(status.connection, ConnectionState::Online);

    let person = local_all(&e, "people")[0]["personId"].as_i64().unwrap();
    let visitor = e.session().unwrap().unwrap().visitor_id;
    let date = "2026-12-05T10:00:00";
    let order = e
        .create(
            "orders",
            json!({"orderType": 203, "personId": person, "visitorId": visitor, "orderDate": date}),
        )
        .unwrap();
    let (report, _) = sync_seen(&e);
    assert_eq!(report.pushed, 1, "{report:?}");
    assert!(
        report.clock_skew_warning,
        "still known after a sync without a login"
    );
    let cid = client_id(&order, "order");
    let admin = server.server().admin();
    let id = admin
        .id_for_client("orders", cid)
        .expect("the order reached the server");
    let on_server = admin.get("orders", id).unwrap();
    assert_eq!(on_server["orderDate"], date, "the date is sent as written");
}

/// Five minutes off is shown but does not warn; a lower threshold makes it
/// warn, and 0 never warns.
#[test]
fn five_minutes_off_is_shown_and_the_threshold_is_the_apps() {
    let server = server(-5 * 60, false);
    for (threshold, warns) in [(None, false), (Some(60), true), (Some(0), false)] {
        let db = TempDb::new("clock-5min");
        let e = engine_warning_at(&db, &server, threshold);
        let (report, notices) = sync_seen(&e);
        assert_near(report.clock_skew_seconds, 300);
        assert_eq!(report.clock_skew_warning, warns, "{threshold:?}");
        assert_eq!(
            notices.len(),
            usize::from(warns),
            "{threshold:?}: {notices:?}"
        );
        assert_eq!(e.status().unwrap().clock_skew_warning, warns);
    }
}

/// A server that does not say its time: no skew is known, nothing warns,
/// and the sync works as ever.
#[test]
fn a_server_without_server_time_gives_no_skew() {
    let server = server(20 * 60, true);
    let db = TempDb::new("clock-none");
    let e = engine_warning_at(&db, &server, None);
    let (report, notices) = sync_seen(&e);
    assert_eq!(report.error, None);
    assert_eq!(report.clock_skew_seconds, None);
    assert!(!report.clock_skew_warning);
    assert!(notices.is_empty());
    assert_eq!(e.status().unwrap().clock_skew_seconds, None);
    assert_eq!(local_all(&e, "products").len(), 1);
}

/// The skew is measured against the engine's clock: a virtual device
/// clock 20 minutes ahead of a server on time is +1200 s. A new process
/// on the same replica shows the last sync's measure until it logs in.
#[test]
fn the_skew_is_measured_on_the_engines_clock_and_kept() {
    let server = server(0, false);
    let db = TempDb::new("clock-virtual");
    {
        let e = engine_warning_at(&db, &server, None);
        let ahead = chrono::Utc::now() + chrono::Duration::minutes(20);
        e.set_clock(Some(Arc::new(VirtualClock::new(ahead))));
        let (report, notices) = sync_seen(&e);
        assert_near(report.clock_skew_seconds, 1200);
        assert!(report.clock_skew_warning);
        assert_eq!(notices.len(), 1);
    }
    let e = Engine::open(&db.0).unwrap();
    let status = e.status().unwrap();
    assert_near(status.clock_skew_seconds, 1200);
    assert!(status.clock_skew_warning);
}
