//! Fault injection: the ways a real server and network misbehave, played on
//! demand. Two sources feed it: a deterministic script (`inject`: the next N
//! matching requests get a fault) and a seeded probabilistic mix
//! ([`FaultConfig`]), so any failure can be replayed from its seed. This module
//! only decides which fault a request gets; the handler and the HTTP layer
//! carry it out.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The body of an injected error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultBody {
    /// No body at all.
    Empty,
    /// An HTML error page, as a proxy would send.
    Html,
    /// The beginning of a JSON envelope, cut off.
    TruncatedJson,
    /// A well-formed envelope with `success:false`.
    Envelope,
}

/// The form of a `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfter {
    /// Delta-seconds: `Retry-After: 3`.
    Seconds(u64),
    /// An HTTP-date this many seconds from now.
    HttpDate(u64),
}

/// One fault a request can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Answer this status (500, 503, ...) with this body, without handling.
    Status(u16, FaultBody),
    /// Answer 429 with this `Retry-After`, without handling.
    RateLimit {
        /// The `Retry-After` header.
        retry_after: RetryAfter,
    },
    /// Wait this long (milliseconds on the wire), then handle normally.
    Latency(#[serde(with = "millis")] Duration),
    /// Close the connection without answering (nothing handled).
    DropBeforeResponse,
    /// Handle normally, then send only half of the response and close.
    CutResponse,
    /// Handle normally (a save is committed), then close without answering.
    LoseResponseAfterApply,
    /// Handle normally, then send the headers and half of the response,
    /// and nothing more until the client gives up.
    StallResponse,
    /// Answer 401 / 1003 as for an expired token.
    ExpireToken,
}

impl Fault {
    /// A short name for logs.
    pub fn name(&self) -> String {
        match self {
            Fault::Status(s, b) => format!("status {s} {b:?}"),
            Fault::RateLimit { retry_after } => format!("rate limit {retry_after:?}"),
            Fault::Latency(d) => format!("latency {}ms", d.as_millis()),
            Fault::DropBeforeResponse => "drop before response".to_string(),
            Fault::CutResponse => "cut response".to_string(),
            Fault::LoseResponseAfterApply => "lose response after apply".to_string(),
            Fault::StallResponse => "stall response".to_string(),
            Fault::ExpireToken => "expire token".to_string(),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// The probabilistic fault mix. Each rate is the share (0.0 to 1.0) of
/// requests that get that fault; at most one fault is drawn per request, so
/// the rates should add up to at most 1. Login requests only get `error`,
/// `latency` and `drop` faults. All rates are 0 by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Share answered 500 or 503 with an empty, HTML or truncated JSON body.
    pub error_rate: f64,
    /// Share that starts a burst of 429 answers.
    pub rate_limit_rate: f64,
    /// Length of a 429 burst (requests).
    pub rate_limit_burst: u32,
    /// Share that gets `latency` added.
    pub latency_rate: f64,
    /// Added latency.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Share whose connection is closed before the response.
    pub drop_rate: f64,
    /// Share whose response is cut in the middle.
    pub cut_rate: f64,
    /// Share applied but whose response is lost.
    pub lose_after_apply_rate: f64,
    /// Share answered 401 as if the token had expired early.
    pub expire_token_rate: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            rate_limit_burst: 3,
            latency_rate: 0.0,
            latency: Duration::from_millis(200),
            drop_rate: 0.0,
            cut_rate: 0.0,
            lose_after_apply_rate: 0.0,
            expire_token_rate: 0.0,
        }
    }
}

impl FaultConfig {
    /// A mix where `rate` of all requests get some fault, spread evenly over
    /// every kind: handy for soak tests.
    pub fn chaos(rate: f64) -> Self {
        let each = rate / 8.0;
        FaultConfig {
            error_rate: each,
            rate_limit_rate: each,
            rate_limit_burst: 2,
            latency_rate: each,
            latency: Duration::from_millis(50),
            drop_rate: each,
            cut_rate: each,
            lose_after_apply_rate: each,
            expire_token_rate: each,
        }
    }
}

#[derive(Debug, Clone)]
struct Scripted {
    endpoint: Option<String>,
    fault: Fault,
    remaining: u32,
}

#[derive(Debug)]
struct State {
    config: FaultConfig,
    rng: fastrand::Rng,
    script: VecDeque<Scripted>,
    burst_left: u32,
    burst_retry: RetryAfter,
    fired: u64,
}

