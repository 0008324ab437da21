//! The bytes of the calls beside pull and save: the two dispute endpoints
//! and the upload, in each dialect (`docs/WIRE.md` section 7,
//! `docs/PROTOCOL.md` section 9).
//!
//! - The real server takes `SolveOrderDispute` as `{databaseId,
//!   disputeItems: [{id, code}]}` and `SolveDispute` as `{databaseId,
//!   entityName, disputeItems: [{id, rw}]}`; it does not deduplicate, and
//!   the shape of its answer is not known (an empty 200, an envelope, any
//!   JSON are all read as they come). A dispute whose answer was lost is
//!   never sent again by itself.
//! - The documented dialect takes one order or record per request, with a
//!   client-generated `requestId` the server deduplicates, so a resend after
//!   a lost answer is safe.
//! - An upload is multipart with one file part. The real server wants
//!   `X-PictureId` and `X-FileName` headers and the token as the `userToken`
//!   query; the documented one wants `entity`, `id` and `file` fields. The
//!   upload is keyed by its record, so a resend replaces rather than adds.

use serde_json::{json, Value};

use crate::api::client::CallKind;
use crate::api::dialect::Endpoints;
use crate::catalogue::{CollectionDef, Dialect};
use crate::error::{Error, Result};
use crate::tasks::{OrderDisputeItem, RecordDisputeItem};

/// Which task endpoint a call goes to; its name comes from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskEndpoint {
    /// `SolveOrderDispute`.
    OrderDispute,
    /// `SolveDispute`.
    Dispute,
    /// `Upload`.
    Upload,
}

impl TaskEndpoint {
    /// Its name among `endpoints`.
    pub(crate) fn name(self, endpoints: &Endpoints) -> &str {
        match self {
            TaskEndpoint::OrderDispute => &endpoints.order_dispute,
            TaskEndpoint::Dispute => &endpoints.dispute,
            TaskEndpoint::Upload => &endpoints.upload,
        }
    }
}

/// One call of the task queue, ready for the client.
#[derive(Debug, Clone)]
pub(crate) struct TaskRequest {
    /// The endpoint.
    pub endpoint: TaskEndpoint,
    /// The body.
    pub body: Vec<u8>,
    /// Its content type.
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The token as a query parameter too.
    pub token_query: Option<&'static str>,
    /// How the call may be repeated.
    pub kind: CallKind,
}

fn json_request(endpoint: TaskEndpoint, body: &Value, kind: CallKind) -> Result<TaskRequest> {
    Ok(TaskRequest {
        endpoint,
        body: serde_json::to_vec(body)?,
        content_type: "application/json; charset=utf-8".into(),
        headers: Vec::new(),
        token_query: None,
        kind,
    })
}

impl Dialect {
    /// How a dispute call may be repeated: the real server does not
    /// deduplicate, so once it may have arrived it is never resent.
    fn dispute_kind(self) -> CallKind {
        match self {
            Dialect::Mahak => CallKind::Save,
            Dialect::Documented => CallKind::Idempotent,
        }
    }

    /// `SolveOrderDispute`. The documented dialect takes one order per
    /// request: `items` must then hold exactly one.
    pub(crate) fn order_dispute_request(
        self,
        database_id: i64,
        request_id: &str,
        items: &[OrderDisputeItem],
    ) -> Result<TaskRequest> {
        let body = match self {
            Dialect::Mahak => json!({
                "databaseId": database_id,
                "disputeItems": items
                    .iter()
                    .map(|i| json!({"id": i.order_id, "code": i.code}))
                    .collect::<Vec<_>>(),
            }),
            Dialect::Documented => {
                let [item] = items else {
                    return Err(Error::Config(format!(
                        "a documented SolveOrderDispute names one order, not {}",
                        items.len()
                    )));
                };
                json!({
                    "orderId": item.order_id,
                    "resolution": item.resolution,
                    "reason": item.reason,
                    "amount": item.amount,
                    "requestId": request_id,
                })
            }
        };
        json_request(TaskEndpoint::OrderDispute, &body, self.dispute_kind())
    }

    /// `SolveDispute` for records of `def`. The documented dialect takes one
    /// record per request.
    pub(crate) fn dispute_request(
        self,
        database_id: i64,
        def: &CollectionDef,
        request_id: &str,
        items: &[RecordDisputeItem],
    ) -> Result<TaskRequest> {
        let body = match self {
            Dialect::Mahak => json!({
                "databaseId": database_id,
                "entityName": def.key,
                "disputeItems": items
                    .iter()
                    .map(|i| json!({"id": i.id, "rw": i.row_version}))
                    .collect::<Vec<_>>(),
            }),
            Dialect::Documented => {
                let [item] = items else {
                    return Err(Error::Config(format!(
                        "a documented SolveDispute names one record, not {}",
                        items.len()
                    )));
                };
                json!({
                    "entity": def.name,
                    "id": item.id,
                    "rowVersion": item.row_version,
                    "resolution": item.resolution,
                    "reason": item.reason,
                    "requestId": request_id,
                })
            }
        };
        json_request(TaskEndpoint::Dispute, &body, self.dispute_kind())
    }

