//! The bad-input catalogue (issue 12, part 6): a table of malformed server
//! answers and hostile app inputs. For each row the test checks the typed
//! error (or that the input is rightly accepted), that the replica was left
//! exactly as it was (records, outbox, checkpoints, dead letters, conflict
//! log; a save whose answer is unreadable may only mark its creates in
//! doubt), and that it took less than its time bound.
//!
//! The table is printed into `docs/BAD_INPUTS.md`; the test fails if the
//! committed file differs (`ROWSYNC_WRITE_DOCS=1` rewrites it).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rowsync::{Engine, Error, HttpRequest, HttpResponse, RecordId, Transport, TransportError};
use rowsync_e2e::*;
use rowsync_refserver::{InProcessTransport, RefServer};
use serde_json::json;

/// Where a bad input comes in.
#[derive(Clone, Copy)]
enum Via {
    /// The answer to the pull.
    Pull,
    /// The answer to the save (a sale is pending).
    Save,
    /// The answer to the login.
    Login,
    /// A server that sends headers and half a body, then stalls.
    Stall,
    /// The app's own call.
    App(fn(&Engine) -> Result<(), Error>),
}

struct Row {
    what: &'static str,
    via: Via,
    /// The answer's body (server rows), in the dialect of `documented`.
    body: Vec<u8>,
    documented: bool,
    /// The expected outcome: an error variant's name, or `accepted`.
    expect: &'static str,
    /// The time bound.
    bound: Duration,
}

fn row(what: &'static str, via: Via, body: impl Into<Vec<u8>>, expect: &'static str) -> Row {
    Row {
        what,
        via,
        body: body.into(),
        documented: false,
        expect,
        bound: Duration::from_secs(2),
    }
}

