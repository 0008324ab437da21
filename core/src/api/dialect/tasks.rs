//! What the task calls of every dialect share: a JSON request, and a
//! multipart upload with one file part (a boundary that does not occur in
//! the file, file names made safe for a header and for a quoted
//! parameter). Each dialect's bodies are in its codec (`docs/WIRE.md`
//! section 7, `docs/PROTOCOL.md` section 9).

use serde_json::Value;

use super::codec::{TaskEndpoint, TaskRequest};
use crate::api::call::CallKind;
use crate::error::Result;

/// A JSON call to `endpoint`.
pub(crate) fn json_request(
    endpoint: TaskEndpoint,
    body: &Value,
    kind: CallKind,
) -> Result<TaskRequest> {
    Ok(TaskRequest {
        endpoint,
        body: serde_json::to_vec(body)?,
        content_type: "application/json; charset=utf-8".into(),
        headers: Vec::new(),
        token_query: None,
        kind,
    })
}

/// An `Upload` of `data` as multipart: the text `fields` first, then the
/// file part. Keyed by its record, so a resend replaces the file.
pub(crate) fn multipart(
    fields: &[(&str, String)],
    headers: Vec<(String, String)>,
    token_query: Option<&'static str>,
    file_name: &str,
    content_type: &str,
    data: &[u8],
) -> TaskRequest {
    let boundary = boundary_for(data);
    let mut body = Vec::with_capacity(data.len() + 512);
    for (name, value) in fields {
        field(&mut body, &boundary, name, value);
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
    TaskRequest {
        endpoint: TaskEndpoint::Upload,
        body,
        content_type: format!("multipart/form-data; boundary={boundary}"),
        headers,
        token_query,
        kind: CallKind::Idempotent,
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
pub(crate) fn header_safe(name: &str) -> String {
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
    use serde_json::{json, Value};

    use crate::api::call::CallKind;
    use crate::catalogue::{Catalogue, Dialect};
    use crate::tasks::{OrderDisputeItem, RecordDisputeItem};

    #[test]
    fn mahak_dispute_bodies_are_the_real_ones() {
        let items = [OrderDisputeItem {
            order_id: 7,
            code: 2,
            ..OrderDisputeItem::default()
        }];
        let r = Dialect::Mahak
            .codec()
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
            .codec()
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
            .codec()
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
            .codec()
            .upload_request(def, 41, "a.jpg", "image/jpeg", b"x")
            .unwrap();
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains("name=\"entity\"\r\n\r\npictures\r\n"));
        assert!(text.contains("name=\"id\"\r\n\r\n41\r\n"));
        assert!(r.token_query.is_none());
    }
}
