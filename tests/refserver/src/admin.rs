//! The admin interface: "another client's hand" on the server's data, for
//! tests and demos. A library API ([`Admin`]) and the same operations over
//! HTTP under `{anything}/admin/...` (when `config.admin` is set): bulk seeding,
//! desktop-style writes (the server assigns id and row version; the client id
//! may be null or 0), field changes, logical deletes, reads of one record, a
//! collection or the whole state, the counter, and fault control.

use std::collections::BTreeMap;

use rusqlite::{Connection, TransactionBehavior};
use serde_json::{json, Map, Value};

use crate::error::ServerError;
use crate::faults::{Fault, FaultConfig};
use crate::handler::Reply;
use crate::store::Keyed;
use crate::{generate, store, RefServer};

/// A collection as the admin sees it, in either dialect.
#[derive(Debug, Clone)]
pub(crate) struct Def {
    name: String,
    id_field: String,
    client_id_field: String,
    code_field: Option<String>,
    /// Written the mahak way: client id 0, a code, the bookkeeping fields.
    mahak: bool,
}

impl Keyed for Def {
    fn name(&self) -> &str {
        &self.name
    }
    fn id_field(&self) -> &str {
        &self.id_field
    }
    fn client_id_field(&self) -> &str {
        &self.client_id_field
    }
}

/// The fields the real server keeps up to date on every write: `dataHash`,
/// `updateDate`, `updateSyncId` (and `createDate`, `createSyncId` once).
pub(crate) fn stamp(obj: &mut Map<String, Value>, row_version: i64, sync_id: i64) {
    let now = crate::mahak::tehran_now();
    obj.insert("updateDate".into(), Value::from(now.clone()));
    obj.entry("createDate").or_insert(Value::from(now));
    obj.insert("updateSyncId".into(), Value::from(sync_id));
    obj.entry("createSyncId").or_insert(Value::from(sync_id));
    obj.insert(
        "dataHash".into(),
        Value::from(format!("{row_version:040X}")),
    );
}

/// Admin operations on a [`RefServer`]'s data (see [`RefServer::admin`]).
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    server: &'a RefServer,
}

fn nonzero(v: Option<i64>) -> Option<i64> {
    v.filter(|&x| x != 0)
}

/// A desktop write inside a transaction: insert or update, new row version.
fn desktop_upsert(
    tx: &Connection,
    def: &Def,
    record: Map<String, Value>,
    counter: &mut i64,
    sync_id: i64,
) -> Result<Map<String, Value>, ServerError> {
    let int = |field: &str| match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ServerError::Invalid(format!("`{field}` must be an integer"))),
    };
    let id = int(&def.id_field)?;
    let client_id = nonzero(int(&def.client_id_field)?);
    let mut existing = None;
    if let Some(id) = id {
        existing = store::get(tx, &def.name, id)?.map(|r| (id, r));
    }
    if existing.is_none() {
        if let Some(cid) = client_id {
            if let Some(known) = store::id_for_client(tx, &def.name, cid)? {
                existing = store::get(tx, &def.name, known)?.map(|r| (known, r));
            }
        }
    }
    let mut merged = existing
        .as_ref()
        .map(|(_, r)| r.object())
        .unwrap_or_default();
    for (k, v) in record {
        if k == "deleted" && v.is_null() {
            continue;
        }
        merged.insert(k, v);
    }
    let (id, client_id) = match &existing {
        Some((id, row)) => (*id, client_id.or(row.client_id)),
        None => match id {
            Some(id) => (id, client_id),
            None => (store::next_id(tx, &def.name)?, client_id),
        },
    };
    *counter += 1;
    if def.mahak {
        // Made in the desktop: client id 0 and a code of its own.
        if !def.client_id_field.is_empty()
            && merged.get(&def.client_id_field).is_none_or(Value::is_null)
        {
            merged.insert(def.client_id_field.clone(), Value::from(0));
        }
        if let Some(code) = &def.code_field {
            if merged.get(code).is_none_or(Value::is_null) {
                merged.insert(code.clone(), Value::from(id));
            }
        }
        stamp(&mut merged, *counter, sync_id);
    }
    store::write(tx, def, id, client_id, *counter, merged)
}

