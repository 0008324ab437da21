//! The real server's dialect (`docs/WIRE.md`): MD5 login with the token at
//! `Data.UserToken`, `from<Entity>Version` pull keys, `Data.Objects` arrays
//! with no `hasMore` (so a pull pages by its own rule, [`MahakPager`]), and
//! save answers with one `Results` entry per record, partially applied.
//! Answers are PascalCase; every key is read without regard to case, and
//! records are handed on in the Swagger's camelCase, the one naming the app
//! sees; a local write is put in that naming, its dates in Tehran time. The
//! server deduplicates nothing: a resent create or dispute is refused or
//! applied twice, so neither is resent blindly.

mod naming;
mod pictures;
mod pull;
mod save;

use serde_json::json;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::codec::{
    Change, Codec, Endpoints, LoginAnswer, Pager, PictureSource, PullAsk, PulledCollection,
    RefusalScope, SaveAnswer, SaveRules, Session, TaskEndpoint, TaskRequest, UploadAnswer,
};
use super::login::{jwt_expiry, login_data, parse_expire_date};
use super::tasks::{header_safe, json_request, multipart};
use crate::api::call::CallKind;
use crate::api::config::{ClientConfig, Credentials, PasswordHash};
use crate::api::envelope::get_ci;
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::Result;
use crate::tasks::{OrderDisputeItem, RecordDisputeItem, RECONCILE_ITEMS_PER_REQUEST};
use naming::{camel_object, camel_page, local_dates, parse_server_time};
use pull::{parse_pull, MahakPager};
use save::{parse_save, save_body};

pub(crate) use naming::password_hash;

/// A token whose expiry cannot be read is renewed after this long.
pub(crate) const MAX_TOKEN_AGE: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// The real server's codec.
pub(crate) struct Mahak;

impl Codec for Mahak {
    fn endpoints(&self) -> Endpoints {
        // The real server also answers the `V2` names, but the vendor's own
        // apps call the plain ones.
        Endpoints {
            login: "Login".into(),
            pull: "GetAllData".into(),
            save: "SaveAllData".into(),
            order_dispute: "SolveOrderDispute".into(),
            dispute: "SolveDispute".into(),
            upload: "Upload".into(),
        }
    }

    fn idempotent_save(&self) -> bool {
        false
    }

    /// The password as the server wants it (WIRE.md section 2: MD5 on most
    /// servers, plain on some), in memory for this body only.
    fn login_body(&self, credentials: &Credentials, config: &ClientConfig) -> Result<Vec<u8>> {
        let password = match config.password_hash {
            PasswordHash::Md5 => password_hash(&credentials.password),
            PasswordHash::Plain => credentials.password.clone(),
        };
        Ok(serde_json::to_vec(&json!({
            "userName": credentials.username,
            "password": password,
            "databaseId": credentials.database_id,
            "packageNo": credentials.package_number.to_string(),
            "language": "fa",
            "appId": config.app_id,
            "clientVersion": env!("CARGO_PKG_VERSION"),
        }))?)
    }

    fn read_login(
        &self,
        status: u16,
        body: &[u8],
        tracking_id: Option<String>,
    ) -> Result<Option<LoginAnswer>> {
        let Some(login) = login_data(status, body, tracking_id, true)? else {
            return Ok(None);
        };
        let session =
            (login.visitor_id.is_some() || login.database_id.is_some()).then(|| Session {
                visitor_id: login.visitor_id.unwrap_or(0),
                sync_id: login.sync_id.unwrap_or(0),
                database_id: login.database_id.unwrap_or(0),
                user_title: login.user_title.clone().unwrap_or_default(),
                server_time: login.server_time.clone().unwrap_or_default(),
            });
        Ok(Some(LoginAnswer {
            server_time: login.server_time.as_deref().and_then(parse_server_time),
            // The real server gives no expiry field: the JWT's `exp` says it.
            expires: login
                .expire_date
                .as_deref()
                .and_then(parse_expire_date)
                .or_else(|| jwt_expiry(&login.token)),
            max_age: Some(MAX_TOKEN_AGE),
            session,
            token: login.token,
        }))
    }

    fn login_refusal_sticks(&self, _code: i64) -> bool {
        true
    }

    fn pager(&self, page_size: u32, inclusive_bound: bool) -> Box<dyn Pager> {
        Box::new(MahakPager::new(page_size, inclusive_bound))
    }

