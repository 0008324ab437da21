//! "Why isn't this record syncing?" (issue 13, part 5): `Engine::explain`
//! in every state, against the reference server in the mahak dialect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use rowsync::{
    Engine, Explanation, HttpRequest, HttpResponse, RecordId, Transport, TransportError,
    TransportErrorKind,
};
use rowsync_e2e::*;
use rowsync_refserver::{InProcessTransport, RefServer};
use serde_json::json;

fn shop() -> Arc<RefServer> {
    let s = RefServer::open(mahak_server_config()).unwrap();
    s.admin().seed_products(3).unwrap();
    s.admin().seed_persons(2).unwrap();
    s
}

fn person(e: &Engine, name: &str) -> i64 {
    client_id(
        &e.create("people", json!({"name": name, "mobile": "0912"}))
            .unwrap(),
        "person",
    )
}

fn state(x: &Explanation) -> &'static str {
    match x {
        Explanation::NeverSeen => "never_seen",
        Explanation::Synced { .. } => "synced",
        Explanation::Pending { .. } => "pending",
        Explanation::InFlight { .. } => "in_flight",
        Explanation::InDoubt { .. } => "in_doubt",
        Explanation::Parked { .. } => "parked",
        Explanation::WaitingForParent { .. } => "waiting_for_parent",
        Explanation::WaitingForUser { .. } => "waiting_for_user",
        Explanation::WaitingForUsersParent { .. } => "waiting_for_users_parent",
        Explanation::Overridden { .. } => "overridden",
        Explanation::Deleted { .. } => "deleted",
    }
}

/// Delivers requests; when armed, the next save waits until `go` is sent.
struct Valve {
    inner: InProcessTransport,
    hold: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl Transport for Valve {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
        if req.url.to_ascii_lowercase().contains("/sync/saveall") {
            if let Some((at_save, go)) = self.hold.lock().unwrap().take() {
                at_save.send(()).unwrap();
                go.recv().unwrap();
            }
        }
        self.inner.send(req)
    }
}

