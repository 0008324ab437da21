//! Where a `pictures` record's file is, in the real server's words
//! (WIRE.md section 7): a public file under the server's origin, named by
//! `url` (maybe relative), or else by `fileName` under
//! `/api/v3/Content/Images/all/`; an uploaded one may carry the upload
//! answer's `fileUrl`; its hash is `pictureHash` or `fileHash`; the file
//! may also come inline as base64 `binaryData` *(one source)*. Keys are
//! read without regard to case.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::api::dialect::codec::PictureSource;

/// Where the real server keeps its pictures, under its origin.
const IMAGES: &str = "/api/v3/Content/Images/all/";

fn text<'a>(record: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    record
        .get(key)
        .or_else(|| {
            record
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Base64 (standard or URL-safe, padded or not, maybe behind a `data:`
/// prefix, with line breaks) decoded; `None` when it is not base64.
fn decode(data: &str) -> Option<Vec<u8>> {
    let data = match data.split_once(";base64,") {
        Some((_, rest)) => rest,
        None => data,
    };
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed = clean.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .ok()
        .filter(|b| !b.is_empty())
}

/// The file of a `pictures` record.
pub(super) fn picture(record: &Map<String, Value>) -> Option<PictureSource> {
    let inline = text(record, "binaryData").and_then(decode);
    let file_name = text(record, "fileName");
    let url = text(record, "url")
        .or_else(|| text(record, "fileUrl"))
        .map(str::to_string)
        .or_else(|| file_name.map(|f| format!("{IMAGES}{}", f.trim_start_matches('/'))));
    let hash = text(record, "pictureHash")
        .or_else(|| text(record, "fileHash"))
        .map(str::to_string);
    if url.is_none() && inline.is_none() {
        return None;
    }
    Some(PictureSource {
        file_name: file_name
            .map(str::to_string)
            .or_else(|| url.clone())
            .unwrap_or_default(),
        url,
        hash,
        inline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: Value) -> Option<PictureSource> {
        picture(v.as_object().unwrap())
    }

    #[test]
    fn a_picture_is_found_by_url_file_name_or_inline_data() {
        let p = of(
            json!({"pictureId": 1, "fileName": "a b.jpg", "url": "/x/a.jpg",
                          "PictureHash": "AB"}),
        )
        .unwrap();
        assert_eq!(p.url.as_deref(), Some("/x/a.jpg"));
        assert_eq!(
            (p.file_name.as_str(), p.hash.as_deref()),
            ("a b.jpg", Some("AB"))
        );
        let p = of(json!({"fileName": "12.jpg", "fileHash": "h"})).unwrap();
        assert_eq!(p.url.as_deref(), Some("/api/v3/Content/Images/all/12.jpg"));
        let p = of(json!({"fileUrl": "https://h/f.png"})).unwrap();
        assert_eq!(p.file_name, "https://h/f.png");
        let p = of(json!({"binaryData": "data:image/png;base64,aGVs\nbG8="})).unwrap();
        assert_eq!(p.inline.as_deref(), Some(&b"hello"[..]));
        assert_eq!(p.url, None);
        assert!(of(json!({"pictureId": 3, "title": "no file"})).is_none());
        assert!(of(json!({"binaryData": "%%%"})).is_none());
    }
}