    fn pull_body(&self, ask: &PullAsk<'_>) -> Result<Vec<u8>> {
        let mut body = Map::new();
        for (def, from) in ask.wanted {
            body.insert(def.pull_key(), Value::from(*from));
        }
        if ask.page_size > 0 {
            body.insert("pageSize".into(), Value::from(ask.page_size));
        }
        if !ask.order_types.is_empty() && ask.wanted.iter().any(|(def, _)| def.name == "orders") {
            body.insert("orderTypes".into(), Value::from(ask.order_types));
        }
        Ok(serde_json::to_vec(&body)?)
    }

    /// Every key in camelCase, in place (the answer is PascalCase; only
    /// ASCII letters change, so nothing moves and nothing is copied record
    /// by record).
    fn page_text(&self, text: String) -> String {
        camel_page(text)
    }

    fn parse_pull<'a>(
        &self,
        catalogue: &'a Catalogue,
        wanted: &'a [String],
        data: &'a str,
        tracking_id: Option<&str>,
    ) -> Result<Vec<PulledCollection<'a>>> {
        parse_pull(catalogue, wanted, data, tracking_id)
    }

    fn save_body(&self, catalogue: &Catalogue, changes: &[&Change]) -> Result<Vec<u8>> {
        save_body(catalogue, changes)
    }

    fn parse_save(
        &self,
        catalogue: &Catalogue,
        changes: &[&Change],
        data: &RawValue,
        rules: &SaveRules,
        tracking_id: Option<&str>,
    ) -> Result<SaveAnswer> {
        parse_save(catalogue, changes, data, rules, tracking_id)
    }

    /// The real server refuses a whole request without saying which record
    /// (no per-record results): always isolate the culprit.
    fn refusal_scope(&self, _code: i64) -> RefusalScope {
        RefusalScope::Isolate
    }

    fn normalise_local(&self, record: Map<String, Value>) -> Map<String, Value> {
        let mut record = camel_object(record);
        local_dates(&mut record);
        record
    }

    fn picture_collection(&self) -> Option<&'static str> {
        Some("pictures")
    }

    fn picture(&self, record: &Map<String, Value>) -> Option<PictureSource> {
        pictures::picture(record)
    }

    fn check_order_dispute(&self, _item: &OrderDisputeItem) -> Result<()> {
        Ok(())
    }

    /// One request takes every order.
    fn order_disputes_per_request(&self) -> usize {
        usize::MAX
    }

    fn disputes_per_request(&self) -> usize {
        RECONCILE_ITEMS_PER_REQUEST
    }

    fn resend_dispute_in_doubt(&self) -> bool {
        false
    }

    /// The real server's answers to these were never captured.
    fn task_answers_known(&self) -> bool {
        false
    }

    /// `{databaseId, disputeItems: [{id, code}]}`; not deduplicated, so
    /// never repeated once it may have arrived.
    fn order_dispute_request(
        &self,
        database_id: i64,
        _request_id: &str,
        items: &[OrderDisputeItem],
    ) -> Result<TaskRequest> {
        let body = json!({
            "databaseId": database_id,
            "disputeItems": items
                .iter()
                .map(|i| json!({"id": i.order_id, "code": i.code}))
                .collect::<Vec<_>>(),
        });
        json_request(TaskEndpoint::OrderDispute, &body, CallKind::Save)
    }

    /// `{databaseId, entityName, disputeItems: [{id, rw}]}`.
    fn dispute_request(
        &self,
        database_id: i64,
        def: &CollectionDef,
        _request_id: &str,
        items: &[RecordDisputeItem],
    ) -> Result<TaskRequest> {
        let body = json!({
            "databaseId": database_id,
            "entityName": def.key,
            "disputeItems": items
                .iter()
                .map(|i| json!({"id": i.id, "rw": i.row_version}))
                .collect::<Vec<_>>(),
        });
        json_request(TaskEndpoint::Dispute, &body, CallKind::Save)
    }

    /// The file alone, with `X-PictureId` and `X-FileName` headers and the
    /// token as the `userToken` query too.
    fn upload_request(
        &self,
        _def: &CollectionDef,
        server_id: i64,
        file_name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<TaskRequest> {
        let headers = vec![
            ("X-PictureId".to_string(), server_id.to_string()),
            ("X-FileName".to_string(), header_safe(file_name)),
        ];
        Ok(multipart(
            &[],
            headers,
            Some("userToken"),
            file_name,
            content_type,
            data,
        ))
    }

    /// `{Result, EntityId, RowVersion, AdditionalData: {FileUrl, FileHash}}`
    /// (WIRE.md section 7, keys in any case): the file's URL becomes the
    /// picture's `url` and its hash its `pictureHash`. An inner `Result:
    /// false` refuses the file. Anything missing or of another shape (no
    /// data, no `AdditionalData`, plain text) says nothing.
    fn read_upload(&self, data: &str) -> UploadAnswer {
        upload_answer(data)
    }
}

