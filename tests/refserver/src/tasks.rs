//! The endpoints beside pull and save: `SolveOrderDispute`, `SolveDispute`
//! and `Upload`, in both dialects. The server records every dispute it
//! receives and stores every upload, for tests to read
//! ([`crate::Admin::disputes`], [`crate::Admin::uploads`]), and can refuse
//! them on command ([`crate::ServerConfig::refuse_tasks`]).
//!
//! - Mahak: `{databaseId, disputeItems: [{id, code}]}` and `{databaseId,
//!   entityName, disputeItems: [{id, rw}]}`, recorded at every receipt (the
//!   real server does not deduplicate). The answer is `{"Result": true}`,
//!   an empty 200 with [`crate::ServerConfig::bare_task_answers`], or a
//!   plain-text `OK` with [`crate::ServerConfig::plain_task_answers`] (the
//!   real answer was never captured). An upload is multipart with one file
//!   part, `X-PictureId` and `X-FileName` headers, and the token as the
//!   `userToken` query; the picture must exist. As WIRE.md section 7 says,
//!   the answer is `{Result, Data: {Result, EntityId, RowVersion,
//!   AdditionalData: {FileUrl, FileHash}}}`: the file is public under
//!   `/api/v3/Content/Images/all/` with a name that changes with its bytes,
//!   and the picture record gets that `url` and `pictureHash` (the MD5 of
//!   the file) at a new row version. Without `AdditionalData` under
//!   [`crate::ServerConfig::upload_without_additional_data`].
//! - Documented: one order or record per dispute, deduplicated by
//!   `requestId` (a resend is answered as the first was, and not recorded
//!   again). An upload is multipart with `entity`, `id` (or `clientId`) and
//!   `file`; the answer is `{fileId}`.
//!
//! An upload is keyed by its record and file name: sending it again
//! replaces the file.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::handler::{as_int, field, Reply};
use crate::save::CODE_VALIDATION;
use crate::{store, RefServer, RequestLog, ServerError};
use rowsync::HttpRequest;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS disputes (
    id          INTEGER PRIMARY KEY,
    endpoint    TEXT NOT NULL,
    request_id  TEXT,
    body        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    id            INTEGER PRIMARY KEY,
    entity        TEXT NOT NULL,
    record_id     INTEGER NOT NULL,
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    data          BLOB NOT NULL,
    received      INTEGER NOT NULL DEFAULT 1,
    UNIQUE (entity, record_id, file_name)
);
";

/// A dispute as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedDispute {
    /// `SolveOrderDispute` or `SolveDispute`.
    pub endpoint: String,
    /// The documented dialect's `requestId`.
    pub request_id: Option<String>,
    /// The body as received.
    pub body: Value,
}

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUpload {
    /// The file id answered (documented dialect).
    pub id: i64,
    /// The collection (documented) or `pictures` (mahak).
    pub entity: String,
    /// The record's server id (mahak: the picture id).
    pub record_id: i64,
    /// The file name.
    pub file_name: String,
    /// The file part's content type.
    pub content_type: String,
    /// The bytes.
    pub data: Vec<u8>,
    /// How many times it was received (a resend replaces it).
    pub received: u32,
}

pub(crate) fn disputes(db: &Connection) -> Result<Vec<ReceivedDispute>, ServerError> {
    let mut st = db.prepare("SELECT endpoint, request_id, body FROM disputes ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (endpoint, request_id, body) = row?;
        out.push(ReceivedDispute {
            endpoint,
            request_id,
            body: serde_json::from_str(&body)?,
        });
    }
    Ok(out)
}

