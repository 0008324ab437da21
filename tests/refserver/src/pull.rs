//! `GetAllDataV2`: checks the request (`<collection>RowVersion` keys, optional
//! `pageSize`) and writes the answer's `data` object straight from the stored
//! JSON texts, without building a value tree, all read in one transaction so
//! the counter and the records agree.

use rusqlite::Connection;
use serde_json::Value;

use crate::error::ServerError;
use crate::store;
use rowsync::Catalogue;

/// A pull answered: the `data` JSON text and the records per collection.
pub(crate) struct Pulled {
    pub data: String,
    pub counts: Vec<(String, usize)>,
}

/// A refused pull request: code 3001 and why.
pub(crate) struct BadPull(pub String);

/// Answers a `GetAllDataV2` body.
pub(crate) fn pull(
    conn: &mut Connection,
    catalogue: &Catalogue,
    max_page_size: usize,
    body: &[u8],
) -> Result<Result<Pulled, BadPull>, ServerError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Ok(Err(BadPull(format!("malformed JSON: {e}")))),
    };
    let Value::Object(map) = value else {
        return Ok(Err(BadPull("the body must be a JSON object".to_string())));
    };
    let mut page_size = None;
    let mut wanted: Vec<(usize, &str, i64)> = Vec::new();
    for (key, v) in &map {
        if key == "pageSize" {
            if v.is_null() {
                continue;
            }
            match v.as_u64() {
                Some(n) if n >= 1 && n <= max_page_size as u64 => {
                    page_size = Some(usize::try_from(n).unwrap_or(max_page_size));
                }
                _ => {
                    return Ok(Err(BadPull(format!(
                        "pageSize must be an integer from 1 to {max_page_size}, got {v}"
                    ))))
                }
            }
        } else if let Some(name) = key.strip_suffix("RowVersion") {
            let Some(pos) = catalogue.position(name) else {
                return Ok(Err(BadPull(format!(
                    "unknown collection `{name}` in `{key}`"
                ))));
            };
            let after = match v {
                Value::Null => 0,
                _ => match v.as_i64() {
                    Some(n) if n >= 0 => n,
                    _ => {
                        return Ok(Err(BadPull(format!(
                            "`{key}` must be a non-negative integer, got {v}"
                        ))))
                    }
                },
            };
            wanted.push((pos, name, after));
        }
    }
    wanted.sort_by_key(|w| w.0);

    let tx = conn.transaction()?;
    let counter = store::counter(&tx)?;
    let mut out = String::with_capacity(256 + page_size.unwrap_or(100) * 300);
    let mut counts = Vec::with_capacity(wanted.len());
    out.push('{');
    for (i, (_, name, after)) in wanted.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(name)?);
        out.push_str(":{\"records\":[");
        let page = store::read_page(&tx, name, *after, page_size, &mut out)?;
        let rv = if page.has_more {
            page.max_row_version.unwrap_or(*after)
        } else {
            counter.max(page.max_row_version.unwrap_or(0)).max(*after)
        };
        out.push_str(&format!(
            "],\"rowVersion\":{rv},\"hasMore\":{}}}",
            page.has_more
        ));
        counts.push((name.to_string(), page.count));
    }
    out.push('}');
    tx.commit()?;
    Ok(Ok(Pulled { data: out, counts }))
}