/// The fault injector of one server. Thread-safe; reached through
/// [`crate::RefServer::faults`].
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    /// An injector with this mix, seeded with `seed`.
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Faults {
            state: Mutex::new(State {
                config,
                rng: fastrand::Rng::with_seed(seed),
                script: VecDeque::new(),
                burst_left: 0,
                burst_retry: RetryAfter::Seconds(1),
                fired: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `times` requests to `endpoint` (a Sync name such as
    /// `"SaveAllDataV2"`, compared case-insensitively; `None` = any endpoint)
    /// get `fault`. Scripted faults run in the order injected and take
    /// precedence over the probabilistic mix.
    pub fn inject(&self, endpoint: Option<&str>, fault: Fault, times: u32) {
        if times == 0 {
            return;
        }
        self.lock().script.push_back(Scripted {
            endpoint: endpoint.map(str::to_string),
            fault,
            remaining: times,
        });
    }

    /// Replaces the probabilistic mix.
    pub fn set_config(&self, config: FaultConfig) {
        self.lock().config = config;
    }

    /// The current probabilistic mix.
    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    /// Restarts the random sequence from `seed`.
    pub fn reseed(&self, seed: u64) {
        self.lock().rng = fastrand::Rng::with_seed(seed);
    }

    /// Drops every scripted fault, any 429 burst, and the probabilistic mix.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.script.clear();
        s.burst_left = 0;
        s.config = FaultConfig::default();
    }

    /// How many scripted faults are still waiting.
    pub fn pending(&self) -> u32 {
        self.lock().script.iter().map(|s| s.remaining).sum()
    }

    /// How many faults have been served so far.
    pub fn fired(&self) -> u64 {
        self.lock().fired
    }

    /// Draws the fault for one request to `endpoint`, if any.
    pub(crate) fn next(&self, endpoint: &str, is_login: bool) -> Option<Fault> {
        let mut s = self.lock();
        let found = s.script.iter().position(|sc| {
            // `SaveAllData` and `SaveAllDataV2` are one endpoint to a script.
            let base = |e: &str| {
                let lower = e.to_ascii_lowercase();
                match lower.strip_suffix("v2") {
                    Some(b) => b.to_string(),
                    None => lower,
                }
            };
            sc.endpoint
                .as_deref()
                .is_none_or(|e| base(e) == base(endpoint))
        });
        if let Some(i) = found {
            let fault = s.script[i].fault;
            s.script[i].remaining -= 1;
            if s.script[i].remaining == 0 {
                s.script.remove(i);
            }
            s.fired += 1;
            return Some(fault);
        }
        if s.burst_left > 0 && !is_login {
            s.burst_left -= 1;
            s.fired += 1;
            return Some(Fault::RateLimit {
                retry_after: s.burst_retry,
            });
        }
        let c = s.config.clone();
        let roll = s.rng.f64();
        let mut acc = 0.0;
        let mut hit = |rate: f64| {
            acc += rate.max(0.0);
            roll < acc
        };
        let fault = if hit(c.error_rate) {
            let status = if s.rng.bool() { 500 } else { 503 };
            let body = match s.rng.u8(0..3) {
                0 => FaultBody::Empty,
                1 => FaultBody::Html,
                _ => FaultBody::TruncatedJson,
            };
            Some(Fault::Status(status, body))
        } else if hit(c.latency_rate) {
            Some(Fault::Latency(c.latency))
        } else if hit(c.drop_rate) {
            Some(Fault::DropBeforeResponse)
        } else if is_login {
            None
        } else if hit(c.rate_limit_rate) {
            let retry_after = if s.rng.bool() {
                RetryAfter::Seconds(1)
            } else {
                RetryAfter::HttpDate(1)
            };
            s.burst_left = c.rate_limit_burst.saturating_sub(1);
            s.burst_retry = retry_after;
            Some(Fault::RateLimit { retry_after })
        } else if hit(c.cut_rate) {
            Some(Fault::CutResponse)
        } else if hit(c.lose_after_apply_rate) {
            Some(Fault::LoseResponseAfterApply)
        } else if hit(c.expire_token_rate) {
            Some(Fault::ExpireToken)
        } else {
            None
        };
        if fault.is_some() {
            s.fired += 1;
        }
        fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_matches_endpoint_and_counts_down() {
        let f = Faults::new(FaultConfig::default(), 1);
        f.inject(Some("SaveAllDataV2"), Fault::CutResponse, 2);
        assert_eq!(f.next("GetAllDataV2", false), None);
        assert_eq!(f.next("saveAllDataV2", false), Some(Fault::CutResponse));
        assert_eq!(f.next("SaveAllDataV2", false), Some(Fault::CutResponse));
        assert_eq!(f.next("SaveAllDataV2", false), None);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn same_seed_same_faults() {
        let draw = |seed| {
            let f = Faults::new(FaultConfig::chaos(0.5), seed);
            (0..200)
                .map(|_| f.next("GetAllDataV2", false))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert!(draw(7).iter().any(Option::is_some));
        assert!(draw(7).iter().any(Option::is_none));
    }

    #[test]
    fn fault_json_round_trips() {
        let faults = [
            Fault::Status(503, FaultBody::Html),
            Fault::RateLimit {
                retry_after: RetryAfter::HttpDate(2),
            },
            Fault::Latency(Duration::from_millis(250)),
            Fault::ExpireToken,
        ];
        for f in faults {
            let text = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<Fault>(&text).unwrap(), f);
        }
    }
}
