//! A whole sync in a dialect of the tests' own (`api/dialect/tiny.rs`),
//! against a tiny server in the same process: the proof that the flows meet
//! a dialect only through `Codec`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::api::client::{ApiClient, ClientConfig, Credentials, Shutdown};
use crate::api::dialect::tiny::Tiny;
use crate::api::dialect::{Codec, SaveRules};
use crate::catalogue::Catalogue;
use crate::listeners::{Changes, Registry};
use crate::local::{RecordId, Writer};
use crate::log::Logger;
use crate::report::SyncReport;
use crate::settings::Settings;
use crate::status::ConnectionState;
use crate::store::{self, Db};
use crate::sync::context::Context;
use crate::sync::session::Session;
use crate::transport::{HttpRequest, HttpResponse, Transport, TransportError};

/// The tiny server: products by id, one version counter, and the calls it
/// was asked.
#[derive(Default)]
struct Server {
    state: Mutex<(Vec<Value>, i64, Vec<String>)>,
}

impl Server {
    fn answer(&self, request: &HttpRequest) -> Value {
        let mut state = self.state.lock().unwrap();
        let endpoint = request
            .url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        state.2.push(endpoint.clone());
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        match endpoint.as_str() {
            "Hello" => json!({"key": format!("k-{}", body["who"].as_str().unwrap_or(""))}),
            "Fetch" => {
                let since = body["since"]["products"].as_i64().unwrap_or(0);
                let rows: Vec<Value> = state
                    .0
                    .iter()
                    .filter(|p| p["rowVersion"].as_i64().unwrap_or(0) > since)
                    .map(|p| json!({"in": "products", "row": p}))
                    .collect();
                json!({ "rows": rows })
            }
            "Store" => {
                let mut ids = Vec::new();
                for put in body["put"].as_array().cloned().unwrap_or_default() {
                    state.1 += 1;
                    let (id, version) = (100 + state.0.len() as i64, state.1);
                    let mut row = put["row"].clone();
                    row["productId"] = json!(id);
                    row["rowVersion"] = json!(version);
                    state.0.push(row);
                    ids.push(json!([id, version]));
                }
                json!({ "ids": ids })
            }
            _ => Value::Null,
        }
    }
}

impl Transport for Server {
    fn send(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
        let data = self.answer(request);
        Ok(HttpResponse {
            status: 200,
            headers: vec![("Trackingid".into(), "tiny".into())],
            body: serde_json::to_vec(&json!({"success": true, "code": 0, "data": data}))
                .unwrap_or_default(),
            wire_bytes: None,
        })
    }
}

#[test]
fn a_whole_sync_in_a_dialect_of_the_tests_own() {
    let catalogue = Catalogue::documented();
    let db = Db::open(std::path::Path::new(":memory:"), None).unwrap();
    db.ensure_collections(catalogue.iter().map(|c| c.name.as_str()))
        .unwrap();
    let server = Arc::new(Server::default());
    {
        let mut state = server.state.lock().unwrap();
        state.0 = vec![
            json!({"productId": 1, "productClientId": null, "name": "Tea", "rowVersion": 10}),
            json!({"productId": 2, "productClientId": null, "name": "Rice", "rowVersion": 11}),
        ];
        state.1 = 11;
    }
    // A sale of the day, written here before the sync.
    let mut changes = Changes::default();
    let created = db
        .write(|tx| {
            let group = tx.next_seq();
            Writer {
                tx,
                catalogue: &catalogue,
                group,
                changes: &mut changes,
            }
            .create("products", json!({"name": "Bread"}))
        })
        .unwrap();
    let client_id = created["productClientId"].as_i64().unwrap();
    let settings = Settings {
        base_url: "http://127.0.0.1:1/API".into(),
        ..Settings::default()
    };
    let client = ApiClient::new(
        ClientConfig {
            login_endpoint: Tiny.endpoints().login,
            ..ClientConfig::new(settings.base_url.clone())
        },
        Credentials {
            username: "u".into(),
            password: "p".into(),
            database_id: 1,
            package_number: 2,
        },
        server.clone(),
        Shutdown::default(),
    )
    .unwrap()
    .with_codec(&Tiny);
    let events = Registry::new(ConnectionState::Unknown);
    let logger = Logger::default();
    let login = Mutex::new(None);
    let ctx = Context {
        db: &db,
        client: &client,
        codec: &Tiny,
        endpoints: Tiny.endpoints(),
        settings,
        catalogue: catalogue.clone(),
        resolvers: HashMap::new(),
        rules: SaveRules::default(),
        events: &events,
        logger: &logger,
        login: &login,
        meter: crate::report::Meter::default(),
    };
    let mut report = SyncReport::default();
    Session::new(ctx, super::session::Scope::Everything)
        .run(&mut report)
        .unwrap();

    // Pulled, pushed and mapped, through the tiny dialect's bytes alone.
    assert_eq!((report.pulled(), report.pushed), (2, 1), "{report:?}");
    assert_eq!(
        server.state.lock().unwrap().2,
        ["Hello", "Fetch", "Store"],
        "login, one pull page, one save"
    );
    let (bread, count, pending, checkpoints) = db
        .read(|conn| {
            let coll = store::coll_id_of(conn, "products")?;
            Ok((
                crate::local::get(conn, coll, RecordId::Client(client_id))?,
                store::count_rows(conn, coll, false)?,
                store::counts(conn)?.pending,
                store::checkpoints(conn)?,
            ))
        })
        .unwrap();
    let bread = bread.expect("the local create is still there");
    assert_eq!(
        (bread["productId"].as_i64(), bread["rowVersion"].as_i64()),
        (Some(102), Some(12))
    );
    assert_eq!((count, pending), (3, 0));
    // A checkpoint moves only on what a pull brought (invariant 18).
    assert!(
        checkpoints.contains(&("products".to_string(), 11)),
        "{checkpoints:?}"
    );
    assert!(report
        .id_mappings
        .contains(&("products".to_string(), client_id, 102)));
}
