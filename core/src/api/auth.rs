//! Login, as the client runs it: the answer's HTTP status read the same in
//! every dialect, its body read by the codec (the token, when it expires on
//! the server's clock, the session), when to renew the token, the check
//! that a login names the replica's database and visitor, and the token
//! and refusal the client keeps in memory. No password or token reaches a
//! log record, an error, or `Debug` output.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::config::ClientConfig;
use crate::api::dialect::{Codec, Session};
use crate::api::envelope::{failure, parse_lenient, server_message, tracking};
use crate::error::{Error, Result};
use crate::transport::HttpResponse;

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

/// A login answer, interpreted.
pub(crate) struct LoggedIn {
    pub(crate) token: Token,
    pub(crate) session: Option<Session>,
    /// The server's clock as the answer says it (`ServerTime`; not the
    /// `Date` header, whole seconds only), if it does and it reads.
    pub(crate) server_time: Option<DateTime<Utc>>,
}

/// Interprets a `LoginV2` response. Error messages here never quote the body
/// (it may hold a token).
pub(crate) fn interpret_login(
    codec: &dyn Codec,
    response: &HttpResponse,
    config: &ClientConfig,
    now: DateTime<Utc>,
) -> Result<LoggedIn> {
    let margin = config.token_refresh_margin;
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
            let Some(login) = codec.read_login(status, &response.body, tracking_id.clone())? else {
                return Err(no_token(tracking_id));
            };
            if login.token.is_empty() || !login.token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(no_token(tracking_id));
            }
            // The server's clock, else its `Date` header, so a skewed device
            // clock does not matter.
            let server_now = login.server_time.or_else(|| {
                response
                    .header("date")
                    .and_then(|d| httpdate::parse_http_date(d).ok())
                    .map(DateTime::<Utc>::from)
            });
            let refresh_at = match login.expires {
                Some(expires) => refresh_time(expires, server_now, now, margin),
                None => login
                    .max_age
                    .and_then(|age| chrono::Duration::from_std(age).ok())
                    .and_then(|age| now.checked_add_signed(age)),
            };
            Ok(LoggedIn {
                token: Token {
                    value: login.token,
                    refresh_at,
                },
                session: login.session,
                server_time: login.server_time,
            })
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
