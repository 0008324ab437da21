//! Push hints (issue 13, part 4): an app that gets a push message ("orders
//! changed") hands it to the engine, which marks the named collections due,
//! so the next `sync()` pulls them whatever their schedule. Polling stays
//! the fallback: a missed hint loses nothing, it only waits for the
//! schedule.
//!
//! A hint is a JSON payload `{"id": "...", "collections": ["orders", ...],
//! "sentAt": "2026-11-24T10:00:00Z"}` signed with HMAC-SHA256 under a
//! secret the app configures (in memory only, like the password); the
//! signature is the lowercase or uppercase hex of the MAC. It is checked in
//! constant time. A hint id already seen within the window is a duplicate
//! and changes nothing; hints may arrive in any order.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Result};

/// How many hint ids are remembered (the duplicate window), at most.
pub const SEEN_MAX: usize = 1_000;

/// How long a hint id is remembered.
pub const SEEN_HOURS: i64 = 24;

/// What applying a hint did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum HintOutcome {
    /// The named collections are due now (unknown names are listed apart).
    Applied {
        /// Collections marked due.
        due: Vec<String>,
        /// Names the catalogue does not know (ignored).
        unknown: Vec<String>,
    },
    /// This hint id was seen already: nothing changed.
    Duplicate,
}

/// A hint's payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Hint {
    pub id: String,
    #[serde(default)]
    pub collections: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub sent_at: Option<String>,
}

/// The hint ids seen recently, oldest first (kept in the replica).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Seen(pub Vec<(String, DateTime<Utc>)>);

impl Seen {
    /// Records `id` at `now`; false when it was seen within the window.
    pub fn admit(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        let horizon = now - chrono::Duration::hours(SEEN_HOURS);
        self.0.retain(|(_, at)| *at >= horizon);
        if self.0.iter().any(|(seen, _)| seen == id) {
            return false;
        }
        self.0.push((id.to_string(), now));
        let excess = self.0.len().saturating_sub(SEEN_MAX);
        self.0.drain(..excess);
        true
    }
}

fn refused(why: &str) -> Error {
    Error::HintRefused(why.to_string())
}

/// Checks `signature` (hex) over `payload` under `secret`, in constant time,
/// and reads the payload.
pub(crate) fn verify(secret: &[u8], payload: &[u8], signature: &str) -> Result<Hint> {
    let sig = decode_hex(signature.trim()).ok_or_else(|| refused("the signature is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| refused("the hint secret is not usable"))?;
    mac.update(payload);
    mac.verify_slice(&sig)
        .map_err(|_| refused("the signature does not match"))?;
    let hint: Hint = serde_json::from_slice(payload)
        .map_err(|e| refused(&format!("the payload is not a hint: {e}")))?;
    if hint.id.is_empty() || hint.id.len() > 200 {
        return Err(refused("the hint id must be 1 to 200 characters"));
    }
    Ok(hint)
}

/// The HMAC-SHA256 of `payload` under `secret`, as lowercase hex (for
/// servers, tests and tools that sign hints).
pub fn sign(secret: &[u8], payload: &[u8]) -> Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| refused("the hint secret is not usable"))?;
    mac.update(payload);
    Ok(mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 256 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_hint_verifies_and_a_forged_one_does_not() {
        let payload = br#"{"id":"h1","collections":["orders"],"sentAt":"2026-11-24T10:00:00Z"}"#;
        let sig = sign(b"secret", payload).unwrap();
        let hint = verify(b"secret", payload, &sig).unwrap();
        assert_eq!(hint.collections, ["orders"]);
        assert!(verify(b"secret", payload, &sig.to_uppercase()).is_ok());
        assert!(matches!(
            verify(b"other", payload, &sig),
            Err(Error::HintRefused(_))
        ));
        let tampered = br#"{"id":"h1","collections":["people"],"sentAt":"2026-11-24T10:00:00Z"}"#;
        assert!(matches!(
            verify(b"secret", tampered, &sig),
            Err(Error::HintRefused(_))
        ));
        assert!(matches!(
            verify(b"secret", payload, "zz"),
            Err(Error::HintRefused(_))
        ));
        assert!(matches!(
            verify(b"secret", payload, &sig[..10]),
            Err(Error::HintRefused(_))
        ));
    }

    #[test]
    fn ids_are_remembered_for_a_bounded_window() {
        let mut seen = Seen::default();
        let t = Utc::now();
        assert!(seen.admit("a", t));
        assert!(!seen.admit("a", t + chrono::Duration::hours(1)));
        assert!(
            seen.admit("a", t + chrono::Duration::hours(25)),
            "forgotten after the window"
        );
        for i in 0..(SEEN_MAX + 10) {
            seen.admit(&format!("x{i}"), t + chrono::Duration::hours(26));
        }
        assert_eq!(seen.0.len(), SEEN_MAX, "bounded");
    }
}