    /// `Upload` of `data` for record `server_id` of `def`, as multipart.
    pub(crate) fn upload_request(
        self,
        def: &CollectionDef,
        server_id: i64,
        file_name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<TaskRequest> {
        let boundary = boundary_for(data);
        let mut body = Vec::with_capacity(data.len() + 512);
        let mut headers = Vec::new();
        let mut token_query = None;
        match self {
            Dialect::Mahak => {
                headers.push(("X-PictureId".to_string(), server_id.to_string()));
                headers.push(("X-FileName".to_string(), header_safe(file_name)));
                token_query = Some("userToken");
            }
            Dialect::Documented => {
                field(&mut body, &boundary, "entity", &def.name);
                field(&mut body, &boundary, "id", &server_id.to_string());
            }
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
                quoted_safe(file_name)
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Ok(TaskRequest {
            endpoint: TaskEndpoint::Upload,
            body,
            content_type: format!("multipart/form-data; boundary={boundary}"),
            headers,
            token_query,
            // Keyed by its record: a resend replaces the file.
            kind: CallKind::Idempotent,
        })
    }
}

/// One text field of a multipart body.
fn field(body: &mut Vec<u8>, boundary: &str, name: &str, value: &str) {
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
        .as_bytes(),
    );
}

/// A boundary that does not occur in `data`.
fn boundary_for(data: &[u8]) -> String {
    loop {
        let b = format!(
            "rowsync-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        if !data.windows(b.len()).any(|w| w == b.as_bytes()) {
            return b;
        }
    }
}

/// A file name as a header value: printable ASCII as is, anything else
/// percent-encoded (UTF-8).
fn header_safe(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            if c == '%' {
                out.push_str("%25");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A file name inside a quoted multipart parameter (UTF-8 kept, as
/// browsers send it; quotes and line breaks cannot occur: the queue
/// refuses such names).
fn quoted_safe(name: &str) -> String {
    name.replace(['"', '\r', '\n'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    #[test]
    fn mahak_dispute_bodies_are_the_real_ones() {
        let items = [OrderDisputeItem {
            order_id: 7,
            code: 2,
            ..OrderDisputeItem::default()
        }];
        let r = Dialect::Mahak
            .order_dispute_request(12, "r1", &items)
            .unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            json!({"databaseId": 12, "disputeItems": [{"id": 7, "code": 2}]})
        );
        assert_eq!(r.kind, CallKind::Save);
        let cat = Catalogue::mahak();
        let def = cat.get("products").unwrap();
        let items = [RecordDisputeItem {
            id: 3,
            row_version: 99,
            ..RecordDisputeItem::default()
        }];
        let r = Dialect::Mahak
            .dispute_request(12, def, "r2", &items)
            .unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            json!({"databaseId": 12, "entityName": "product", "disputeItems": [{"id": 3, "rw": 99}]})
        );
    }

    #[test]
    fn upload_is_multipart_with_the_dialects_fields() {
        let cat = Catalogue::mahak();
        let def = cat.get("pictures").unwrap();
        let r = Dialect::Mahak
            .upload_request(def, 41, "فاکتور.jpg", "image/jpeg", b"\xff\xd8data")
            .unwrap();
        assert_eq!(r.token_query, Some("userToken"));
        assert!(r.headers.contains(&("X-PictureId".into(), "41".into())));
        let name = &r.headers.iter().find(|h| h.0 == "X-FileName").unwrap().1;
        assert!(name.is_ascii() && name.ends_with(".jpg"), "{name}");
        let boundary = r.content_type.split("boundary=").nth(1).unwrap();
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(text.matches(&format!("--{boundary}\r\n")).count(), 1);
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert!(r.body.windows(6).any(|w| w == b"\xff\xd8data"));
        let r = Dialect::Documented
            .upload_request(def, 41, "a.jpg", "image/jpeg", b"x")
            .unwrap();
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains("name=\"entity\"\r\n\r\npictures\r\n"));
        assert!(text.contains("name=\"id\"\r\n\r\n41\r\n"));
        assert!(r.token_query.is_none());
    }
}