impl<'a> Admin<'a> {
    pub(crate) fn new(server: &'a RefServer) -> Self {
        Admin { server }
    }

    pub(crate) fn server(&self) -> &'a RefServer {
        self.server
    }

    fn def(&self, collection: &str) -> Result<Def, ServerError> {
        let found = match &self.server.mahak {
            Some(schema) => schema.get(collection).map(|c| Def {
                name: c.name.clone(),
                id_field: c.id_field.clone(),
                client_id_field: c.client_id_field.clone(),
                code_field: c.code_field.clone(),
                mahak: true,
            }),
            None => self.server.catalogue.get(collection).map(|c| Def {
                name: c.name.clone(),
                id_field: c.id_field.clone(),
                client_id_field: c.client_id_field.clone(),
                code_field: c.code_field.clone(),
                mahak: false,
            }),
        };
        found.ok_or_else(|| ServerError::UnknownCollection(collection.to_string()))
    }

    /// Runs `f` in one write transaction with the counter; stores the counter
    /// and commits if `f` succeeds.
    pub(crate) fn write_tx<T>(
        &self,
        f: impl FnOnce(&Connection, &mut i64) -> Result<T, ServerError>,
    ) -> Result<T, ServerError> {
        let mut db = self.server.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut counter = store::counter(&tx)?;
        let out = f(&tx, &mut counter)?;
        store::set_counter(&tx, counter)?;
        tx.commit()?;
        Ok(out)
    }

    fn seed_generated(
        &self,
        collection: &str,
        n: usize,
        make: fn(&mut fastrand::Rng, i64, i64) -> String,
    ) -> Result<(), ServerError> {
        let seed = self.server.config().seed;
        self.write_tx(|tx, counter| {
            let first = store::next_id(tx, collection)?;
            let mut rng = fastrand::Rng::with_seed(seed ^ (first as u64).wrapping_mul(0x9E37));
            for i in 0..n {
                let id = first + i as i64;
                *counter += 1;
                store::insert_raw(tx, collection, id, *counter, &make(&mut rng, id, *counter))?;
            }
            Ok(())
        })
    }

    /// Adds `n` generated products in one transaction, as the desktop would
    /// (no client id). In the mahak dialect each comes with its
    /// `productDetails` record (prices `price1..`) and the `visitorProducts`
    /// link that gives the login's visitor its stock: three records each.
    pub fn seed_products(&self, n: usize) -> Result<(), ServerError> {
        if self.server.mahak.is_none() {
            return self.seed_generated("products", n, generate::product);
        }
        let seed = self.server.config().seed;
        let visitor = self.server.session_ids().1;
        self.write_tx(|tx, counter| {
            self.seed_reference(tx, counter, visitor)?;
            let first = store::next_id(tx, "products")?;
            let first_detail = store::next_id(tx, "productDetails")?;
            let first_link = store::next_id(tx, "visitorProducts")?;
            let mut rng = fastrand::Rng::with_seed(seed ^ (first as u64).wrapping_mul(0x9E37));
            for i in 0..n as i64 {
                let (id, detail, link) = (first + i, first_detail + i, first_link + i);
                *counter += 1;
                let category = 1 + i % 4;
                let text = generate::mahak_product(&mut rng, id, category, *counter);
                store::insert_raw(tx, "products", id, *counter, &text)?;
                *counter += 1;
                let (text, price) = generate::mahak_product_detail(&mut rng, detail, id, *counter);
                store::insert_raw(tx, "productDetails", detail, *counter, &text)?;
                *counter += 1;
                let text = generate::mahak_visitor_product(
                    &mut rng, link, detail, visitor, price, *counter,
                );
                store::insert_raw(tx, "visitorProducts", link, *counter, &text)?;
            }
            Ok(())
        })
    }

    /// Adds `n` generated persons in one transaction. In the mahak dialect
    /// they are `people`, each with the `visitorPeople` link that lets the
    /// login's visitor sell to them: two records each.
    pub fn seed_persons(&self, n: usize) -> Result<(), ServerError> {
        if self.server.mahak.is_none() {
            return self.seed_generated("persons", n, generate::person);
        }
        let seed = self.server.config().seed;
        let visitor = self.server.session_ids().1;
        self.write_tx(|tx, counter| {
            self.seed_reference(tx, counter, visitor)?;
            let first = store::next_id(tx, "people")?;
            let first_link = store::next_id(tx, "visitorPeople")?;
            let mut rng = fastrand::Rng::with_seed(seed ^ (first as u64).wrapping_mul(0x7F4A));
            for i in 0..n as i64 {
                let (id, link) = (first + i, first_link + i);
                *counter += 1;
                let text = generate::mahak_person(&mut rng, id, 1 + i % 3, *counter);
                store::insert_raw(tx, "people", id, *counter, &text)?;
                *counter += 1;
                let text = generate::mahak_visitor_person(link, id, visitor, *counter);
                store::insert_raw(tx, "visitorPeople", link, *counter, &text)?;
            }
            Ok(())
        })
    }

    /// Adds `n` orders with one to three `orderDetails` lines each, for
    /// customers and product details already there (seed products and
    /// persons first), all for the login's visitor. Mostly sales (201) made
    /// in the desktop, with sales returns (202), purchases (204) and delivery
    /// pre-invoices (299) also made there (client id 0), and field-sales
    /// visitors' orders (203) made by another client, the visitor's app: the
    /// order and its lines carry that app's client ids, which the server
    /// then knows (a resend is "already registered"). The first five of a
    /// seed are one of each type, so a seed of five or more holds them all.
    /// Mahak dialect only.
    pub fn seed_orders(&self, n: usize) -> Result<(), ServerError> {
        if n == 0 {
            return Ok(());
        }
        if self.server.mahak.is_none() {
            return Err(ServerError::Invalid(
                "orders are seeded in the mahak dialect only".into(),
            ));
        }
        let seed = self.server.config().seed;
        let visitor = self.server.session_ids().1;
        self.write_tx(|tx, counter| {
            let people = store::live_ids(tx, "people")?;
            let details = store::live_ids(tx, "productDetails")?;
            if people.is_empty() || details.is_empty() {
                return Err(ServerError::Invalid(
                    "seed products and persons before orders".into(),
                ));
            }
            let first = store::next_id(tx, "orders")?;
            let mut line = store::next_id(tx, "orderDetails")?;
            let mut rng = fastrand::Rng::with_seed(seed ^ (first as u64).wrapping_mul(0x51ED));
            for i in 0..n as i64 {
                let id = first + i;
                let person = people[rng.usize(0..people.len())];
                let kind = match generate::ORDER_TYPES.get(i as usize) {
                    Some(&kind) => kind,
                    None => generate::order_type(&mut rng),
                };
                // A field-sales app's ids: its own for the order and lines.
                let app = kind == generate::VISITOR_ORDER;
                let client = |id: i64| {
                    if app {
                        generate::FIELD_SALES_CLIENT_IDS + id
                    } else {
                        0
                    }
                };
                *counter += 1;
                let text = generate::mahak_order(
                    &mut rng,
                    id,
                    client(id),
                    person,
                    visitor,
                    kind,
                    *counter,
                );
                if app {
                    store::insert_raw_from_client(tx, "orders", (id, client(id)), *counter, &text)?;
                } else {
                    store::insert_raw(tx, "orders", id, *counter, &text)?;
                }
                for _ in 0..rng.u8(1..4) {
                    let detail = details[rng.usize(0..details.len())];
                    *counter += 1;
                    let text = generate::mahak_order_detail(
                        &mut rng,
                        (line, client(line)),
                        (id, client(id)),
                        detail,
                        *counter,
                    );
                    let key = (line, client(line));
                    if app {
                        store::insert_raw_from_client(tx, "orderDetails", key, *counter, &text)?;
                    } else {
                        store::insert_raw(tx, "orderDetails", line, *counter, &text)?;
                    }
                    line += 1;
                }
            }
            Ok(())
        })
    }

    /// The shop's visitor, customer groups and product categories, once.
    fn seed_reference(
        &self,
        tx: &Connection,
        counter: &mut i64,
        visitor: i64,
    ) -> Result<(), ServerError> {
        if store::count(tx, "visitors")? > 0 {
            return Ok(());
        }
        for (collection, id, text) in generate::mahak_reference(visitor) {
            *counter += 1;
            store::insert_raw(
                tx,
                collection,
                id,
                *counter,
                &generate::close(&text, *counter),
            )?;
        }
        Ok(())
    }

    /// The visitor record `id` of `collection` was booked under: the
    /// visitor of the user whose login saved it (mahak), if one did.
    pub fn booked_visitor(&self, collection: &str, id: i64) -> Option<i64> {
        self.server.booked_visitor(collection, id)
    }

    /// Changes the `DatabaseId` and `VisitorId` a mahak login answers (as a
    /// reinstalled desktop or a reassigned device would); `None` keeps one.
    pub fn set_session_ids(&self, database_id: Option<i64>, visitor_id: Option<i64>) {
        let mut s = self
            .server
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(d) = database_id {
            s.0 = d;
        }
        if let Some(v) = visitor_id {
            s.1 = v;
        }
    }

    /// Desktop-writes `records` into `collection` in one transaction (each as
    /// [`Admin::upsert`] would).
    pub fn seed(&self, collection: &str, records: Vec<Value>) -> Result<(), ServerError> {
        let def = self.def(collection)?;
        let sync_id = self.server.config().sync_id;
        self.write_tx(|tx, counter| {
            for r in records {
                let Value::Object(obj) = r else {
                    return Err(ServerError::Invalid(
                        "a record must be a JSON object".into(),
                    ));
                };
                desktop_upsert(tx, &def, obj, counter, sync_id)?;
            }
            Ok(())
        })
    }

    /// Writes a record as the Mahak desktop would: an update when its server
    /// id (or non-zero client id) is known, else an insert (with the given
    /// server id if any, else a new one). No validation. Returns the stored
    /// record, with its new `rowVersion`.
    pub fn upsert(&self, collection: &str, record: Value) -> Result<Value, ServerError> {
        let def = self.def(collection)?;
        let Value::Object(obj) = record else {
            return Err(ServerError::Invalid(
                "a record must be a JSON object".into(),
            ));
        };
        let sync_id = self.server.config().sync_id;
        self.write_tx(|tx, counter| {
            desktop_upsert(tx, &def, obj, counter, sync_id).map(Value::Object)
        })
    }

    /// Changes some fields of record `id` (a new row version). Returns the
    /// stored record.
    pub fn update_fields(
        &self,
        collection: &str,
        id: i64,
        fields: Map<String, Value>,
    ) -> Result<Value, ServerError> {
        let def = self.def(collection)?;
        let sync_id = self.server.config().sync_id;
        self.write_tx(|tx, counter| {
            let row = store::get(tx, collection, id)?.ok_or_else(|| ServerError::NotFound {
                collection: collection.to_string(),
                id,
            })?;
            let mut obj = row.object();
            for (k, v) in fields {
                obj.insert(k, v);
            }
            *counter += 1;
            if def.mahak {
                stamp(&mut obj, *counter, sync_id);
            }
            store::write(tx, &def, id, row.client_id, *counter, obj).map(Value::Object)
        })
    }

    /// Marks record `id` deleted (a new row version). Returns the stored
    /// record.
    pub fn delete(&self, collection: &str, id: i64) -> Result<Value, ServerError> {
        let mut fields = Map::new();
        fields.insert("deleted".to_string(), Value::Bool(true));
        self.update_fields(collection, id, fields)
    }

    /// Record `id` of `collection` (deleted or not).
    pub fn get(&self, collection: &str, id: i64) -> Option<Value> {
        let db = self.server.db();
        store::get(&db, collection, id)
            .ok()
            .flatten()
            .map(|r| r.value())
    }

    /// The server id recorded for a client id (the idempotency map).
    pub fn id_for_client(&self, collection: &str, client_id: i64) -> Option<i64> {
        let db = self.server.db();
        store::id_for_client(&db, collection, client_id)
            .ok()
            .flatten()
    }

    /// Every record of `collection`, deleted ones included, by id.
    pub fn dump(&self, collection: &str) -> Vec<Value> {
        let db = self.server.db();
        store::dump(&db, collection).unwrap_or_default()
    }

    /// Every collection's records (collections with none included as empty).
    pub fn state(&self) -> BTreeMap<String, Vec<Value>> {
        let names = self.server.collections();
        let db = self.server.db();
        names
            .into_iter()
            .map(|name| {
                let records = store::dump(&db, &name).unwrap_or_default();
                (name, records)
            })
            .collect()
    }

    /// Every dispute received, in order (the documented dialect's resends
    /// of a request id are not received again).
    pub fn disputes(&self) -> Vec<crate::ReceivedDispute> {
        crate::tasks::disputes(&self.server.db()).unwrap_or_default()
    }

    /// Every upload stored, in order.
    pub fn uploads(&self) -> Vec<crate::StoredUpload> {
        crate::tasks::uploads(&self.server.db()).unwrap_or_default()
    }

    /// The shared row-version counter.
    pub fn counter(&self) -> i64 {
        store::counter(&self.server.db()).unwrap_or(0)
    }

    /// Number of records of `collection`, deleted ones included.
    pub fn count(&self, collection: &str) -> usize {
        store::count(&self.server.db(), collection).unwrap_or(0)
    }
}