#[test]
fn explain_names_every_state() {
    let server = shop();
    let db = TempDb::new("explain");
    let e = Arc::new(engine_in_process(&db, &server));
    let valve = Arc::new(Valve {
        inner: InProcessTransport::new(server.clone()),
        hold: Mutex::new(None),
    });
    e.set_transport(valve.clone()).unwrap();
    e.sync().unwrap();

    // Never seen.
    let x = e.explain("people", RecordId::Server(987_654)).unwrap();
    assert_eq!(x, Explanation::NeverSeen);
    assert!(x.words().starts_with("never seen"));

    // Pending, then synced.
    let p = person(&e, "مشتری تازه");
    let x = e.explain("people", RecordId::Client(p)).unwrap();
    assert!(
        matches!(
            x,
            Explanation::Pending {
                op: rowsync::Op::Create,
                last_error: None,
                ..
            }
        ),
        "{x:?}"
    );
    e.sync().unwrap();
    let x = e.explain("people", RecordId::Client(p)).unwrap();
    let Explanation::Synced {
        server_id: Some(sid),
        row_version: Some(_),
        last_sync_at: Some(_),
    } = x
    else {
        panic!("{x:?}");
    };
    assert_eq!(server.admin().id_for_client("people", p), Some(sid));

    // In flight: asked while the save is on its way.
    let q = person(&e, "در راه");
    let (at_save_tx, at_save) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    *valve.hold.lock().unwrap() = Some((at_save_tx, go_rx));
    let syncing = {
        let e = e.clone();
        std::thread::spawn(move || e.sync())
    };
    at_save.recv().unwrap();
    let x = e.explain("people", RecordId::Client(q)).unwrap();
    assert!(
        matches!(
            x,
            Explanation::InFlight {
                op: rowsync::Op::Create
            }
        ),
        "{x:?}"
    );
    go.send(()).unwrap();
    syncing.join().unwrap().unwrap();
    assert_eq!(
        state(&e.explain("people", RecordId::Client(q)).unwrap()),
        "synced"
    );

    // In doubt: the save was applied, its answer lost, and the link died.
    let r = person(&e, "بی‌پاسخ");
    e.set_transport(Arc::new(DiesAfterSave::new(server.clone())))
        .unwrap();
    assert!(e.sync().is_err());
    let x = e.explain("people", RecordId::Client(r)).unwrap();
    assert!(
        matches!(
            x,
            Explanation::InDoubt {
                op: rowsync::Op::Create,
                ..
            }
        ),
        "{x:?}"
    );
    assert!(x.words().contains("answer never came"));
    e.set_transport(valve.clone()).unwrap();
    e.sync().unwrap();
    assert_eq!(
        state(&e.explain("people", RecordId::Client(r)).unwrap()),
        "synced"
    );

    // Parked, and a line waiting behind its parked order.
    let visitor = e.session().unwrap().map_or(0, |s| s.visitor_id);
    let order = client_id(
        &e.create(
            "orders",
            json!({"orderType": 201, "visitorId": visitor, "personId": 9_999_999}),
        )
        .unwrap(),
        "order",
    );
    e.sync().unwrap();
    let x = e.explain("orders", RecordId::Client(order)).unwrap();
    let Explanation::Parked {
        dead_letter,
        ref message,
        ..
    } = x
    else {
        panic!("{x:?}");
    };
    assert!(!message.is_empty(), "the server's words");
    let detail = local_all(&e, "productDetails")[0]["productDetailId"]
        .as_i64()
        .unwrap();
    let line = client_id(
        &e.create(
            "orderDetails",
            json!({"orderClientId": order, "productDetailId": detail, "count1": 1}),
        )
        .unwrap(),
        "orderDetail",
    );
    e.sync().unwrap();
    let x = e.explain("orderDetails", RecordId::Client(line)).unwrap();
    assert_eq!(
        x,
        Explanation::WaitingForParent {
            collection: "orders".into(),
            server_id: None,
            client_id: Some(order),
            dead_letter,
        }
    );

    // Overridden: a financial record edited on both sides; the server wins.
    let sale = client_id(
        &e.create(
            "orders",
            json!({"orderType": 201, "visitorId": visitor, "personId": sid, "description": "till"}),
        )
        .unwrap(),
        "order",
    );
    e.sync().unwrap();
    let oid = server.admin().id_for_client("orders", sale).unwrap();
    e.update(
        "orders",
        RecordId::Server(oid),
        json!({"description": "mine"}),
    )
    .unwrap();
    let mut f = serde_json::Map::new();
    f.insert("description".into(), json!("the office's"));
    server.admin().update_fields("orders", oid, f).unwrap();
    e.sync().unwrap();
    let x = e.explain("orders", RecordId::Server(oid)).unwrap();
    let Explanation::Overridden { ref conflict } = x else {
        panic!("{x:?}");
    };
    assert_eq!(conflict.resolution, "server_wins");
    assert!(conflict.fields.contains(&"description".to_string()));

    // Deleted here, and deleted on the server.
    e.delete("people", RecordId::Server(sid)).unwrap();
    assert!(matches!(
        e.explain("people", RecordId::Server(sid)).unwrap(),
        Explanation::Pending {
            op: rowsync::Op::Delete,
            ..
        }
    ));
    e.sync().unwrap();
    assert_eq!(
        state(&e.explain("people", RecordId::Server(sid)).unwrap()),
        "deleted"
    );
    let other = local_all(&e, "people")[0]["personId"].as_i64().unwrap();
    server.admin().delete("people", other).unwrap();
    e.sync().unwrap();
    assert_eq!(
        state(&e.explain("people", RecordId::Server(other)).unwrap()),
        "deleted"
    );

    // A failed sync's words reach a pending change.
    let s2 = person(&e, "بعدی");
    e.set_transport(Arc::new(DiesAfterSave::new(server.clone())))
        .unwrap();
    server
        .faults()
        .inject(None, rowsync_refserver::Fault::DropBeforeResponse, 1_000);
    assert!(e.sync().is_err());
    server.faults().clear();
    let x = e.explain("people", RecordId::Client(s2)).unwrap();
    assert!(
        matches!(
            &x,
            Explanation::Pending {
                last_error: Some(_),
                ..
            }
        ),
        "{x:?}"
    );
    // Every state serialises with its name.
    let text = serde_json::to_string(&x).unwrap();
    assert!(text.contains("\"state\":\"pending\""), "{text}");
}

/// Delivers every request until the first save, which the server applies
/// but whose answer is lost; then the link is dead.
struct DiesAfterSave {
    inner: InProcessTransport,
    dead: AtomicBool,
}

impl DiesAfterSave {
    fn new(server: Arc<RefServer>) -> Self {
        DiesAfterSave {
            inner: InProcessTransport::new(server),
            dead: AtomicBool::new(false),
        }
    }
}

impl Transport for DiesAfterSave {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let dead = || TransportError::new(TransportErrorKind::Io, "dead link");
        if self.dead.load(Ordering::SeqCst) {
            return Err(dead());
        }
        if req.url.to_ascii_lowercase().contains("/sync/saveall") {
            let _ = self.inner.send(req);
            self.dead.store(true, Ordering::SeqCst);
            return Err(dead());
        }
        self.inner.send(req)
    }
}