/// See [`Mahak::read_upload`].
fn upload_answer(data: &str) -> UploadAnswer {
    let mut answer = UploadAnswer::default();
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(data) else {
        return answer;
    };
    if get_ci(&obj, "Result").and_then(Value::as_bool) == Some(false) {
        let words = ["Message", "ErrorMessage"]
            .iter()
            .find_map(|k| get_ci(&obj, k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("the server did not take the file (Result: false)");
        answer.refused = Some(words.to_string());
        return answer;
    }
    let Some(Value::Object(extra)) = get_ci(&obj, "AdditionalData") else {
        return answer;
    };
    let text = |key: &str| match get_ci(extra, key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(Value::String(s.clone())),
        Some(Value::Number(n)) => Some(Value::String(n.to_string())),
        _ => None,
    };
    for (key, field) in [("FileUrl", "url"), ("FileHash", "pictureHash")] {
        if let Some(v) = text(key) {
            answer.fields.insert(field.to_string(), v);
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::naming::*;
    use super::save::*;
    use super::*;
    use crate::api::dialect::codec::{NextAsk, SaveOutcome};
    use crate::api::dialect::login::jwt_expiry;
    use crate::api::dialect::parse_pull_sorted;
    use crate::record::Op;
    use base64::Engine as _;

    /// A capture of the real server, exactly as it is in the fixtures.
    fn capture(name: &str) -> String {
        let path = format!(
            "{}/../tests/fixtures/mahak/captures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).expect("the captures are in the repo")
    }

    /// The `Data` of a captured answer, as the client hands it on.
    fn data_of(text: &str) -> Box<RawValue> {
        let v: Value = serde_json::from_str(text).expect("a capture is JSON");
        assert!(v["Result"].is_boolean(), "the envelope's flag is `Result`");
        serde_json::value::to_raw_value(&v["Data"]).expect("raw")
    }

    #[test]
    fn golden_products_answer_reads_as_camel_case_records() {
        let cat = Catalogue::mahak();
        let wanted = vec!["products".to_string(), "pictures".to_string()];
        let data = data_of(&capture("getalldata-products.response.json"));
        let page = Mahak.page_text(data.get().to_string());
        let pulled =
            parse_pull_sorted(&Mahak, &cat, &wanted, &page, None).expect("the capture parses");
        let names: Vec<&str> = pulled.iter().map(|c| c.def.name.as_str()).collect();
        assert_eq!(
            names,
            ["pictures", "products"],
            "asked collections only, parents first"
        );
        assert!(pulled[0].records.is_empty(), "`[]`: asked, unchanged");
        let products = &pulled[1];
        assert_eq!(products.records.len(), 6);
        // RowVersion above 2^31 and unordered-safe: the checkpoint is the max.
        assert_eq!(products.checkpoint(), Some(4_028_298_560));
        let (text, meta) = &products.records[0];
        assert_eq!(meta.server_id, Some(8_262_619));
        assert_eq!(meta.client_id, Some(0), "made in the desktop");
        assert!(!meta.deleted);
        let rec: Value = serde_json::from_str(text).expect("stored text is JSON");
        assert_eq!(
            rec["name"], "تيشرت بالنسياگاه  ",
            "Persian text and trailing spaces kept"
        );
        assert_eq!(rec["productCode"], 1);
        assert_eq!(
            rec["dataHash"], "C2CD3E8DB2D36A818B6B95B7FA17EA3910FBBD43",
            "unknown fields kept"
        );
        assert_eq!(
            rec["createDate"], "2025-10-04T15:18:38.2345036",
            "offset-free dates as they are"
        );
        assert!(rec.get("ProductId").is_none() && rec.get("productId").is_some());
        assert!(products.brings_news(4_028_298_558));
        assert!(
            !products.brings_news(4_028_298_560),
            "the record at the checkpoint is no news"
        );
    }

    #[test]
    fn golden_pictures_answer_has_asked_collections_empty_and_the_rest_ignored() {
        let cat = Catalogue::mahak();
        let request: Value =
            serde_json::from_str(&capture("getalldata-pictures.request.json")).expect("JSON");
        let asked: Vec<(&CollectionDef, i64)> = ["pictures", "photoGalleries"]
            .iter()
            .map(|n| (cat.require(n).expect("known"), 0))
            .collect();
        let body: Value = serde_json::from_slice(
            &Mahak
                .pull_body(&PullAsk {
                    wanted: &asked,
                    page_size: 0,
                    order_types: &[],
                })
                .expect("body"),
        )
        .expect("JSON");
        assert_eq!(body, request, "the same keys the capture's request used");
        let wanted = vec![
            "pictures".to_string(),
            "photoGalleries".to_string(),
            "people".to_string(),
        ];
        let data = data_of(&capture("getalldata-pictures.response.json"));
        let page = Mahak.page_text(data.get().to_string());
        let pulled = Mahak
            .parse_pull(&cat, &wanted, &page, None)
            .expect("parses");
        assert_eq!(pulled.len(), 2, "`People: null` brings nothing");
        assert!(pulled
            .iter()
            .all(|c| c.records.is_empty() && c.checkpoint().is_none()));
    }

    fn change(collection: &str, local_id: i64, client_id: i64, payload: Value) -> Change {
        Change {
            collection: collection.to_string(),
            local_id,
            counter: 1,
            op: Op::Create,
            server_id: None,
            client_id: Some(client_id),
            payload: payload.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn golden_partial_save_confirms_the_order_and_refuses_the_line() {
        let cat = Catalogue::mahak();
        let order = change(
            "orders",
            1,
            10001,
            serde_json::json!({"orderId": null, "orderClientId": 10001, "orderType": 201,
                "orderDate": "2025-11-29T12:00:00", "deliveryDate": "2025-11-29T12:00:00",
                "personId": 1, "settlementType": 1, "rowVersion": null}),
        );
        let line = change(
            "orderDetails",
            2,
            10002,
            serde_json::json!({"orderDetailClientId": 10002, "orderClientId": 10001,
                "orderId": null, "productId": 8308737, "count1": 1, "price": 1200000}),
        );
        let changes = [&order, &line];
        // The body says what the capture's request said, in camelCase (the
        // server binds keys without regard to case), with no null ids.
        let body: Value =
            serde_json::from_slice(&save_body(&cat, &changes).expect("body")).expect("JSON");
        let request: Value =
            serde_json::from_str(&capture("savealldata-partial.request.json")).expect("JSON");
        assert_eq!(body["orders"], request["Orders"]);
        assert_eq!(body["orderDetails"], request["OrderDetails"]);
        let data = data_of(&capture("savealldata-partial.response.json"));
        let answer =
            parse_save(&cat, &changes, &data, &SaveRules::default(), None).expect("parses");
        assert_eq!(
            answer.outcomes[0],
            SaveOutcome::Saved {
                server_id: Some(185_741_141),
                row_version: Some(4_028_579_157)
            }
        );
        assert_eq!(
            answer.outcomes[1],
            SaveOutcome::Refused {
                property: Some("IncomeId,ExpenseId,ProductDetailId".into()),
                code: None,
                message: "ProductDetailId or IncomeId or ExpenseId is required".into(),
            }
        );
    }

    #[test]
    fn save_results_match_by_client_id_then_index_and_check_bounds() {
        let cat = Catalogue::mahak();
        let a = change("people", 1, 11, serde_json::json!({"personClientId": 11}));
        let b = change("people", 2, 12, serde_json::json!({"personClientId": 12}));
        let changes = [&a, &b];
        let rules = SaveRules::default();
        let parse = |text: &str| {
            let data: Box<RawValue> = serde_json::from_str(text).expect("JSON");
            parse_save(&cat, &changes, &data, &rules, None)
        };
        // Out of order, one by client id, one by 1-based index; an index out
        // of bounds is ignored.
        let answer = parse(
            r#"{"Objects":{"People":{"Results":[
                {"Result":true,"Index":9,"EntityId":7,"EntityClientId":12,"RowVersion":5000000000},
                {"Result":false,"Index":1,"Errors":[{"Property":"PersonId","Error":"این رکورد قبلا ثبت شده است"}]},
                {"Result":true,"Index":3,"EntityId":8}]}}}"#,
        )
        .expect("parses");
        assert_eq!(
            answer.outcomes,
            [
                SaveOutcome::AlreadyThere {
                    message: "این رکورد قبلا ثبت شده است".into()
                },
                SaveOutcome::Saved {
                    server_id: Some(7),
                    row_version: Some(5_000_000_000)
                },
            ]
        );
        // An index of 0 names no record (the server's are 1-based).
        let answer = parse(r#"{"objects":{"people":{"results":[{"result":true,"index":0,"entityId":3,"rowVersion":1}]}}}"#)
            .expect("parses");
        assert_eq!(
            answer.outcomes,
            [SaveOutcome::Unknown, SaveOutcome::Unknown]
        );
        // An index repeated: neither result is applied, to either record.
        let answer = parse(
            r#"{"Objects":{"People":{"Results":[
                {"Result":true,"Index":1,"EntityId":3,"RowVersion":1},
                {"Result":true,"Index":1,"EntityId":4,"RowVersion":2}]}}}"#,
        )
        .expect("parses");
        assert_eq!(
            answer.outcomes,
            [SaveOutcome::Unknown, SaveOutcome::Unknown]
        );
        // A client id never sent names no record, not the one at its index.
        let answer = parse(
            r#"{"Objects":{"People":{"Results":[
                {"Result":true,"Index":1,"EntityId":3,"EntityClientId":99,"RowVersion":1},
                {"Result":true,"Index":2,"EntityId":4,"EntityClientId":12,"RowVersion":2}]}}}"#,
        )
        .expect("parses");
        assert_eq!(answer.outcomes[0], SaveOutcome::Unknown);
        assert!(matches!(
            answer.outcomes[1],
            SaveOutcome::Saved {
                server_id: Some(4),
                ..
            }
        ));
        // No Objects at all: nothing is known.
        assert!(parse("null")
            .expect("parses")
            .outcomes
            .iter()
            .all(|o| *o == SaveOutcome::Unknown));
        // Wrong types are a protocol error, not a guess.
        assert!(parse(r#"{"Objects":{"People":{"Results":[{"Result":"yes"}]}}}"#).is_err());
        assert!(parse(r#"{"Objects":{"People":{"Results":{}}}}"#).is_err());
        // A refusal by text only, with configured patterns.
        let custom = SaveRules {
            already_registered: vec!["DUPLICATE KEY".into()],
        };
        let data: Box<RawValue> = serde_json::from_str(
            r#"{"Objects":{"People":{"Results":[{"Result":false,"Index":1,"Errors":[{"Property":"Name","Error":"duplicate key row"}]}]}}}"#,
        )
        .expect("JSON");
        let answer = parse_save(&cat, &changes, &data, &custom, None).expect("parses");
        assert!(matches!(
            answer.outcomes[0],
            SaveOutcome::AlreadyThere { .. }
        ));
    }

    #[test]
    fn dates_with_an_offset_are_written_as_the_server_writes_them() {
        let mut obj = serde_json::json!({
            "orderDate": "2026-12-05T10:00:00Z",
            "deliveryDate": "2026-12-05T13:30:00.5+03:30",
            "date": "2026-03-20T23:45:12.1234567-01:00",
            "createDate": "2025-10-04T15:18:38.2345036",
            "birthDate": "1990-01-01",
            "description": "2026-12-05T10:00:00Z",
            "statusTime": 5,
            "updateDate": "not a date"
        });
        let Value::Object(m) = &mut obj else {
            unreachable!()
        };
        local_dates(m);
        assert_eq!(
            obj,
            serde_json::json!({
                "orderDate": "2026-12-05T13:30:00",
                "deliveryDate": "2026-12-05T13:30:00.5000000",
                "date": "2026-03-21T04:15:12.1234567",
                "createDate": "2025-10-04T15:18:38.2345036",
                "birthDate": "1990-01-01",
                "description": "2026-12-05T10:00:00Z",
                "statusTime": 5,
                "updateDate": "not a date"
            })
        );
        // What the server then reads back is the same instant.
        assert_eq!(
            parse_server_time("2026-12-05T13:30:00"),
            parse_server_time("2026-12-05T10:00:00Z")
        );
    }

    /// A record without a `RowVersion` (the Swagger's `OrderModel` has
    /// none) or with a null one is taken at version 0: it parses, it is no
    /// news and it moves no checkpoint.
    #[test]
    fn a_record_without_a_row_version_is_taken_at_version_0() {
        let cat = Catalogue::mahak();
        let wanted = vec!["orders".to_string(), "products".to_string()];
        let page = Mahak.page_text(
            r#"{"Objects":{"Orders":[{"OrderId":7,"OrderCode":1},{"OrderId":8,"RowVersion":null}],"Products":[{"ProductId":1,"RowVersion":40}]}}"#
                .to_string(),
        );
        let pulled = Mahak
            .parse_pull(&cat, &wanted, &page, None)
            .expect("parses");
        let orders = pulled
            .iter()
            .find(|c| c.def.name == "orders")
            .expect("orders");
        let versions: Vec<Option<i64>> =
            orders.records.iter().map(|(_, m)| m.row_version).collect();
        assert_eq!(versions, [Some(0), Some(0)]);
        assert!(!orders.brings_news(0));
        assert_eq!(orders.checkpoint().unwrap_or(0).max(25), 25);
        let products = pulled
            .iter()
            .find(|c| c.def.name == "products")
            .expect("products");
        assert!(products.brings_news(0));
    }

    /// Collections the real server names in odd cases (WIRE.md section 5:
    /// `companies`, `Mahakpays` in a pull) carry records like any other.
    #[test]
    fn collections_in_odd_cases_carry_their_records() {
        let cat = Catalogue::mahak();
        let wanted = vec!["mahakpays".to_string(), "companies".to_string()];
        for (pays, companies) in [("Mahakpays", "companies"), ("MahakPays", "Companies")] {
            let page = Mahak.page_text(format!(
                r#"{{"Objects":{{"{pays}":[{{"MahakPayId":3,"MahakPayClientId":0,"RowVersion":11}}],"{companies}":[{{"CompanyInfoId":1,"RowVersion":12}}],"Banks":null}}}}"#
            ));
            let pulled = Mahak
                .parse_pull(&cat, &wanted, &page, None)
                .expect("parses");
            let got: Vec<(&str, Option<i64>, Option<i64>)> = pulled
                .iter()
                .flat_map(|c| {
                    c.records
                        .iter()
                        .map(move |(_, m)| (c.def.name.as_str(), m.server_id, m.row_version))
                })
                .collect();
            assert_eq!(got.len(), 2, "{pays}, {companies}: {got:?}");
            assert!(got.contains(&("mahakpays", Some(3), Some(11))), "{got:?}");
            assert!(got.contains(&("companies", Some(1), Some(12))), "{got:?}");
        }
    }

    #[test]
    fn pulled_records_are_validated_whole() {
        let cat = Catalogue::mahak();
        let wanted = vec!["products".to_string()];
        let bad = [
            r#"{"Objects":{"Products":[{"RowVersion":1}]}}"#,
            r#"{"Objects":{"Products":[{"ProductId":1,"RowVersion":-5}]}}"#,
            r#"{"Objects":{"Products":[{"ProductId":"1","RowVersion":1}]}}"#,
            r#"{"Objects":{"Products":{"ProductId":1}}}"#,
            r#"{"Objects":[]}"#,
        ];
        let deep = format!(
            r#"{{"Objects":{{"Products":[{{"ProductId":1,"RowVersion":1,"X":{}1{}}}]}}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        let bad = bad.iter().copied().chain([deep.as_str()]);
        for text in bad {
            let data: Box<RawValue> = serde_json::from_str(text).expect("JSON");
            assert!(
                Mahak
                    .parse_pull(
                        &cat,
                        &wanted,
                        &Mahak.page_text(data.get().to_string()),
                        None
                    )
                    .is_err(),
                "{text}"
            );
        }
        let ok: Box<RawValue> = serde_json::from_str(
            r#"{"objects":{"PRODUCTS":[{"productId":2,"RowVersion":9,"Deleted":true}],"Unknown":[1]},"Extra":1}"#,
        )
        .expect("JSON");
        let ok_page = Mahak.page_text(ok.get().to_string());
        let pulled = Mahak
            .parse_pull(&cat, &wanted, &ok_page, None)
            .expect("parses");
        assert!(pulled[0].records[0].1.deleted);
    }

    #[test]
    fn camel_keys_changes_keys_only() {
        let text = r#"{"ProductId":1,"Name":"Tea \"Big\" {X}","Tags":["A",{"Deep":"B"}],"x":{"Y":[]},"ID":2}"#;
        let out = camel_keys(text);
        assert_eq!(
            out,
            r#"{"productId":1,"name":"Tea \"Big\" {X}","tags":["A",{"deep":"B"}],"x":{"y":[]},"iD":2}"#
        );
        assert_eq!(camel_keys(&out), out, "camelCase stays as it is");
        // Persian text and escapes pass through untouched.
        let fa = r#"{"Name":"تيشرت بالنسياگاه  ","Q":"a\\","R":"\u0041"}"#;
        assert_eq!(
            camel_keys(fa),
            r#"{"name":"تيشرت بالنسياگاه  ","q":"a\\","r":"\u0041"}"#
        );
    }

    /// The byte-level transform agrees with a transform of the parsed value
    /// on random records.
    #[test]
    fn camel_keys_agrees_with_the_value_transform() {
        let mut rng = fastrand::Rng::with_seed(5);
        fn gen(rng: &mut fastrand::Rng, depth: u32) -> Value {
            match rng.u32(..if depth > 3 { 4 } else { 6 }) {
                0 => Value::Null,
                1 => Value::from(rng.i64(..)),
                2 => Value::from(f64::from(rng.u32(..1_000_000)) / 4.0),
                3 => Value::from(["A\"b", "ي ك ", "Z\\", "{[,:]}"][rng.usize(..4)]),
                4 => Value::Array((0..rng.usize(..4)).map(|_| gen(rng, depth + 1)).collect()),
                _ => Value::Object(
                    (0..rng.usize(..5))
                        .map(|i| {
                            let k = ["Id", "name", "A\"Q", "Ü", "deleted", "RowVersion"]
                                [rng.usize(..6)];
                            (format!("{k}{i}"), gen(rng, depth + 1))
                        })
                        .collect(),
                ),
            }
        }
        for _ in 0..2_000 {
            let v = gen(&mut rng, 0);
            let text = serde_json::to_string(&v).unwrap();
            let fast: Value = serde_json::from_str(&camel_keys(&text)).unwrap();
            assert_eq!(fast, camel_value(v));
        }
    }

    #[test]
    fn camel_object_prefers_the_camel_key() {
        let v = serde_json::json!({"Name": "a", "name": "b", "Price1": 5, "Inner": {"X": 1}});
        let Value::Object(m) = v else { unreachable!() };
        let m = camel_object(m);
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"name": "b", "price1": 5, "inner": {"x": 1}})
        );
    }

    #[test]
    fn camel_object_renames_a_capital_key_at_any_depth_and_keeps_the_rest() {
        let cases = [
            serde_json::json!({"name": "a", "price1": 5, "tags": ["X"], "inner": {"x": 1}}),
            serde_json::json!({"name": "a", "inner": {"Deep": 1}}),
            serde_json::json!({"name": "a", "lines": [{"count1": 1}, {"Count1": 2}]}),
            serde_json::json!({"Name": "a"}),
            serde_json::json!({}),
        ];
        let expected = [
            serde_json::json!({"name": "a", "price1": 5, "tags": ["X"], "inner": {"x": 1}}),
            serde_json::json!({"name": "a", "inner": {"deep": 1}}),
            serde_json::json!({"name": "a", "lines": [{"count1": 1}, {"count1": 2}]}),
            serde_json::json!({"name": "a"}),
            serde_json::json!({}),
        ];
        for (v, want) in cases.into_iter().zip(expected) {
            let Value::Object(m) = v else { unreachable!() };
            assert_eq!(Value::Object(camel_object(m)), want);
        }
    }

    #[test]
    fn md5_of_a_password_is_lowercase_hex() {
        assert_eq!(password_hash(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(password_hash("pass1"), "a722c63db8ec8625af6cf71cb8c2d939");
    }

    #[test]
    fn jwt_expiry_and_server_time() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"nbf":1700000000,"exp":1700604800,"iat":1700000000}"#);
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
        assert_eq!(
            jwt_expiry(&token).map(|t| t.timestamp()),
            Some(1_700_604_800)
        );
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
        let t = parse_server_time("2025-10-04T15:18:38.2345036").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-10-04T11:48:38.234503600+00:00");
        let z = parse_server_time("2025-10-04T11:48:38Z").unwrap();
        assert_eq!(z.timestamp(), t.timestamp());
        assert!(parse_server_time("yesterday").is_none());
    }

    /// The paging rule on the captured page: news asks again; the same
    /// answer again (a server that ignores the bound it was given) is all
    /// repeats at the checkpoint, which shows the bound inclusive; asked
    /// from the checkpoint plus one, an answer with nothing newer ends it.
    #[test]
    fn golden_products_page_through_the_pager() {
        let cat = Catalogue::mahak();
        let wanted = vec!["products".to_string()];
        let data = data_of(&capture("getalldata-products.response.json"));
        let page = Mahak.page_text(data.get().to_string());
        let mut pager = Mahak.pager(50, false);
        assert_eq!(pager.page_size(), 50);
        let mut checkpoint = 0;
        let mut entries =
            parse_pull_sorted(&Mahak, &cat, &wanted, &page, None).expect("the capture parses");
        let at = |cp: i64| move |_: &str| cp;
        assert!(matches!(
            pager.next(&mut entries, &at(checkpoint), &wanted, None),
            NextAsk::Again(ref w) if *w == wanted
        ));
        checkpoint = entries[0].checkpoint().expect("versions");
        assert_eq!(
            pager.ask_from(checkpoint),
            checkpoint,
            "not known inclusive yet"
        );
        let mut again =
            parse_pull_sorted(&Mahak, &cat, &wanted, &page, None).expect("the capture parses");
        assert!(matches!(
            pager.next(&mut again, &at(checkpoint), &wanted, None),
            NextAsk::Again(_)
        ));
        assert!(
            again[0]
                .records
                .iter()
                .all(|(_, m)| m.row_version != Some(checkpoint)),
            "the repeat at the checkpoint is no news"
        );
        assert!(pager.learned_inclusive_bound());
        assert_eq!(pager.ask_from(checkpoint), checkpoint + 1);
        let empty = Mahak.page_text(r#"{"Objects":{"Products":[]}}"#.to_string());
        let mut last = parse_pull_sorted(&Mahak, &cat, &wanted, &empty, None).expect("parses");
        assert!(matches!(
            pager.next(&mut last, &at(checkpoint), &wanted, None),
            NextAsk::Done
        ));
    }

    /// What the codec says of the real server's habits.
    /// An upload's answer (WIRE.md section 7): `FileUrl` and `FileHash`
    /// become the picture's `url` and `pictureHash`, keys in any case; an
    /// inner `Result: false` refuses the file; any other shape says nothing.
    #[test]
    fn an_upload_answer_gives_the_pictures_url_and_hash() {
        let a = Mahak.read_upload(
            r#"{"Result":true,"EntityId":12,"RowVersion":4030000001,
                "AdditionalData":{"FileUrl":"/api/v3/Content/Images/all/12-a.jpg","fileHash":"ab12"}}"#,
        );
        assert_eq!(a.refused, None);
        assert_eq!(
            Value::Object(a.fields),
            json!({"url": "/api/v3/Content/Images/all/12-a.jpg", "pictureHash": "ab12"})
        );
        let a = Mahak.read_upload(r#"{"result":false,"message":" too big "}"#);
        assert_eq!(a.refused.as_deref(), Some("too big"));
        assert!(Mahak.read_upload(r#"{"Result":false}"#).refused.is_some());
        for data in [
            "null",
            "",
            "OK",
            "[1]",
            r#"{"Result":true,"EntityId":12}"#,
            r#"{"Result":true,"AdditionalData":null}"#,
            r#"{"AdditionalData":{"FileUrl":"","FileHash":null}}"#,
        ] {
            assert_eq!(Mahak.read_upload(data), UploadAnswer::default(), "{data}");
        }
        assert_eq!(
            Mahak
                .read_upload(r#"{"AdditionalData":{"FileHash":77}}"#)
                .fields["pictureHash"],
            "77"
        );
    }

    #[test]
    fn the_real_servers_rules() {
        assert!(!Mahak.idempotent_save());
        assert!(!Mahak.resend_dispute_in_doubt());
        assert!(Mahak.login_refusal_sticks(0));
        for code in [0, 2001, 3001, 42] {
            assert_eq!(Mahak.refusal_scope(code), RefusalScope::Isolate);
        }
        let obj = serde_json::json!({"Name": "a", "OrderDate": "2026-12-05T10:00:00Z"});
        let Value::Object(m) = obj else {
            unreachable!()
        };
        assert_eq!(
            Value::Object(Mahak.normalise_local(m)),
            serde_json::json!({"name": "a", "orderDate": "2026-12-05T13:30:00"})
        );
        let cat = Catalogue::mahak();
        let ask = PullAsk {
            wanted: &[(cat.require("orders").expect("known"), 5)],
            page_size: 10,
            order_types: &[201],
        };
        let body: Value =
            serde_json::from_slice(&Mahak.pull_body(&ask).expect("body")).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({"fromOrderVersion": 5, "pageSize": 10, "orderTypes": [201]})
        );
    }
}