fn admin_error(e: ServerError) -> Reply {
    let status = match e {
        ServerError::NotFound { .. } | ServerError::UnknownCollection(_) => 404,
        ServerError::Invalid(_) | ServerError::Json(_) => 400,
        _ => 500,
    };
    Reply::fail(status, status.into(), &e.to_string(), Value::Null)
}

fn parse_body(body: &[u8]) -> Result<Value, ServerError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(body)?)
}

/// Serves one admin HTTP request; `rest` is the path after `admin/`.
///
/// Routes: `GET counter`; `GET state`; `POST seed`
/// `{products?: n, persons?: n, orders?: n, pictures?: n}`;
/// `POST pictures/<id>/change` (a new file for picture `id`); `POST session`
/// `{databaseId?, visitorId?}` (what a mahak login answers); `POST clock`
/// `{offsetSeconds?, serverTime?: bool}` (the login answer's `ServerTime`:
/// its offset from the real time, and whether it is sent at all);
/// `GET records/<c>` (dump); `POST records/<c>` (upsert a record);
/// `GET records/<c>/<id>`; `POST|PATCH records/<c>/<id>` (change fields);
/// `DELETE records/<c>/<id>` or `POST records/<c>/<id>/delete`;
/// `POST faults/inject` `{endpoint?, fault, times?}`; `POST faults/config`
/// (a [`FaultConfig`]); `POST faults/clear`; `GET requests`.
pub(crate) fn handle_http(server: &RefServer, method: &str, rest: &str, body: &[u8]) -> Reply {
    let admin = server.admin();
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return admin_error(e),
    };
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let method = method.to_ascii_uppercase();
    let result: Result<Value, ServerError> = match (method.as_str(), parts.as_slice()) {
        (_, ["counter"]) => Ok(json!({"counter": admin.counter()})),
        ("POST", ["session"]) => {
            let int = |k: &str| body.get(k).and_then(Value::as_i64);
            admin.set_session_ids(int("databaseId"), int("visitorId"));
            Ok(json!({"databaseId": int("databaseId"), "visitorId": int("visitorId")}))
        }
        ("POST", ["clock"]) => {
            let offset = body.get("offsetSeconds").and_then(Value::as_i64);
            let send = body.get("serverTime").and_then(Value::as_bool);
            server.update_config(|c| {
                if let Some(o) = offset {
                    c.clock_offset_seconds = o;
                }
                if let Some(send) = send {
                    c.omit_server_time = !send;
                }
            });
            let c = server.config();
            Ok(json!({"offsetSeconds": c.clock_offset_seconds, "serverTime": !c.omit_server_time}))
        }
        (_, ["state"]) => Ok(json!(admin.state())),
        ("GET", ["disputes"]) => Ok(Value::Array(
            admin
                .disputes()
                .into_iter()
                .map(|d| json!({"endpoint": d.endpoint, "requestId": d.request_id, "body": d.body}))
                .collect(),
        )),
        ("GET", ["uploads"]) => Ok(Value::Array(
            admin
                .uploads()
                .into_iter()
                .map(|u| {
                    json!({"id": u.id, "entity": u.entity, "recordId": u.record_id,
                           "fileName": u.file_name, "contentType": u.content_type,
                           "size": u.data.len(), "received": u.received})
                })
                .collect(),
        )),
        ("POST", ["seed"]) => (|| {
            let products = body.get("products").and_then(Value::as_u64).unwrap_or(0);
            let persons = body.get("persons").and_then(Value::as_u64).unwrap_or(0);
            let orders = body.get("orders").and_then(Value::as_u64).unwrap_or(0);
            let pictures = body.get("pictures").and_then(Value::as_u64).unwrap_or(0);
            admin.seed_products(usize::try_from(products).unwrap_or(0))?;
            admin.seed_persons(usize::try_from(persons).unwrap_or(0))?;
            admin.seed_orders(usize::try_from(orders).unwrap_or(0))?;
            if pictures > 0 {
                admin.seed_pictures(usize::try_from(pictures).unwrap_or(0))?;
            }
            Ok(json!({"counter": admin.counter()}))
        })(),
        ("POST", ["pictures", id, "change"]) => match id.parse::<i64>() {
            Ok(id) => admin.change_picture(id),
            Err(_) => Err(ServerError::Invalid(format!("bad id `{id}`"))),
        },
        ("GET", ["records", c]) => admin.def(c).map(|_| Value::Array(admin.dump(c))),
        ("POST" | "PUT", ["records", c]) => admin.upsert(c, body),
        (m, ["records", c, id, rest @ ..]) => match id.parse::<i64>() {
            Err(_) => Err(ServerError::Invalid(format!("bad id `{id}`"))),
            Ok(id) => match (m, rest) {
                ("GET", []) => admin.def(c).and_then(|_| {
                    admin.get(c, id).ok_or(ServerError::NotFound {
                        collection: c.to_string(),
                        id,
                    })
                }),
                ("DELETE", []) | ("POST", ["delete"]) => admin.delete(c, id),
                ("POST" | "PATCH", []) => match body {
                    Value::Object(fields) => admin.update_fields(c, id, fields),
                    _ => Err(ServerError::Invalid("fields must be a JSON object".into())),
                },
                _ => Err(ServerError::Invalid(format!("no admin route {m} {rest:?}"))),
            },
        },
        ("POST", ["faults", "inject"]) => (|| {
            let fault: Fault =
                serde_json::from_value(body.get("fault").cloned().unwrap_or_default())?;
            let endpoint = body.get("endpoint").and_then(Value::as_str);
            let times = body.get("times").and_then(Value::as_u64).unwrap_or(1);
            server
                .faults()
                .inject(endpoint, fault, u32::try_from(times).unwrap_or(u32::MAX));
            Ok(json!({"pending": server.faults().pending()}))
        })(),
        ("POST", ["faults", "config"]) => serde_json::from_value::<FaultConfig>(body)
            .map_err(ServerError::from)
            .map(|c| {
                server.faults().set_config(c);
                json!(server.faults().config())
            }),
        ("POST", ["faults", "clear"]) => {
            server.faults().clear();
            Ok(Value::Null)
        }
        ("GET", ["requests"]) => Ok(Value::Array(
            server
                .requests()
                .into_iter()
                .map(|r| {
                    json!({"trackingId": r.tracking_id, "method": r.method,
                           "endpoint": r.endpoint, "counts": r.counts, "status": r.status,
                           "code": r.code, "outcome": r.outcome, "fault": r.fault,
                           "elapsedMs": r.elapsed.as_millis() as u64})
                })
                .collect(),
        )),
        _ => Err(ServerError::Invalid(format!(
            "no admin route {method} /admin/{rest}"
        ))),
    };
    match result {
        Ok(data) => Reply::ok(data),
        Err(e) => admin_error(e),
    }
}
