//! The API client's configuration: where the server is, how calls are
//! retried, when the token is renewed, how to log in, and the credentials.
//! Imports nothing above it.

use std::fmt;
use std::time::Duration;

use crate::api::retry::RetryPolicy;
use crate::catalogue::Dialect;

/// The documented dialect's login endpoint.
pub const LOGIN_ENDPOINT: &str = "LoginV2";

/// Client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://host/API/v3` (see [`crate::url::validate_base_url`]).
    pub base_url: String,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Renew the token this long before it expires (at most half of the
    /// token's lifetime is used as margin, so short-lived tokens still work).
    pub token_refresh_margin: Duration,
    /// The dialect of the login request and answer.
    pub dialect: Dialect,
    /// The login endpoint (`Login` in mahak, `LoginV2` documented).
    pub login_endpoint: String,
    /// `appId` sent at login (mahak).
    pub app_id: String,
    /// How the login sends the password (mahak): MD5 or plain.
    pub password_hash: PasswordHash,
    /// A login whose `ServerTime` is further than this from the device's
    /// clock, in seconds, tells the connection watch
    /// `ConnectionState::ClockSkewed` (0: never).
    pub clock_skew_warning_seconds: u64,
}

/// How a mahak login sends the password: per server (WIRE.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordHash {
    /// The lowercase hexadecimal MD5 (most servers; the default).
    #[default]
    Md5,
    /// The password as the user typed it (some servers).
    Plain,
}

impl std::str::FromStr for PasswordHash {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md5" => Ok(PasswordHash::Md5),
            "plain" => Ok(PasswordHash::Plain),
            other => Err(format!("unknown password hashing `{other}`: md5 or plain")),
        }
    }
}

impl ClientConfig {
    /// A configuration for `base_url` in the documented dialect, with the
    /// default retry policy and a 60-second token refresh margin.
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            retry: RetryPolicy::default(),
            token_refresh_margin: Duration::from_secs(60),
            dialect: Dialect::Documented,
            login_endpoint: LOGIN_ENDPOINT.to_string(),
            app_id: "rowsync".to_string(),
            password_hash: PasswordHash::Md5,
            clock_skew_warning_seconds: crate::status::DEFAULT_CLOCK_SKEW_WARNING_SECONDS,
        }
    }
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
