//! A dialect of the tests' own ("tiny"), added as the module's doc says a
//! dialect is added: this one file. It has other endpoints, another login
//! and other shapes for every request and answer; `sync/tests.rs` runs a
//! whole sync in it against a tiny server.

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::codec::{
    Change, Codec, Endpoints, LoginAnswer, NextAsk, Pager, PullAsk, PulledCollection, RefusalScope,
    SaveAnswer, SaveOutcome, SaveRules, TaskEndpoint, TaskRequest,
};
use crate::api::call::CallKind;
use crate::api::config::{ClientConfig, Credentials};
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::{Error, Result};
use crate::record;
use crate::tasks::{OrderDisputeItem, RecordDisputeItem};

/// The tiny dialect: `Hello` to log in (`{"who"}` -> `{"key"}`), `Fetch`
/// to pull (`{"since": {collection: version}}` -> `{"rows": [{"in",
/// "row"}]}`, one page), `Store` to save (`{"put": [{"in", "row"}]}` ->
/// `{"ids": [[id, version] | null]}`, aligned with what was sent).
pub(crate) struct Tiny;

fn protocol(message: &str) -> Error {
    Error::Protocol {
        collection: None,
        message: message.to_string(),
        tracking_id: None,
    }
}

impl Codec for Tiny {
    fn endpoints(&self) -> Endpoints {
        Endpoints {
            login: "Hello".into(),
            pull: "Fetch".into(),
            save: "Store".into(),
            order_dispute: "Orders".into(),
            dispute: "Records".into(),
            upload: "File".into(),
        }
    }

    fn idempotent_save(&self) -> bool {
        true
    }

    fn login_body(&self, credentials: &Credentials, _config: &ClientConfig) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&json!({"who": credentials.username}))?)
    }

    fn read_login(
        &self,
        _status: u16,
        body: &[u8],
        _tracking_id: Option<String>,
    ) -> Result<Option<LoginAnswer>> {
        let v: Value = serde_json::from_slice(body)?;
        Ok(v["data"]["key"].as_str().map(|key| LoginAnswer {
            token: key.to_string(),
            expires: None,
            server_time: None,
            max_age: None,
            session: None,
        }))
    }

    fn login_refusal_sticks(&self, _code: i64) -> bool {
        true
    }

    fn pager(&self, _page_size: u32, _inclusive_bound: bool) -> Box<dyn Pager> {
        Box::new(OnePage)
    }

    fn pull_body(&self, ask: &PullAsk<'_>) -> Result<Vec<u8>> {
        let since: Map<String, Value> = ask
            .wanted
            .iter()
            .map(|(def, from)| (def.name.clone(), Value::from(*from)))
            .collect();
        Ok(serde_json::to_vec(&json!({ "since": since }))?)
    }

    fn parse_pull<'a>(
        &self,
        catalogue: &'a Catalogue,
        wanted: &'a [String],
        data: &'a str,
        _tracking_id: Option<&str>,
    ) -> Result<Vec<PulledCollection<'a>>> {
        #[derive(serde::Deserialize)]
        struct Row<'a> {
            #[serde(rename = "in")]
            collection: String,
            #[serde(borrow)]
            row: &'a RawValue,
        }
        #[derive(serde::Deserialize)]
        struct Page<'a> {
            #[serde(borrow)]
            rows: Vec<Row<'a>>,
        }
        let page: Page<'a> = serde_json::from_str(data)?;
        let mut out: Vec<PulledCollection<'a>> = Vec::new();
        for (i, row) in page.rows.into_iter().enumerate() {
            let Some(def) = catalogue
                .get(&row.collection)
                .filter(|d| wanted.contains(&d.name))
            else {
                continue;
            };
            let text = row.row.get();
            let meta = record::scan(def, text).map_err(|m| protocol(&format!("row {i}: {m}")))?;
            if meta.server_id.is_none() || meta.row_version.is_none() {
                return Err(protocol(&format!("row {i} has no id or version")));
            }
            match out.iter_mut().find(|c| std::ptr::eq(c.def, def)) {
                Some(c) => c.records.push((text.into(), meta)),
                None => out.push(PulledCollection {
                    def,
                    records: vec![(text.into(), meta)],
                    row_version: None,
                    has_more: false,
                }),
            }
        }
        Ok(out)
    }

    fn save_body(&self, _catalogue: &Catalogue, changes: &[&Change]) -> Result<Vec<u8>> {
        let put: Vec<Value> = changes
            .iter()
            .map(|c| json!({"in": c.collection, "row": c.payload}))
            .collect();
        Ok(serde_json::to_vec(&json!({ "put": put }))?)
    }

    fn parse_save(
        &self,
        _catalogue: &Catalogue,
        changes: &[&Change],
        data: &RawValue,
        _rules: &SaveRules,
        _tracking_id: Option<&str>,
    ) -> Result<SaveAnswer> {
        let v: Value = serde_json::from_str(data.get())?;
        let ids = v["ids"].as_array().ok_or_else(|| protocol("no ids"))?;
        let outcomes = (0..changes.len())
            .map(|i| match ids.get(i).and_then(Value::as_array) {
                Some(pair) => SaveOutcome::Saved {
                    server_id: pair.first().and_then(Value::as_i64),
                    row_version: pair.get(1).and_then(Value::as_i64),
                },
                None => SaveOutcome::Unknown,
            })
            .collect();
        Ok(SaveAnswer { outcomes })
    }

    fn refusal_scope(&self, _code: i64) -> RefusalScope {
        RefusalScope::Isolate
    }

    fn check_order_dispute(&self, _item: &OrderDisputeItem) -> Result<()> {
        Ok(())
    }

    fn order_disputes_per_request(&self) -> usize {
        1
    }

    fn disputes_per_request(&self) -> usize {
        1
    }

    fn resend_dispute_in_doubt(&self) -> bool {
        true
    }

    fn task_answers_known(&self) -> bool {
        true
    }

    fn order_dispute_request(
        &self,
        _database_id: i64,
        _request_id: &str,
        _items: &[OrderDisputeItem],
    ) -> Result<TaskRequest> {
        Err(Error::Config("the tiny dialect has no disputes".into()))
    }

    fn dispute_request(
        &self,
        _database_id: i64,
        _def: &CollectionDef,
        _request_id: &str,
        _items: &[RecordDisputeItem],
    ) -> Result<TaskRequest> {
        Err(Error::Config("the tiny dialect has no disputes".into()))
    }

    fn upload_request(
        &self,
        _def: &CollectionDef,
        server_id: i64,
        _file_name: &str,
        _content_type: &str,
        data: &[u8],
    ) -> Result<TaskRequest> {
        Ok(TaskRequest {
            endpoint: TaskEndpoint::Upload,
            body: [server_id.to_string().as_bytes(), data].concat(),
            content_type: "application/octet-stream".into(),
            headers: Vec::new(),
            token_query: None,
            kind: CallKind::Idempotent,
        })
    }
}

/// One page, always.
struct OnePage;

impl Pager for OnePage {
    fn page_size(&self) -> u32 {
        0
    }

    fn next(
        &mut self,
        _entries: &mut Vec<PulledCollection<'_>>,
        _checkpoint: &dyn Fn(&str) -> i64,
        _asked: &[String],
        _tracking_id: Option<&str>,
    ) -> NextAsk {
        NextAsk::Done
    }
}
