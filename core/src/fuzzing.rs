//! Entry points for fuzzing the decoders of server input (issue 12, part
//! 5): each runs the code the engine runs on an answer, from the raw bytes
//! on. Not part of the API (hidden from the docs); the fuzz targets in
//! `fuzz/` and the corpus replay test call them. None may panic on any
//! input, and what the pull path accepts must read back (invariant 14): a
//! failure to list or get an applied record is a bug, reported as a panic.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::api::auth::interpret_login;
use crate::api::client::{CallKind, ClientConfig};
use crate::api::dialect::{parse_pull_sorted, parse_save_text, Change, Dialect, SaveRules};
use crate::api::envelope::interpret_reply;
use crate::catalogue::Catalogue;
use crate::local::{self, Changes, ListOptions, RecordId};
use crate::record::Op;
use crate::report::SyncReport;
use crate::store::Store;
use crate::sync::apply;
use crate::transport::HttpResponse;

fn response(status: u16, body: &[u8]) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Trackingid".into(), "fuzz".into())],
        body: body.to_vec(),
        wire_bytes: None,
    }
}

/// The first byte picks the dialect (even: mahak, odd: documented).
fn split(data: &[u8]) -> (Dialect, &[u8]) {
    match data.split_first() {
        Some((b, rest)) if b % 2 == 1 => (Dialect::Documented, rest),
        Some((_, rest)) => (Dialect::Mahak, rest),
        None => (Dialect::Mahak, data),
    }
}

/// A login answer (status 200, then the status the second byte names).
pub fn login_answer(data: &[u8]) {
    let (dialect, body) = split(data);
    let mut config = ClientConfig::new("https://example.test/API/v3");
    config.dialect = dialect;
    config.token_refresh_margin = Duration::from_secs(60);
    let _ = interpret_login(
        dialect.codec(),
        &response(200, body),
        &config,
        chrono::Utc::now(),
    );
}

thread_local! {
    static PULL: RefCell<Option<(Store, Catalogue, Catalogue)>> = const { RefCell::new(None) };
}

/// A pull answer, applied to a scratch replica and read back, then rolled
/// back (the replica stays empty between inputs). Returns how many records
/// were applied.
pub fn pull_answer(data: &[u8]) -> usize {
    let (dialect, body) = split(data);
    let reply = interpret_reply(response(200, body), CallKind::Idempotent);
    let Ok(reply) = reply else { return 0 };
    PULL.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mahak = Catalogue::mahak();
            let documented = Catalogue::documented();
            let names: Vec<String> = mahak
                .iter()
                .chain(documented.iter())
                .map(|c| c.name.clone())
                .collect();
            let Ok(store) = Store::open(Path::new(":memory:"), names.iter().map(String::as_str))
            else {
                return 0;
            };
            *slot = Some((store, mahak, documented));
        }
        let Some((store, mahak, documented)) = slot.as_mut() else {
            return 0;
        };
        let cat = match dialect {
            Dialect::Mahak => &*mahak,
            Dialect::Documented => &*documented,
        };
        let wanted: Vec<String> = cat.iter().map(|c| c.name.clone()).collect();
        let codec = dialect.codec();
        let page = codec.page_text(reply.data);
        let Ok(entries) = parse_pull_sorted(codec, cat, &wanted, &page, Some("fuzz")) else {
            return 0;
        };
        let Ok(tx) = store.begin() else { return 0 };
        let mut report = SyncReport::default();
        let applied = apply::apply(
            &tx,
            cat,
            &entries,
            &HashMap::new(),
            &mut report,
            &mut Changes::default(),
        );
        if applied.is_err() {
            return 0;
        }
        // Whatever was applied reads back: listed, and got by its id.
        let mut n = 0;
        for e in &entries {
            let Ok(coll) = tx.coll_id(&e.def.name) else {
                continue;
            };
            let page = local::list(
                &tx,
                coll,
                &ListOptions {
                    limit: u64::MAX >> 1,
                    include_deleted: true,
                    ..Default::default()
                },
            );
            let page = match page {
                Ok(p) => p,
                Err(err) => panic!("`{}` accepted but cannot be listed: {err}", e.def.name),
            };
            for r in &page.records {
                if let Some(id) = r.get(&e.def.id_field).and_then(Value::as_i64) {
                    if let Err(err) = local::get(&tx, coll, RecordId::Server(id)) {
                        panic!("`{}` {id} accepted but cannot be read: {err}", e.def.name);
                    }
                }
            }
            n += page.records.len();
        }
        drop(tx);
        n
    })
}

/// A save answer to a fixed batch: an order with two lines (creates) and
/// an update of a person, in the dialect the first byte names.
pub fn save_answer(data: &[u8]) {
    let (dialect, body) = split(data);
    let reply = interpret_reply(response(200, body), CallKind::Save);
    let Ok(reply) = reply else { return };
    let (cat, people) = match dialect {
        Dialect::Mahak => (Catalogue::mahak(), "people"),
        Dialect::Documented => (Catalogue::documented(), "persons"),
    };
    let change = |collection: &str, local_id, op, server_id, client_id, payload: Value| Change {
        collection: collection.to_string(),
        local_id,
        counter: 1,
        op,
        server_id,
        client_id,
        payload: payload.as_object().cloned().unwrap_or_else(Map::new),
    };
    let changes = [
        change(
            "orders",
            1,
            Op::Create,
            None,
            Some(11),
            json!({"orderClientId": 11, "orderType": 201}),
        ),
        change(
            "orderDetails",
            2,
            Op::Create,
            None,
            Some(12),
            json!({"orderDetailClientId": 12, "orderClientId": 11}),
        ),
        change(
            "orderDetails",
            3,
            Op::Create,
            None,
            Some(13),
            json!({"orderDetailClientId": 13, "orderClientId": 11}),
        ),
        change(
            people,
            4,
            Op::Update,
            Some(7),
            Some(14),
            json!({"personId": 7, "personClientId": 14, "mobile": "0912"}),
        ),
    ];
    let refs: Vec<&Change> = changes.iter().collect();
    let rules = SaveRules {
        already_registered: Vec::new(),
    };
    let _ = parse_save_text(
        dialect.codec(),
        &cat,
        &refs,
        &reply.data,
        &rules,
        Some("fuzz"),
    );
}
