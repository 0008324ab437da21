//! Picture files, as the real server serves them (WIRE.md section 7):
//! public files under the origin at `/api/v3/Content/Images/all/<file>`,
//! fetched with a plain GET and no token. The `pictures` records name them
//! by `fileName` and `url` (relative to the origin; some name only their
//! `fileName`), with the file's `pictureHash` (the lowercase hex MD5 of its
//! bytes: what the real server's hash is is not known). A changed picture
//! gets a new file name and hash. Uploaded files (`Upload`) are served too,
//! by their file name.
//!
//! Habits ([`crate::ServerConfig`]): a slow file (`slow_pictures`, answered
//! after `slow_picture_delay`), a missing one (`missing_pictures`: 404), a
//! file cut mid-way (`cut_pictures`: its full `Content-Length`, half of its
//! bytes, then the connection closes); a changed file is
//! [`crate::Admin::change_picture`].

use md5::{Digest, Md5};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::admin::Admin;
use crate::{store, Outcome, RefServer, RequestLog, ServerError};
use rowsync::{HttpRequest, HttpResponse};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS picture_files (
    file_name   TEXT PRIMARY KEY,
    picture_id  INTEGER NOT NULL,
    data        BLOB NOT NULL
);
";

/// Where the files are, under the origin.
pub const IMAGES_PATH: &str = "/api/v3/Content/Images/all/";

/// The file name of a request path under [`IMAGES_PATH`] (any case),
/// percent-decoded; `None` for any other path.
pub(crate) fn file_of(path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    let at = lower.find("/content/images/all/")?;
    let name = &path[at + "/content/images/all/".len()..];
    (!name.is_empty()).then(|| crate::tasks::percent_decode(name))
}

/// The lowercase hex MD5 of `data`: a picture's `pictureHash`.
pub fn picture_hash(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes of picture `id` at `version`: a small JPEG-looking file of
/// 2 to 6 KiB, the same for the same seed.
fn picture_bytes(seed: u64, id: i64, version: i64) -> Vec<u8> {
    let mut rng =
        fastrand::Rng::with_seed(seed ^ (id as u64).wrapping_mul(0x51_7C) ^ version as u64);
    let n = rng.usize(2048..6144);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0];
    out.extend((0..n).map(|_| rng.u8(..)));
    out.extend([0xFF, 0xD9]);
    out
}

fn file_name(id: i64, version: i64) -> String {
    format!("p{id}-v{version}.jpg")
}

/// The record fields that name picture `id`'s file at `version`.
fn file_fields(id: i64, version: i64, data: &[u8]) -> Map<String, Value> {
    let name = file_name(id, version);
    let mut m = Map::new();
    m.insert("fileName".into(), Value::from(name.clone()));
    // Every seventh names only its file: the client finds it by name.
    let url = if id % 7 == 0 {
        Value::Null
    } else {
        Value::from(format!("{IMAGES_PATH}{name}"))
    };
    m.insert("url".into(), url);
    m.insert("fileSize".into(), Value::from(data.len()));
    m.insert("format".into(), Value::from("jpg"));
    m.insert("pictureHash".into(), Value::from(picture_hash(data)));
    m
}

pub(crate) fn store_file(
    tx: &Connection,
    name: &str,
    id: i64,
    data: &[u8],
) -> Result<(), ServerError> {
    tx.execute(
        "INSERT OR REPLACE INTO picture_files(file_name, picture_id, data) VALUES (?1, ?2, ?3)",
        params![name, id, data],
    )?;
    Ok(())
}

