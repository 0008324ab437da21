//! What both dialects' login answers share: the token and the session's
//! keys, read in any case from the envelope's `data` or the bare body; an
//! expiry date with or without an offset; the `exp` of a JWT. Each codec
//! builds its [`super::LoginAnswer`] from these.

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use crate::api::envelope::{failure, get_ci, lenient_int, parse_envelope, strip_bom};
use crate::error::{Error, Result};

/// `{token, expireDate}` (documented), or `{UserToken, VisitorId, ...}`
/// (mahak), from the envelope's `data` or the bare body. Keys are read in
/// any case ([`parse_login_data`]).
pub(crate) struct LoginData {
    pub(crate) token: String,
    pub(crate) visitor_id: Option<i64>,
    pub(crate) sync_id: Option<i64>,
    pub(crate) database_id: Option<i64>,
    pub(crate) user_title: Option<String>,
    pub(crate) server_time: Option<String>,
    pub(crate) expire_date: Option<String>,
}

/// The login data of a 2xx answer: the envelope's `data`, or the bare body
/// when it is no envelope. `Ok(None)` when it holds no token. A refusal
/// (`success: false`) is the envelope's failure; with `refusal_in_data`
/// (the real server refuses a login with `Result: false` on HTTP 200, a
/// message and rarely a code) it is `AuthFailed`, `Data.ErrorMessage` and
/// `Data.ErrorCode` standing in for a missing `Message` and `Code`.
pub(crate) fn login_data(
    status: u16,
    body: &[u8],
    tracking_id: Option<String>,
    refusal_in_data: bool,
) -> Result<Option<LoginData>> {
    let body = strip_bom(body);
    match parse_envelope(body) {
        Ok(envelope) if !envelope.success && refusal_in_data => {
            // Keys in any case.
            let data = envelope
                .data
                .and_then(|d| serde_json::from_str::<Value>(d.get()).ok());
            let field = |name: &str| {
                data.as_ref()
                    .and_then(Value::as_object)
                    .and_then(|o| get_ci(o, name))
            };
            let detail = field("ErrorMessage")
                .and_then(Value::as_str)
                .map(|m| m.trim().to_string())
                .unwrap_or_default();
            let data_code = field("ErrorCode").and_then(lenient_int);
            let message = match (envelope.message.is_empty(), detail.is_empty()) {
                (false, _) => envelope.message.into_owned(),
                (true, false) => detail,
                (true, true) => "login refused".to_string(),
            };
            Err(Error::AuthFailed {
                code: envelope.code.or(data_code).unwrap_or(0),
                message,
                tracking_id,
            })
        }
        Ok(envelope) if !envelope.success => Err(failure(status, &envelope, tracking_id)),
        Ok(envelope) => Ok(envelope
            .data
            .and_then(|data| parse_login_data(data.get().as_bytes()))),
        // No envelope: the bare `{token, expireDate}` (or a bare string).
        Err(_) => Ok(parse_login_data(body)),
    }
}

pub(crate) fn parse_login_data(body: &[u8]) -> Option<LoginData> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let obj = match value {
        // The legacy form: the token as a bare JSON string.
        Value::String(token) => {
            return Some(LoginData {
                token,
                visitor_id: None,
                sync_id: None,
                database_id: None,
                user_title: None,
                server_time: None,
                expire_date: None,
            })
        }
        Value::Object(obj) => obj,
        _ => return None,
    };
    // The value of the first of `names` present, in any case.
    let field = |names: &[&str]| names.iter().find_map(|name| get_ci(&obj, name));
    let text = |names: &[&str]| field(names).and_then(|v| v.as_str()).map(str::to_string);
    let int = |names: &[&str]| field(names).and_then(lenient_int);
    Some(LoginData {
        token: text(&["token", "userToken", "access_token"])?,
        visitor_id: int(&["visitorId"]),
        sync_id: int(&["syncId"]),
        database_id: int(&["databaseId"]),
        user_title: text(&["userTitle"]),
        server_time: text(&["serverTime"]),
        expire_date: text(&["expireDate", "expiresAt"]),
    })
}

/// `expireDate` as RFC 3339, or without an offset (taken as UTC, as .NET
/// servers often write it).
pub(crate) fn parse_expire_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
}

/// The `exp` of a JWT's payload (base64url JSON), read without checking the
/// signature: the client only needs to know when to renew.
pub fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let secs = exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))?;
    DateTime::from_timestamp(secs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A login answer's keys are read in any case; ids may be numbers or
    /// numeric strings; the first non-null of a key given twice wins; a bare
    /// string is the token.
    #[test]
    fn login_data_keys_are_read_in_any_case() {
        let d = parse_login_data(
            br#"{"USERTOKEN":"t.o.k","visitorid":"31","SyncID":5,"DatabaseId":1001.0,
                 "usertitle":"Shop","SERVERTIME":"2026-12-05T10:00:00","token":null}"#,
        )
        .expect("parses");
        assert_eq!(d.token, "t.o.k");
        assert_eq!(d.visitor_id, Some(31));
        assert_eq!(d.sync_id, Some(5));
        assert_eq!(d.database_id, Some(1001));
        assert_eq!(d.user_title.as_deref(), Some("Shop"));
        assert_eq!(d.server_time.as_deref(), Some("2026-12-05T10:00:00"));
        let d = parse_login_data(br#"{"Token":"a","ExpireDate":"2026-12-06T00:00:00Z"}"#)
            .expect("parses");
        assert_eq!(d.token, "a");
        assert_eq!(d.expire_date.as_deref(), Some("2026-12-06T00:00:00Z"));
        assert_eq!(
            parse_login_data(br#""bare""#).map(|d| d.token),
            Some("bare".to_string())
        );
        for body in [
            &br#"{"UserToken":7}"#[..],
            br#"{"VisitorId":1}"#,
            b"[1]",
            b"<html>",
        ] {
            assert!(parse_login_data(body).is_none());
        }
    }
}