fn mahak_page(objects: &str) -> String {
    format!(r#"{{"Result":true,"Message":"","Data":{{"Objects":{{{objects}}}}}}}"#)
}

fn rows() -> Vec<Row> {
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let mut huge = String::from(r#"{"Result":true,"Data":{"Objects":{"Products":["#);
    for i in 0..50_000 {
        if i > 0 {
            huge.push(',');
        }
        huge.push_str(&format!(
            r#"{{"ProductId":{},"Name":"کالا {i}","RowVersion":{}}}"#,
            100_000 + i,
            9_000_000_000i64 + i
        ));
    }
    huge.push_str("]}}}");
    let mut invalid_utf8 =
        mahak_page(r#""Products":[{"ProductId":1,"Name":"X","RowVersion":9000000001}]"#)
            .into_bytes();
    let at = invalid_utf8.iter().position(|&b| b == b'X').unwrap_or(0);
    invalid_utf8[at] = 0xFF;
    let mut rows = vec![
        row(
            "a field of the wrong type (`ProductId` is text)",
            Via::Pull,
            mahak_page(r#""Products":[{"ProductId":"abc","RowVersion":9000000001}]"#),
            "Protocol",
        ),
        row(
            "`Objects` is a list, not an object",
            Via::Pull,
            r#"{"Result":true,"Data":{"Objects":[1,2]}}"#,
            "Protocol",
        ),
        row(
            "an id beyond i64",
            Via::Pull,
            mahak_page(
                r#""Products":[{"ProductId":18446744073709551616,"RowVersion":9000000001}]"#,
            ),
            "Protocol",
        ),
        row(
            "a negative `RowVersion`",
            Via::Pull,
            mahak_page(r#""Products":[{"ProductId":1,"RowVersion":-1}]"#),
            "Protocol",
        ),
        row(
            "a record that is not an object",
            Via::Pull,
            mahak_page(r#""Products":[1]"#),
            "Protocol",
        ),
        row(
            "invalid UTF-8 in a text",
            Via::Pull,
            invalid_utf8,
            "Protocol",
        ),
        row(
            "a record nested 200 levels deep",
            Via::Pull,
            mahak_page(&format!(
                r#""Products":[{{"ProductId":1,"RowVersion":9000000001,"X":{deep}}}]"#
            )),
            "Protocol",
        ),
        row(
            "a duplicate key in a record",
            Via::Pull,
            mahak_page(r#""Products":[{"ProductId":1,"ProductId":2,"RowVersion":9000000001}]"#),
            "Protocol",
        ),
        row(
            "an ordinary field given twice in a record",
            Via::Pull,
            mahak_page(
                r#""Products":[{"ProductId":1,"Name":"a","RowVersion":9000000001,"Name":"b"}]"#,
            ),
            "Protocol",
        ),
        row(
            "`Data: null`",
            Via::Pull,
            r#"{"Result":true,"Data":null}"#,
            "Protocol",
        ),
        row(
            "`Objects: null`",
            Via::Pull,
            r#"{"Result":true,"Data":{"Objects":null}}"#,
            "Protocol",
        ),
        row(
            "`Data` without `Objects`",
            Via::Pull,
            r#"{"Result":true,"Data":{"Count":0}}"#,
            "Protocol",
        ),
        row(
            "a body cut in the middle",
            Via::Pull,
            &mahak_page(r#""Products":[{"ProductId":1,"RowVersion":9000000001}]"#)[..40],
            "Offline",
        ),
        row("an empty 200 answer", Via::Pull, "", "Offline"),
        row(
            "an HTML page with status 200",
            Via::Pull,
            "<html><body>proxy error</body></html>",
            "Protocol",
        ),
        row(
            "headers, half a body, then silence",
            Via::Stall,
            "",
            "Stalled",
        ),
        Row {
            bound: Duration::from_secs(10),
            ..row(
                "a huge page (50,000 records, 4 MB)",
                Via::Pull,
                huge,
                "accepted",
            )
        },
        Row {
            documented: true,
            ..row(
                "`hasMore` with no progress (documented)",
                Via::Pull,
                r#"{"success":true,"data":{"products":{"rowVersion":0,"hasMore":true,"records":[]}}}"#,
                "Protocol",
            )
        },
        Row {
            documented: true,
            ..row(
                "`records: null` with a checkpoint (documented)",
                Via::Pull,
                r#"{"success":true,"data":{"products":{"rowVersion":999999,"hasMore":false,"records":null}}}"#,
                "accepted",
            )
        },
        Row {
            documented: true,
            ..row(
                "a checkpoint that goes backwards (documented)",
                Via::Pull,
                r#"{"success":true,"data":{"products":{"rowVersion":1,"hasMore":false,"records":[]}}}"#,
                "accepted",
            )
        },
        row(
            "a save answer that misses a record",
            Via::Save,
            r#"{"Result":true,"Data":{"Objects":{"Orders":{"Results":[{"Result":true,"Index":1,"EntityId":9001,"RowVersion":9100000000}]},"OrderDetails":{"Results":[]}}}}"#,
            "InDoubt",
        ),
        row(
            "a save answer that names an unknown client id",
            Via::Save,
            r#"{"Result":true,"Data":{"Objects":{"Orders":{"Results":[{"Result":true,"EntityClientId":12345,"EntityId":9001,"RowVersion":9100000000}]}}}}"#,
            "InDoubt",
        ),
        row(
            "a save answer that repeats an `Index` (no client ids)",
            Via::Save,
            r#"{"Result":true,"Data":{"Objects":{"Orders":{"Results":[{"Result":true,"Index":1,"EntityId":9001,"RowVersion":9100000000},{"Result":true,"Index":1,"EntityId":9002,"RowVersion":9100000001}]},"OrderDetails":{"Results":[{"Result":true,"Index":1,"EntityId":9003,"RowVersion":9100000002},{"Result":true,"Index":1,"EntityId":9004,"RowVersion":9100000003}]}}}}"#,
            "InDoubt",
        ),
        row(
            "a save answer with `Index: 0`",
            Via::Save,
            r#"{"Result":true,"Data":{"Objects":{"Orders":{"Results":[{"Result":true,"Index":0,"EntityId":9001,"RowVersion":9100000000}]},"OrderDetails":{"Results":[{"Result":true,"Index":0,"EntityId":9003,"RowVersion":9100000002}]}}}}"#,
            "InDoubt",
        ),
        row(
            "a save refused as a whole, with no per-record result",
            Via::Save,
            r#"{"Result":false,"Message":"خطا در ذخیره اطلاعات"}"#,
            "InDoubt",
        ),
        row(
            "a save answer cut in the middle",
            Via::Save,
            r#"{"Result":true,"Data":{"Obje"#,
            "InDoubt",
        ),
        row(
            "a save answer with a negative id",
            Via::Save,
            r#"{"Result":true,"Data":{"Objects":{"Orders":{"Results":[{"Result":true,"Index":1,"EntityId":-5,"RowVersion":1}]}}}}"#,
            "Protocol",
        ),
        row(
            "a login answer with no token",
            Via::Login,
            r#"{"Result":true,"Data":{"VisitorId":5}}"#,
            "Protocol",
        ),
        row(
            "a login token with a line break (header injection)",
            Via::Login,
            "{\"Result\":true,\"Data\":{\"UserToken\":\"a\\r\\nX-Evil: 1\"}}",
            "Protocol",
        ),
        row(
            "the app: an unknown collection",
            Via::App(|e| e.create("nope", json!({})).map(drop)),
            "",
            "UnknownCollection",
        ),
        row(
            "the app: a record that is not an object",
            Via::App(|e| e.create("orders", json!([1, 2])).map(drop)),
            "",
            "InvalidRecord",
        ),
        row(
            "the app: a record nested 200 levels deep",
            Via::App(|e| {
                let mut v = json!(1);
                for _ in 0..200 {
                    v = json!([v]);
                }
                e.create("people", json!({"name": "x", "x": v})).map(drop)
            }),
            "",
            "InvalidRecord",
        ),
        row(
            "the app: an id of the wrong type",
            Via::App(|e| {
                e.create("people", json!({"personId": "x", "name": "y"}))
                    .map(drop)
            }),
            "",
            "InvalidRecord",
        ),
        row(
            "the app: a `rowVersion` of its own (-3), ignored",
            Via::App(|e| {
                let p = e.create("people", json!({"name": "y", "rowVersion": -3}))?;
                assert!(p["rowVersion"].is_null(), "the server's to set");
                Ok(())
            }),
            "",
            "accepted",
        ),
        row(
            "the app: an update of a record that does not exist",
            Via::App(|e| {
                e.update("people", RecordId::Server(987_654), json!({"name": "x"}))
                    .map(drop)
            }),
            "",
            "NotFound",
        ),
        row(
            "the app: a line whose order does not exist",
            Via::App(|e| {
                e.create(
                    "orderDetails",
                    json!({"orderClientId": 42, "productDetailId": 1}),
                )
                .map(drop)
            }),
            "",
            "InvalidRecord",
        ),
    ];
    for r in &mut rows {
        if matches!(r.via, Via::Stall) {
            r.bound = Duration::from_secs(5);
        }
    }
    rows
}

/// Answers the pull, the save or the login with a fixed body; the rest goes
/// to the real server.
struct Fixed {
    inner: InProcessTransport,
    via: Via,
    body: Vec<u8>,
}

impl Transport for Fixed {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = req.url.to_ascii_lowercase();
        let hit = match self.via {
            Via::Pull => url.contains("/sync/getalldata"),
            Via::Save => url.contains("/sync/saveall"),
            Via::Login => url.contains("/sync/login"),
            _ => false,
        };
        if hit {
            return Ok(HttpResponse {
                status: 200,
                headers: vec![("Trackingid".into(), "bad-input".into())],
                body: self.body.clone(),
                wire_bytes: None,
            });
        }
        self.inner.send(req)
    }
}

/// A server that sends the headers and half of the body, then stalls.
fn stalling_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Result\":true,",
                );
                std::thread::sleep(Duration::from_secs(30));
            });
        }
    });
    format!("http://{addr}/API/v3")
}