impl Admin<'_> {
    /// Adds `n` pictures (mahak dialect), as the desktop would: each a
    /// `pictures` record with its file, and, for each product there, a
    /// `photoGalleries` link from the product to its picture (`entityType`
    /// 102). Returns the new pictures' ids.
    pub fn seed_pictures(&self, n: usize) -> Result<Vec<i64>, ServerError> {
        if !self.server().is_mahak() {
            return Err(ServerError::Invalid(
                "pictures are seeded in the mahak dialect".into(),
            ));
        }
        let seed = self.server().config().seed;
        self.write_tx(|tx, counter| {
            let first = store::next_id(tx, "pictures")?;
            let first_link = store::next_id(tx, "photoGalleries")?;
            let products = store::live_ids(tx, "products")?;
            let mut ids = Vec::with_capacity(n);
            for i in 0..n as i64 {
                let id = first + i;
                let data = picture_bytes(seed, id, 1);
                let mut record = file_fields(id, 1, &data);
                record.insert("pictureId".into(), Value::from(id));
                record.insert("pictureClientId".into(), Value::from(0));
                record.insert("pictureCode".into(), Value::from(id));
                record.insert("title".into(), Value::from(format!("تصوير {id}")));
                record.insert("displayOrder".into(), Value::from(1));
                record.insert("width".into(), Value::from(64));
                record.insert("height".into(), Value::from(64));
                record.insert("deleted".into(), Value::from(false));
                *counter += 1;
                crate::admin::stamp(&mut record, *counter, 0);
                record.insert("rowVersion".into(), Value::from(*counter));
                store::insert_raw(
                    tx,
                    "pictures",
                    id,
                    *counter,
                    &Value::Object(record).to_string(),
                )?;
                store_file(tx, &file_name(id, 1), id, &data)?;
                if let Some(product) = products.get(i as usize % products.len().max(1)) {
                    let link = first_link + i;
                    *counter += 1;
                    let mut g = Map::new();
                    g.insert("photoGalleryId".into(), Value::from(link));
                    g.insert("pictureId".into(), Value::from(id));
                    g.insert("entityType".into(), Value::from(102));
                    g.insert("itemType".into(), Value::from(102));
                    g.insert("itemCode".into(), Value::from(*product));
                    g.insert("deleted".into(), Value::from(false));
                    crate::admin::stamp(&mut g, *counter, 0);
                    g.insert("rowVersion".into(), Value::from(*counter));
                    store::insert_raw(
                        tx,
                        "photoGalleries",
                        link,
                        *counter,
                        &Value::Object(g).to_string(),
                    )?;
                }
                ids.push(id);
            }
            Ok(ids)
        })
    }

    /// Changes picture `id`'s file, as an edit in the desktop would: new
    /// bytes under a new file name, a new hash, a new row version. Returns
    /// the stored record.
    pub fn change_picture(&self, id: i64) -> Result<Value, ServerError> {
        let record = self.get("pictures", id).ok_or(ServerError::NotFound {
            collection: "pictures".into(),
            id,
        })?;
        let version = record
            .get("fileName")
            .and_then(Value::as_str)
            .and_then(|n| n.rsplit_once("-v"))
            .and_then(|(_, v)| v.trim_end_matches(".jpg").parse::<i64>().ok())
            .unwrap_or(1)
            + 1;
        let data = picture_bytes(self.server().config().seed, id, version);
        {
            let db = self.server().db();
            store_file(&db, &file_name(id, version), id, &data)?;
        }
        self.update_fields("pictures", id, file_fields(id, version, &data))
    }

    /// The file served under `name`, if any.
    pub fn picture_file(&self, name: &str) -> Option<Vec<u8>> {
        find(&self.server().db(), name)
            .ok()
            .flatten()
            .map(|(_, d)| d)
    }
}

/// The picture id and bytes of the file `name`: a seeded one, else an
/// uploaded one.
fn find(db: &Connection, name: &str) -> Result<Option<(i64, Vec<u8>)>, ServerError> {
    let seeded = db
        .query_row(
            "SELECT picture_id, data FROM picture_files WHERE file_name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if seeded.is_some() {
        return Ok(seeded);
    }
    Ok(db
        .query_row(
            "SELECT record_id, data FROM uploads
             WHERE entity = 'pictures' AND file_name = ?1 ORDER BY id DESC LIMIT 1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::new(
        status,
        vec![("Content-Type".to_string(), content_type.to_string())],
        body,
    )
}

/// Serves the file `name`: no token, with the habits.
pub(crate) fn serve(
    server: &RefServer,
    req: &HttpRequest,
    name: &str,
    entry: &mut RequestLog,
) -> Outcome {
    entry.endpoint = format!("Content/Images/all/{name}");
    let answer = |entry: &mut RequestLog, status: u16, outcome: &str| {
        entry.status = Some(status);
        entry.outcome = outcome.to_string();
    };
    if !req.method.eq_ignore_ascii_case("GET") {
        answer(entry, 405, "not a GET");
        return Outcome::Respond(response(405, "text/plain", b"use GET".to_vec()));
    }
    let found = match find(&server.db(), name) {
        Ok(f) => f,
        Err(e) => {
            answer(entry, 500, "internal error");
            return Outcome::Respond(response(500, "text/plain", e.to_string().into_bytes()));
        }
    };
    let config = server.config();
    let Some((id, data)) = found.filter(|(id, _)| !config.missing_pictures.contains(id)) else {
        answer(entry, 404, "no such file");
        return Outcome::Respond(response(404, "text/plain", b"not found".to_vec()));
    };
    entry.counts = vec![("pictures".to_string(), 1)];
    if config.slow_pictures.contains(&id) {
        std::thread::sleep(config.slow_picture_delay);
    }
    let content_type = if name.to_ascii_lowercase().ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let r = response(200, content_type, data);
    if config.cut_pictures.contains(&id) {
        answer(entry, 200, "ok, response cut");
        return Outcome::CutResponse(r);
    }
    answer(entry, 200, "ok");
    Outcome::Respond(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_under_the_images_path() {
        assert_eq!(
            file_of("/api/v3/Content/Images/all/p1-v1.jpg").as_deref(),
            Some("p1-v1.jpg")
        );
        assert_eq!(
            file_of("/API/V3/content/images/ALL/a%20b.jpg").as_deref(),
            Some("a b.jpg")
        );
        assert_eq!(file_of("/api/v3/Content/Images/all/"), None);
        assert_eq!(file_of("/API/v3/Sync/GetAllData"), None);
        let a = picture_bytes(1, 2, 1);
        assert_eq!(a, picture_bytes(1, 2, 1));
        assert_ne!(a, picture_bytes(1, 2, 2));
        assert_eq!(picture_hash(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }
}
