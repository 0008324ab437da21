//! Names, dates and the password as the real server writes them: keys in
//! camelCase (its answers are PascalCase; the app sees the Swagger's
//! camelCase), dates as offset-free Tehran time, the password as its MD5.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// Tehran's offset from UTC (no daylight saving since 2022): the real
/// server writes its times offset-free in local time.
pub(super) const TEHRAN_OFFSET_SECS: i64 = 3 * 3600 + 30 * 60;

/// Gives every object key of a JSON text (valid JSON, as serde checked it)
/// a lowercase first letter, in place: `ProductId` becomes `productId`, the
/// Swagger's naming. Only ASCII letters change, to ASCII letters.
fn camel_bytes(bytes: &mut [u8]) {
    // One entry per open container: true for an object.
    let mut stack: Vec<bool> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                if expect_key && bytes.get(start).is_some_and(u8::is_ascii_uppercase) {
                    bytes[start] = bytes[start].to_ascii_lowercase();
                }
                i = start;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                expect_key = false;
            }
            b'{' => {
                stack.push(true);
                expect_key = true;
            }
            b'[' => {
                stack.push(false);
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => expect_key = stack.last() == Some(&true),
            _ => {}
        }
        i += 1;
    }
}

/// A whole pull answer in camelCase (see [`camel_bytes`]), reusing its
/// buffer.
pub(super) fn camel_page(text: String) -> String {
    let mut bytes = text.into_bytes();
    camel_bytes(&mut bytes);
    // Only ASCII letters changed: still UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
pub(super) fn camel_keys(json: &str) -> String {
    camel_page(json.to_string())
}

/// The same naming for a record the app gives as a value: top-level keys
/// and nested ones. Where both `Name` and `name` are given, the camelCase
/// one wins.
pub fn camel_object(obj: Map<String, Value>) -> Map<String, Value> {
    // Most apps write camelCase already: such a record is kept as it is,
    // not rebuilt key by key (a write's cost).
    if !has_pascal_key(&obj) {
        return obj;
    }
    let mut out = Map::with_capacity(obj.len());
    let mut pascal = Vec::new();
    for (k, v) in obj {
        let v = camel_value(v);
        match lower_first(&k) {
            Some(lower) => pascal.push((lower, v)),
            None => {
                out.insert(k, v);
            }
        }
    }
    for (k, v) in pascal {
        out.entry(k).or_insert(v);
    }
    out
}

/// Whether a key of `obj`, or of an object inside it, starts with a
/// capital letter (which `camel_object` would rename).
fn has_pascal_key(obj: &Map<String, Value>) -> bool {
    obj.iter()
        .any(|(k, v)| k.starts_with(|c: char| c.is_ascii_uppercase()) || holds_pascal_key(v))
}

fn holds_pascal_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => has_pascal_key(m),
        Value::Array(a) => a.iter().any(holds_pascal_key),
        _ => false,
    }
}

pub(super) fn camel_value(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(camel_object(m)),
        Value::Array(a) => Value::Array(a.into_iter().map(camel_value).collect()),
        other => other,
    }
}

fn lower_first(key: &str) -> Option<String> {
    let first = key.chars().next().filter(char::is_ascii_uppercase)?;
    Some(format!("{}{}", first.to_ascii_lowercase(), &key[1..]))
}

/// The server's `ServerTime`: offset-free Tehran time as the real server
/// writes it (`2025-10-04T15:18:38.2345036`), or RFC 3339 with an offset.
pub fn parse_server_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())?;
    local
        .and_utc()
        .checked_sub_signed(chrono::Duration::seconds(TEHRAN_OFFSET_SECS))
}

/// Writes the dates of a record the app wrote as the real server writes
/// them: offset-free Tehran time (`2025-10-04T15:18:38.2345036`). Whether
/// the server accepts `Z` or `+03:30` is not known (WIRE.md section 8), so
/// a date with an offset is sent as one it certainly reads, the same
/// instant. Only fields named like dates (`date`, `...Date`, `...Time`)
/// whose text is an RFC 3339 time with an offset change; an offset-free
/// date, a day without a time, and any other text stay as they are.
pub fn local_dates(obj: &mut Map<String, Value>) {
    let tehran = chrono::FixedOffset::east_opt(TEHRAN_OFFSET_SECS as i32);
    for (key, value) in obj.iter_mut() {
        if !(key.eq_ignore_ascii_case("date") || key.ends_with("Date") || key.ends_with("Time")) {
            continue;
        }
        let Value::String(text) = value else { continue };
        let (Ok(t), Some(tehran)) = (DateTime::parse_from_rfc3339(text.trim()), tehran) else {
            continue;
        };
        let local = t.with_timezone(&tehran).naive_local();
        let seconds = local.format("%Y-%m-%dT%H:%M:%S");
        // Ticks of 100 ns, as the server writes them (a leap second's
        // nanoseconds run past 10^9).
        let ticks = (local.and_utc().timestamp_subsec_nanos() / 100).min(9_999_999);
        *text = if ticks == 0 {
            seconds.to_string()
        } else {
            format!("{seconds}.{ticks:07}")
        };
    }
}

/// The lowercase hexadecimal MD5 of a password, as the real server wants
/// it. Computed in memory for one login body; never stored.
pub fn password_hash(password: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(password.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}
