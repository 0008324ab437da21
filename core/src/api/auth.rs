//! Login: the credentials, the body each dialect sends (the mahak one with
//! the password's MD5, made here and dropped with the body), reading the
//! answer (a token, when it expires on the server's clock, the mahak
//! session), the check that a login names the replica's database and
//! visitor, and the token and refusal the client keeps in memory. No
//! password or token reaches a log record, an error, or `Debug` output.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::api::client::ClientConfig;
use crate::api::dialect::{self, Dialect};
use crate::api::envelope::{
    failure, get_ci, lenient_int, parse_envelope, parse_lenient, server_message, strip_bom,
    tracking,
};
use crate::error::{Error, Result};
use crate::transport::HttpResponse;

/// The documented dialect's login endpoint.
pub const LOGIN_ENDPOINT: &str = "LoginV2";

/// A token whose expiry cannot be read is renewed after this long.
pub(crate) const MAX_TOKEN_AGE: Duration = Duration::from_secs(12 * 3600);

/// What the server says of this client at login (mahak dialect): who it is
/// on the Mahak side. Apps need `visitor_id` to write orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// The visitor (shop, salesman, app) this client acts as.
    pub visitor_id: i64,
    /// The server's sync id of this login.
    pub sync_id: i64,
    /// The Mahak database.
    pub database_id: i64,
    /// The user's display name.
    pub user_title: String,
    /// The server's clock at login, as it wrote it.
    pub server_time: String,
}

/// Credentials for `LoginV2`. `Debug` shows the password as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Password (kept in memory only; never logged, never stored).
    pub password: String,
    /// Mahak database id.
    pub database_id: i64,
    /// Mahak package number.
    pub package_number: i64,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("database_id", &self.database_id)
            .field("package_number", &self.package_number)
            .finish()
    }
}

/// A bearer token. `Debug` never shows its value.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: String,
    /// When to log in again instead of using this token (local clock).
    pub(crate) refresh_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

impl Token {
    pub(crate) fn usable(&self, now: DateTime<Utc>) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }
}

/// A login refusal (1001, 1002): calls fail with it, without sending, until
/// [`ApiClient::set_credentials`].
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) tracking_id: Option<String>,
}

impl Refusal {
    pub(crate) fn to_error(&self) -> Error {
        Error::AuthFailed {
            code: self.code,
            message: self.message.clone(),
            tracking_id: self.tracking_id.clone(),
        }
    }
}

/// The login body of the configured dialect. The mahak dialect sends the
/// password as its MD5 hash (or as it is, when the server wants it plain),
/// computed here and dropped with the body.
pub(crate) fn login_body(config: &ClientConfig, credentials: &Credentials) -> Result<Vec<u8>> {
    match config.dialect {
        Dialect::Documented => Ok(serde_json::to_vec(&LoginRequest {
            username: &credentials.username,
            password: &credentials.password,
            database_id: credentials.database_id,
            package_number: credentials.package_number,
        })?),
        Dialect::Mahak => Ok(serde_json::to_vec(&serde_json::json!({
            "userName": credentials.username,
            "password": dialect::mahak::login_password(&credentials.password, config.password_hash),
            "databaseId": credentials.database_id,
            "packageNo": credentials.package_number.to_string(),
            "language": "fa",
            "appId": config.app_id,
            "clientVersion": env!("CARGO_PKG_VERSION"),
        }))?),
    }
}

/// A login that names another database or visitor than the replica's.
pub(crate) fn check_identity(
    expected: Option<(i64, i64)>,
    session: Option<&Session>,
) -> Result<()> {
    let (Some((database_id, visitor_id)), Some(s)) = (expected, session) else {
        return Ok(());
    };
    let mismatch = |what: &str, replica: i64, server: i64| Error::ReplicaMismatch {
        what: what.to_string(),
        replica,
        server,
    };
    if s.database_id != 0 && database_id != 0 && s.database_id != database_id {
        return Err(mismatch("databaseId", database_id, s.database_id));
    }
    if s.visitor_id != 0 && visitor_id != 0 && s.visitor_id != visitor_id {
        return Err(mismatch("visitorId", visitor_id, s.visitor_id));
    }
    Ok(())
}

#[derive(serde::Serialize)]
pub(crate) struct LoginRequest<'a> {
    username: &'a str,
    password: &'a str,
    #[serde(rename = "databaseId")]
    database_id: i64,
    #[serde(rename = "packageNumber")]
    package_number: i64,
}

/// `{token, expireDate}` (documented), or `{UserToken, VisitorId, ...}`
/// (mahak), from the envelope's `data` or the bare body. Keys are read in
/// any case ([`parse_login_data`]).
pub(crate) struct LoginData {
    token: String,
    visitor_id: Option<i64>,
    sync_id: Option<i64>,
    database_id: Option<i64>,
    user_title: Option<String>,
    server_time: Option<String>,
    expire_date: Option<String>,
}

