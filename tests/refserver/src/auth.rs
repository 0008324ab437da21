//! Authentication and admission: checking login bodies, issuing and checking
//! HS256 JWTs, and the per-token rate limiter. Token lifetimes are tracked to
//! the millisecond (claim `expMs`) so tests can use sub-second lifetimes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    #[serde(rename = "expMs")]
    exp_ms: u64,
    jti: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A freshly issued token.
pub(crate) struct Issued {
    pub token: String,
    pub expire_date: String,
}

/// Signs a token for `user` living `ttl`.
pub(crate) fn issue(secret: &str, user: &str, ttl: Duration, jti: u64) -> Result<Issued, String> {
    let now = now_ms();
    let exp_ms = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let claims = Claims {
        sub: user.to_string(),
        iat: now / 1000,
        nbf: now / 1000,
        exp: exp_ms.div_ceil(1000),
        exp_ms,
        jti,
    };
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())?;
    let secs = i64::try_from(exp_ms / 1000).unwrap_or(i64::MAX);
    let nanos = u32::try_from((exp_ms % 1000) * 1_000_000).unwrap_or(0);
    let expire_date = chrono::DateTime::from_timestamp(secs, nanos)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    Ok(Issued { token, expire_date })
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Missing,
    Invalid,
    Expired,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::Missing => "missing bearer token",
            Refused::Invalid => "invalid token",
            Refused::Expired => "token expired",
        }
    }
}

/// Checks an `Authorization` header value; returns the token on success.
pub(crate) fn check<'a>(secret: &str, header: Option<&'a str>) -> Result<&'a str, Refused> {
    let value = header.ok_or(Refused::Missing)?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => return Err(Refused::Missing),
    };
    if token.is_empty() {
        return Err(Refused::Missing);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let data = decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|_| Refused::Invalid)?;
    if data.claims.exp_ms <= now_ms() {
        return Err(Refused::Expired);
    }
    Ok(token)
}

/// The user a token (already checked) was issued to.
pub(crate) fn user_of(secret: &str, token: &str) -> Option<String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .ok()
    .map(|d| d.claims.sub)
}

/// A per-token token-bucket rate limiter.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes one request from `token`'s bucket; `Err(wait)` when empty.
    pub fn admit(&self, token: &str, per_sec: u32) -> Result<(), Duration> {
        let rate = f64::from(per_sec.max(1));
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(60));
        }
        let (tokens, last) = map.entry(token.to_string()).or_insert((rate, now));
        let elapsed = now.duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_check_and_expire() {
        let t = issue("s", "user1", Duration::from_millis(150), 1).unwrap();
        assert!(t.expire_date.ends_with('Z'));
        assert_eq!(
            check("s", Some(&format!("Bearer {}", t.token))),
            Ok(t.token.as_str())
        );
        assert_eq!(
            check("other", Some(&format!("Bearer {}", t.token))),
            Err(Refused::Invalid)
        );
        assert_eq!(check("s", None), Err(Refused::Missing));
        assert_eq!(check("s", Some("Basic abc")), Err(Refused::Missing));
        assert_eq!(check("s", Some("Bearer garbage")), Err(Refused::Invalid));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            check("s", Some(&format!("Bearer {}", t.token))),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn limiter_refuses_beyond_rate() {
        let l = RateLimiter::default();
        for _ in 0..3 {
            assert!(l.admit("a", 3).is_ok());
        }
        assert!(l.admit("a", 3).is_err());
        assert!(l.admit("b", 3).is_ok());
    }
}