/// Everything a bad input must not change, as text.
fn dump(db: &Path, with_sent: bool) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let outbox = if with_sent {
        "SELECT * FROM rs_outbox ORDER BY local_id"
    } else {
        "SELECT local_id, seq, group_id, op, counter, base, parked FROM rs_outbox ORDER BY local_id"
    };
    let _ = with_sent;
    let mut out = String::new();
    for q in [
        "SELECT * FROM rs_records ORDER BY local_id",
        outbox,
        "SELECT name, checkpoint FROM rs_collections ORDER BY id",
        "SELECT * FROM rs_dead_letters ORDER BY id",
        "SELECT * FROM rs_conflicts ORDER BY id",
    ] {
        let mut st = conn.prepare(q).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let mut line = Vec::new();
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    line.push(format!("{v:?}"));
                }
                Ok(line.join("|"))
            })
            .unwrap();
        for r in rows {
            out.push_str(&r.unwrap());
            out.push('\n');
        }
    }
    out
}

fn variant(e: &Error) -> String {
    let text = format!("{e:?}");
    text.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

fn shop(documented: bool) -> Arc<RefServer> {
    let config = if documented {
        server_config()
    } else {
        mahak_server_config()
    };
    let s = RefServer::open(config).unwrap();
    s.admin().seed_products(5).unwrap();
    s.admin().seed_persons(3).unwrap();
    s
}

/// Runs one row; returns its outcome's name.
fn run(r: &Row) -> String {
    let server = shop(r.documented);
    let db = TempDb::new("bad");
    let e = engine_in_process(&db, &server);
    let mut s = e.settings().unwrap();
    s.max_attempts = 2;
    s.read_timeout_ms = 500;
    s.timeout_ms = 2_000;
    s.connect_timeout_ms = 1_000;
    s.sync_deadline_ms = 4_000;
    e.configure(s.clone()).unwrap();
    e.sync().unwrap();
    if matches!(r.via, Via::Save) {
        let detail = local_all(&e, "productDetails")[0]["productDetailId"].clone();
        e.write(|w| {
            let o = w.create(
                "orders",
                json!({"orderType": 201, "personId": 1, "visitorId": 1}),
            )?;
            let oc = o["orderClientId"].clone();
            w.create(
                "orderDetails",
                json!({"orderClientId": oc, "productDetailId": detail, "count1": 1}),
            )?;
            Ok(())
        })
        .unwrap();
    }
    let before = dump(&db.0, true);
    let started = Instant::now();
    let result = match r.via {
        Via::App(f) => f(&e),
        Via::Stall => {
            s.base_url = stalling_server();
            e.configure(s).unwrap();
            e.set_transport(Arc::new(
                rowsync::UreqTransport::new(rowsync::HttpConfig {
                    connect_timeout: Duration::from_secs(1),
                    timeout: Duration::from_secs(2),
                    read_timeout: Duration::from_millis(500),
                    gzip: true,
                })
                .unwrap(),
            ))
            .unwrap();
            e.disconnect().unwrap();
            e.set_credentials(credentials()).unwrap();
            e.sync().map(drop)
        }
        via => {
            e.set_transport(Arc::new(Fixed {
                inner: InProcessTransport::new(server.clone()),
                via,
                body: r.body.clone(),
            }))
            .unwrap();
            if matches!(via, Via::Login) {
                e.disconnect().unwrap();
                e.set_credentials(credentials()).unwrap();
            }
            e.sync().map(drop)
        }
    };
    let took = started.elapsed();
    let outcome = match &result {
        Ok(()) => "accepted".to_string(),
        Err(err) => variant(err),
    };
    assert!(
        took < r.bound,
        "{}: took {took:?}, bound {:?}",
        r.what,
        r.bound
    );
    if matches!(r.via, Via::Save) {
        // Nothing lost, nothing parked: each change is still pending (its
        // creates in doubt) unless the answer confirmed it by name.
        let st = e.status().unwrap().counts;
        assert_eq!(st.parked, 0, "{}", r.what);
        assert_eq!(local_all(&e, "orders").len(), 1, "{}", r.what);
        assert_eq!(local_all(&e, "orderDetails").len(), 1, "{}", r.what);
        assert!(st.pending >= 1 && st.in_doubt >= 1, "{}: {st:?}", r.what);
    } else if outcome != "accepted" {
        let after = dump(&db.0, true);
        if after != before {
            let b: Vec<&str> = before.lines().collect();
            let a: Vec<&str> = after.lines().collect();
            let gone: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
            let new: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
            panic!(
                "{}: the replica changed ({result:?}):\n-{gone:?}\n+{new:?}",
                r.what
            );
        }
    }
    if r.what.starts_with("a huge page") {
        assert_eq!(e.count("products", false).unwrap(), 5 + 50_000);
    }
    if r.what.starts_with("a checkpoint that goes backwards")
        || r.what.starts_with("`records: null`")
    {
        assert_eq!(dump(&db.0, true), before, "nothing moved back");
    }
    assert_eq!(outcome, r.expect, "{}: {result:?}", r.what);
    outcome
}

fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "# Bad inputs: what the engine does with each\n\n\
         Generated by `tests/e2e/tests/bad_inputs.rs`, which checks every row on each\n\
         `make test` (`ROWSYNC_WRITE_DOCS=1 cargo test -p rowsync-e2e --test bad_inputs`\n\
         rewrites this file). For each input: the outcome (the `rowsync::Error`\n\
         variant the app gets, or `accepted` where taking the input is right), the\n\
         replica left exactly as it was (records, outbox, checkpoints, dead letters,\n\
         conflict log; a save whose answer cannot be read only marks its creates in\n\
         doubt, as invariant 11 requires), and the time bound the call stays under.\n\
         Server answers are in the mahak dialect unless the row says otherwise.\n\n\
         | Input | Comes in as | Outcome | Replica unchanged | Time bound |\n\
         |---|---|---|---|---|\n",
    );
    for r in rows {
        let via = match r.via {
            Via::Pull => "pull answer",
            Via::Save => "save answer",
            Via::Login => "login answer",
            Via::Stall => "any answer",
            Via::App(_) => "app call",
        };
        let unchanged = match (r.via, r.expect) {
            (Via::Save, _) => "no change lost or parked; creates in doubt",
            (_, "accepted") if r.what.starts_with("a huge") => "applied",
            (Via::App(_), "accepted") => "written as the engine's rules say",
            (_, "accepted") => "yes: nothing applied, no checkpoint moved",
            _ => "yes",
        };
        t.push_str(&format!(
            "| {} | {via} | `{}` | {unchanged} | {} s |\n",
            r.what,
            r.expect,
            r.bound.as_secs()
        ));
    }
    t
}

#[test]
fn every_bad_input_gets_its_typed_error_and_changes_nothing() {
    let rows = rows();
    let mut failed = Vec::new();
    for r in &rows {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(r))).is_err() {
            failed.push(r.what);
        }
    }
    assert!(failed.is_empty(), "rows that failed: {failed:#?}");
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/BAD_INPUTS.md");
    let text = table(&rows);
    if std::env::var("ROWSYNC_WRITE_DOCS").is_ok() {
        std::fs::write(&doc, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&doc).unwrap_or_default();
    assert!(
        committed == text,
        "docs/BAD_INPUTS.md differs from the table; rewrite it with ROWSYNC_WRITE_DOCS=1 cargo test -p rowsync-e2e --test bad_inputs"
    );
    println!("{} bad inputs checked", rows.len());
}