/// Interprets a `LoginV2` response. Error messages here never quote the body
/// (it may hold a token).
pub(crate) fn interpret_login(
    response: &HttpResponse,
    config: &ClientConfig,
    now: DateTime<Utc>,
) -> Result<(Token, Option<Session>)> {
    let margin = config.token_refresh_margin;
    let mahak = config.dialect == Dialect::Mahak;
    let endpoint = config.login_endpoint.as_str();
    let status = response.status;
    let tracking_id = tracking(response);
    let no_token = |tracking_id| Error::Protocol {
        collection: None,
        message: format!("{endpoint} answer (HTTP {status}) holds no token"),
        tracking_id,
    };
    match status {
        200..=299 => {
            let body = strip_bom(&response.body);
            let login = match parse_envelope(body) {
                // The real server refuses a login with `Result: false` on
                // HTTP 200, a message and rarely a code.
                Ok(envelope) if !envelope.success && mahak => {
                    // `Data.ErrorMessage` / `Data.ErrorCode` stand in for a
                    // missing `Message` / `Code` (keys in any case).
                    let data = envelope
                        .data
                        .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok());
                    let field = |name: &str| {
                        data.as_ref()
                            .and_then(serde_json::Value::as_object)
                            .and_then(|o| get_ci(o, name))
                    };
                    let detail = field("ErrorMessage")
                        .and_then(serde_json::Value::as_str)
                        .map(|m| m.trim().to_string())
                        .unwrap_or_default();
                    let data_code = field("ErrorCode").and_then(lenient_int);
                    let message = match (envelope.message.is_empty(), detail.is_empty()) {
                        (false, _) => envelope.message.into_owned(),
                        (true, false) => detail,
                        (true, true) => "login refused".to_string(),
                    };
                    return Err(Error::AuthFailed {
                        code: envelope.code.or(data_code).unwrap_or(0),
                        message,
                        tracking_id,
                    });
                }
                Ok(envelope) if !envelope.success => {
                    return Err(failure(status, &envelope, tracking_id));
                }
                Ok(envelope) => envelope
                    .data
                    .and_then(|data| parse_login_data(data.get().as_bytes())),
                // No envelope: the bare `{token, expireDate}` (or a bare string).
                Err(_) => parse_login_data(body),
            };
            let Some(login) = login else {
                return Err(no_token(tracking_id));
            };
            if login.token.is_empty() || !login.token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(no_token(tracking_id));
            }
            // The server's clock: its `ServerTime` (mahak), else its `Date`
            // header, so a skewed device clock does not matter.
            let server_now = login
                .server_time
                .as_deref()
                .and_then(dialect::mahak::parse_server_time)
                .or_else(|| {
                    response
                        .header("date")
                        .and_then(|d| httpdate::parse_http_date(d).ok())
                        .map(DateTime::<Utc>::from)
                });
            // The real server gives no expiry field: the JWT's `exp` says it.
            let expires = login
                .expire_date
                .as_deref()
                .and_then(parse_expire_date)
                .or_else(|| dialect::mahak::jwt_expiry(&login.token));
            let refresh_at = match expires {
                Some(expires) => refresh_time(expires, server_now, now, margin),
                None if mahak => chrono::Duration::from_std(MAX_TOKEN_AGE)
                    .ok()
                    .and_then(|age| now.checked_add_signed(age)),
                None => None,
            };
            let session = (mahak && (login.visitor_id.is_some() || login.database_id.is_some()))
                .then(|| Session {
                    visitor_id: login.visitor_id.unwrap_or(0),
                    sync_id: login.sync_id.unwrap_or(0),
                    database_id: login.database_id.unwrap_or(0),
                    user_title: login.user_title.clone().unwrap_or_default(),
                    server_time: login.server_time.clone().unwrap_or_default(),
                });
            Ok((
                Token {
                    value: login.token,
                    refresh_at,
                },
                session,
            ))
        }
        401 | 403 => {
            let (code, message) = match parse_lenient(&response.body) {
                Some(e) => (e.code.unwrap_or(0), e.message.into_owned()),
                None => (0, String::new()),
            };
            Err(Error::AuthFailed {
                code,
                message: if message.is_empty() {
                    format!("login refused (HTTP {status})")
                } else {
                    message
                },
                tracking_id,
            })
        }
        400..=499 => match parse_lenient(&response.body) {
            Some(envelope) => Err(failure(status, &envelope, tracking_id)),
            None => Err(Error::Rejected {
                status,
                code: 0,
                message: format!("{endpoint} refused the request (HTTP {status})"),
                errors: Vec::new(),
                tracking_id,
            }),
        },
        500..=599 => Err(Error::Server {
            status,
            message: server_message(response),
            tracking_id,
        }),
        _ => Err(Error::Protocol {
            collection: None,
            message: format!("unexpected HTTP {status} from {endpoint}"),
            tracking_id,
        }),
    }
}

pub(crate) fn parse_login_data(body: &[u8]) -> Option<LoginData> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = match value {
        // The legacy form: the token as a bare JSON string.
        serde_json::Value::String(token) => {
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
        serde_json::Value::Object(obj) => obj,
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

/// When to renew a token that expires at `expires` (server clock). The
/// lifetime is measured against the server's `Date` when it sent one, so a
/// device clock that is off does not matter; the margin is at most half the
/// lifetime. A token already expired is renewed on the next call.
pub(crate) fn refresh_time(
    expires: DateTime<Utc>,
    server_now: Option<DateTime<Utc>>,
    local_now: DateTime<Utc>,
    margin: Duration,
) -> Option<DateTime<Utc>> {
    let lifetime = expires.signed_duration_since(server_now.unwrap_or(local_now));
    if lifetime <= chrono::Duration::zero() {
        return Some(local_now);
    }
    let margin = chrono::Duration::from_std(margin)
        .unwrap_or(chrono::Duration::MAX)
        .min(lifetime / 2);
    local_now.checked_add_signed(lifetime - margin)
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