pub(crate) fn uploads(db: &Connection) -> Result<Vec<StoredUpload>, ServerError> {
    let mut st = db.prepare(
        "SELECT id, entity, record_id, file_name, content_type, data, received FROM uploads ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(StoredUpload {
            id: r.get(0)?,
            entity: r.get(1)?,
            record_id: r.get(2)?,
            file_name: r.get(3)?,
            content_type: r.get(4)?,
            data: r.get(5)?,
            received: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A refusal in the dialect's envelope (a business failure: 200 in mahak,
/// 400 documented).
fn refuse(server: &RefServer, message: &str) -> Reply {
    if server.is_mahak() {
        crate::mahak::fail(200, message)
    } else {
        Reply::fail(400, CODE_VALIDATION, message, Value::Null)
    }
}

/// A task the server took: `data` as the documented answer's, and as the
/// mahak answer's `Data` when `mahak_data` is given (else `null`).
fn accepted(server: &RefServer, data: Value, mahak_data: Option<Value>) -> Reply {
    if !server.is_mahak() {
        return Reply::ok(data);
    }
    if server.config().bare_task_answers {
        return Reply {
            status: 200,
            code: None,
            outcome: "ok (empty)".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
    }
    if server.config().plain_task_answers {
        return Reply {
            status: 200,
            code: None,
            outcome: "ok (plain text)".into(),
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: b"OK".to_vec(),
        };
    }
    crate::mahak::ok_raw(&mahak_data.unwrap_or(Value::Null).to_string())
}

/// Handles `SolveOrderDispute` (`order`) or `SolveDispute`.
pub(crate) fn dispute(
    server: &RefServer,
    endpoint: &str,
    body: &[u8],
    entry: &mut RequestLog,
) -> Result<Reply, ServerError> {
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        _ => return Ok(refuse(server, "the body must be a JSON object")),
    };
    if let Some(why) = server.config().refuse_tasks.clone() {
        return Ok(refuse(server, &why));
    }
    let order = endpoint.eq_ignore_ascii_case("SolveOrderDispute");
    let name = if order {
        "SolveOrderDispute"
    } else {
        "SolveDispute"
    };
    if let Err(why) = check_dispute(server, order, &obj) {
        return Ok(refuse(server, &why));
    }
    let request_id = field(&obj, "requestId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let db = server.db();
    if !server.is_mahak() {
        let seen: Option<i64> = match &request_id {
            Some(r) => db
                .query_row(
                    "SELECT id FROM disputes WHERE request_id = ?1",
                    [r],
                    |row| row.get(0),
                )
                .optional()?,
            None => None,
        };
        if seen.is_some() {
            entry.outcome = "duplicate requestId".into();
            return Ok(Reply::ok(
                json!({"requestId": request_id, "duplicate": true}),
            ));
        }
    }
    db.execute(
        "INSERT INTO disputes(endpoint, request_id, body) VALUES (?1, ?2, ?3)",
        params![name, request_id, Value::Object(obj.clone()).to_string()],
    )?;
    let items = field(&obj, "disputeItems")
        .and_then(Value::as_array)
        .map_or(1, Vec::len);
    entry.counts = vec![(name.to_string(), items)];
    Ok(accepted(server, json!({"requestId": request_id}), None))
}

fn check_dispute(server: &RefServer, order: bool, obj: &Map<String, Value>) -> Result<(), String> {
    if server.is_mahak() {
        if as_int(field(obj, "databaseId")) != Some(server.session_ids().0) {
            return Err("unknown databaseId".into());
        }
        if !order && field(obj, "entityName").and_then(Value::as_str).is_none() {
            return Err("entityName is required".into());
        }
        let Some(items) = field(obj, "disputeItems").and_then(Value::as_array) else {
            return Err("disputeItems must be a list".into());
        };
        let key = if order { "code" } else { "rw" };
        for item in items {
            let Some(item) = item.as_object() else {
                return Err("a dispute item must be an object".into());
            };
            if as_int(field(item, "id")).is_none() || as_int(field(item, key)).is_none() {
                return Err(format!("a dispute item needs `id` and `{key}`"));
            }
        }
        return Ok(());
    }
    let id_key = if order { "orderId" } else { "id" };
    if as_int(field(obj, id_key)).is_none() {
        return Err(format!("`{id_key}` is required"));
    }
    if field(obj, "requestId").and_then(Value::as_str).is_none() {
        return Err("`requestId` is required".into());
    }
    if order {
        let r = field(obj, "resolution").and_then(Value::as_str);
        if !matches!(r, Some("accept" | "reject" | "adjust")) {
            return Err("`resolution` must be accept, reject or adjust".into());
        }
    } else if field(obj, "entity").and_then(Value::as_str).is_none() {
        return Err("`entity` is required".into());
    }
    Ok(())
}

/// One part of a multipart body.
struct Part<'a> {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    data: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A `name="value"` parameter of a `Content-Disposition` header.
fn param(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Splits a multipart body (part headers read with `httparse`).
fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let mut at = find(body, d, 0).ok_or("no multipart boundary in the body")?;
    let mut out = Vec::new();
    loop {
        let after = at + d.len();
        if body.get(after..after + 2) == Some(b"--") {
            return Ok(out);
        }
        let start = after + 2; // CRLF after the delimiter
        let next = find(body, &[b"\r\n", d].concat(), start).ok_or("a part never ends")?;
        let part = body.get(start..next).ok_or("a cut part")?;
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let (len, headers) = match httparse::parse_headers(part, &mut headers) {
            Ok(httparse::Status::Complete(c)) => c,
            _ => return Err("a part's headers cannot be read".into()),
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        let disposition =
            header("content-disposition").ok_or("a part has no Content-Disposition")?;
        out.push(Part {
            name: param(&disposition, "name").unwrap_or_default(),
            file_name: param(&disposition, "filename"),
            content_type: header("content-type"),
            data: &part[len..],
        });
        at = next + 2;
    }
}

/// Percent-decodes a header value (UTF-8 file names).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Handles `Upload`.
pub(crate) fn upload(
    server: &RefServer,
    req: &HttpRequest,
    entry: &mut RequestLog,
) -> Result<Reply, ServerError> {
    let config = server.config();
    if let Some(why) = config.refuse_tasks.clone() {
        return Ok(refuse(server, &why));
    }
    let Some(boundary) = req
        .header("content-type")
        .filter(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"))
        .and_then(|c| param(c, "boundary"))
    else {
        return Ok(refuse(server, "an upload is multipart/form-data"));
    };
    let parts = match parts(&req.body, &boundary) {
        Ok(p) => p,
        Err(why) => return Ok(refuse(server, &why)),
    };
    let files: Vec<&Part<'_>> = parts.iter().filter(|p| p.file_name.is_some()).collect();
    let [file] = files.as_slice() else {
        return Ok(refuse(server, "an upload has exactly one file part"));
    };
    if file.data.len() > config.max_upload_bytes {
        return Ok(refuse(
            server,
            &format!("the file is larger than {} bytes", config.max_upload_bytes),
        ));
    }
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name && p.file_name.is_none())
            .map(|p| String::from_utf8_lossy(p.data).trim().to_string())
    };
    let db = server.db();
    let (entity, record_id, file_name) = if server.is_mahak() {
        let Some(id) = req
            .header("x-pictureid")
            .and_then(|v| v.trim().parse::<i64>().ok())
        else {
            return Ok(refuse(server, "X-PictureId is required"));
        };
        let Some(name) = req.header("x-filename").map(percent_decode) else {
            return Ok(refuse(server, "X-FileName is required"));
        };
        if store::get(&db, "pictures", id)?.is_none_or(|r| r.deleted) {
            return Ok(refuse(server, &format!("no picture {id}")));
        }
        ("pictures".to_string(), id, name)
    } else {
        let Some(entity) = text("entity").filter(|e| server.catalogue().get(e).is_some()) else {
            return Ok(refuse(server, "`entity` must name a collection"));
        };
        let id = match (text("id"), text("clientId")) {
            (Some(id), _) => id.parse::<i64>().ok(),
            (None, Some(c)) => c
                .parse::<i64>()
                .ok()
                .and_then(|c| store::id_for_client(&db, &entity, c).ok().flatten()),
            (None, None) => None,
        };
        let Some(id) = id.filter(|&id| store::get(&db, &entity, id).ok().flatten().is_some())
        else {
            return Ok(refuse(server, &format!("no such record in `{entity}`")));
        };
        (entity, id, file.file_name.clone().unwrap_or_default())
    };
    db.execute(
        "INSERT INTO uploads(entity, record_id, file_name, content_type, data)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (entity, record_id, file_name) DO UPDATE
         SET data = excluded.data, content_type = excluded.content_type, received = received + 1",
        params![
            entity,
            record_id,
            file_name,
            file.content_type.clone().unwrap_or_default(),
            file.data
        ],
    )?;
    let file_id: i64 = db.query_row(
        "SELECT id FROM uploads WHERE entity = ?1 AND record_id = ?2 AND file_name = ?3",
        params![entity, record_id, file_name],
        |r| r.get(0),
    )?;
    drop(db);
    let mahak = match server.is_mahak() {
        true => Some(picture_answer(
            server, record_id, file_id, &file_name, file.data,
        )?),
        false => None,
    };
    entry.counts = vec![(entity, 1)];
    Ok(accepted(server, json!({"fileId": file_id}), mahak))
}

/// The real server's upload answer (WIRE.md section 7), after giving
/// picture `id` its file's public `url` and `pictureHash` at a new row
/// version.
fn picture_answer(
    server: &RefServer,
    id: i64,
    file_id: i64,
    file_name: &str,
    data: &[u8],
) -> Result<Value, ServerError> {
    let hash = crate::pictures::picture_hash(data);
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("bin");
    let served = format!("{id}-{file_id}-{}.{ext}", &hash[..8]);
    let url = format!("{}{served}", crate::pictures::IMAGES_PATH);
    // The file is served under that URL from now on, as a seeded one is.
    crate::pictures::store_file(&server.db(), &served, id, data)?;
    let mut fields = Map::new();
    fields.insert("url".into(), json!(url));
    fields.insert("pictureHash".into(), json!(hash));
    let record = server.admin().update_fields("pictures", id, fields)?;
    let row_version = ["rowVersion", "RowVersion"]
        .iter()
        .find_map(|k| record.get(*k).and_then(Value::as_i64));
    let mut answer = json!({"Result": true, "EntityId": id, "RowVersion": row_version});
    if !server.config().upload_without_additional_data {
        answer["AdditionalData"] = json!({"FileUrl": url, "FileHash": hash});
    }
    Ok(answer)
}
