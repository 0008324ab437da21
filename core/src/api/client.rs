//! The Mahak Sync API client: one [`ApiClient::call`] posts a JSON body to
//! `{base_url}/Sync/{endpoint}` and returns the envelope's `data`, or an
//! [`Error`] that says what the caller can do about the failure. This file
//! owns the call itself: the bearer token it holds (renewed before it
//! expires and once after a 401; login is in `auth.rs`), the retry loop and
//! the sync's retry budget (backoff arithmetic in `retry.rs`), calls that
//! must never be repeated blindly, the per-attempt [`CallRecord`] log, and
//! the [`ConnectionState`] the app can show. What an answer means is in
//! `envelope.rs`; waits go through the [`Shutdown`] token of `shutdown.rs`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::api::auth::{check_identity, interpret_login, Refusal, Token};
use crate::api::dialect::Codec;
use crate::api::envelope::{
    interpret, is_cut_short, is_token_refusal, lenient_success, parse_envelope, server_message,
    tracking,
};
use crate::api::retry::{
    is_retryable_status, jittered_backoff, parse_retry_after, rate_limit_wait, RateLimitWait,
};
use crate::calls::{CallRecord, RetryCause};
use crate::error::{Error, Result};
use crate::status::{clock_skew, clock_skew_warns, ConnectionState};
use crate::transport::{HttpRequest, HttpResponse, Transport, TransportErrorKind};
use crate::url::{check_endpoint, percent_encode, validate_base_url};

pub use crate::api::call::{CallKind, Outgoing, Progress, Reply};
pub use crate::api::config::Credentials;
pub use crate::api::config::{ClientConfig, PasswordHash};
pub use crate::api::dialect::Session;
pub use crate::api::retry::RetryPolicy;
pub use crate::api::shutdown::Shutdown;

/// What one sync may still spend on retries.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// On the client's clock ([`Shutdown::monotonic`]).
    deadline: Option<Duration>,
    retries: u32,
}

struct State {
    /// The running sync's budget, if any.
    budget: Option<Budget>,
    credentials: Credentials,
    token: Option<Token>,
    session: Option<Session>,
    /// The device's clock minus the server's at the last login, in seconds
    /// (`None` when its answer did not say the server's time).
    clock_skew: Option<i64>,
    /// The database and visitor the replica was filled from: a login that
    /// names others fails with `ReplicaMismatch`.
    expected: Option<(i64, i64)>,
    connection: ConnectionState,
    refusal: Option<Refusal>,
    /// Bumped by `set_credentials` and `forget_token`: a login that started
    /// before does not store its outcome.
    generation: u64,
}

/// The Mahak Sync API client. `Send + Sync`: share it in an `Arc` between
/// threads; concurrent calls share one token and one login at a time.
pub struct ApiClient {
    base_url: String,
    config: ClientConfig,
    /// The dialect's login body and answer.
    codec: &'static dyn Codec,
    transport: Arc<dyn Transport>,
    shutdown: Shutdown,
    state: Mutex<State>,
    login_lock: Mutex<()>,
    /// Buffers of applied pull pages, for the next pages' bodies.
    spare: Mutex<Vec<Vec<u8>>>,
    /// Told every new connection state.
    watch: Mutex<Option<ConnectionWatch>>,
}

/// What [`ApiClient::watch_connection`] calls with each new connection
/// state.
pub type ConnectionWatch = Arc<dyn Fn(&ConnectionState) + Send + Sync>;

/// Buffers kept for pull pages: the one being read and the one being applied.
const SPARE_BUFFERS: usize = 2;

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("ApiClient")
            .field("base_url", &self.base_url)
            .field("username", &state.credentials.username)
            .field("has_token", &state.token.is_some())
            .field("connection", &state.connection)
            .finish_non_exhaustive()
    }
}

/// A terminal response of the retry loop, not logged yet.
struct Sent {
    response: HttpResponse,
    at: DateTime<Utc>,
    attempt: u32,
    duration_ms: u64,
    /// Bytes of the request body sent.
    sent_bytes: u64,
}

impl ApiClient {
    /// A client for `config.base_url` (validated: HTTPS, or HTTP to a
    /// loopback host). Sends nothing until the first call.
    pub fn new(
        config: ClientConfig,
        credentials: Credentials,
        transport: Arc<dyn Transport>,
        shutdown: Shutdown,
    ) -> Result<Self> {
        validate_base_url(&config.base_url)?;
        let base_url = config.base_url.trim_end_matches('/').to_string();
        Ok(ApiClient {
            base_url,
            codec: config.dialect.codec(),
            config,
            transport,
            shutdown,
            state: Mutex::new(State {
                budget: None,
                credentials,
                token: None,
                session: None,
                clock_skew: None,
                expected: None,
                connection: ConnectionState::Unknown,
                refusal: None,
                generation: 0,
            }),
            login_lock: Mutex::new(()),
            spare: Mutex::new(Vec::new()),
            watch: Mutex::new(None),
        })
    }

    /// This client speaking `codec` instead of its configured dialect (a
    /// dialect of a test's own).
    #[cfg(test)]
    pub(crate) fn with_codec(mut self, codec: &'static dyn Codec) -> Self {
        self.codec = codec;
        self
    }

    // Every update of `State` is a single field assignment, so a panic while
    // it was held cannot leave it half-written: recover from poisoning.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The shutdown token the client's waits observe.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Replaces the credentials: drops the token, clears a login refusal; the
    /// next call logs in with the new credentials.
    pub fn set_credentials(&self, credentials: Credentials) {
        let mut state = self.state();
        state.credentials = credentials;
        state.token = None;
        state.refusal = None;
        state.generation += 1;
        if state.connection == ConnectionState::AuthFailed {
            state.connection = ConnectionState::Unknown;
        }
    }

    /// Disconnects: drops the token (the next call logs in again) and
    /// forgets what is known about the connection.
    pub fn forget_token(&self) {
        let mut state = self.state();
        state.token = None;
        state.generation += 1;
        state.connection = ConnectionState::Unknown;
    }

    /// The session of the last login (mahak dialect).
    pub fn session(&self) -> Option<Session> {
        self.state().session.clone()
    }

    /// The user this client logs in as.
    pub fn username(&self) -> String {
        self.state().credentials.username.clone()
    }

    /// The database and visitor a login must name (the replica's), or
    /// `None` for any; a visitor of 0 is not checked.
    pub fn expect_identity(&self, expected: Option<(i64, i64)>) {
        self.state().expected = expected;
    }

    /// True when a token is held (it may still be refused by the server).
    pub fn has_token(&self) -> bool {
        self.state().token.is_some()
    }

    /// What the client last learned about the server.
    pub fn connection_state(&self) -> ConnectionState {
        self.state().connection.clone()
    }

    /// Calls `watch` with every new connection state as the client learns
    /// it, inside a call too (a stall is shown while the call is tried
    /// again).
    pub fn watch_connection(&self, watch: ConnectionWatch) {
        if let Ok(mut w) = self.watch.lock() {
            *w = Some(watch);
        }
    }

    /// The device's clock minus the server's at the last login, in
    /// seconds (positive: the device is ahead), when the login answer said
    /// the server's time (`ServerTime`).
    pub fn clock_skew(&self) -> Option<i64> {
        self.state().clock_skew
    }

    /// Tells the watch a notice that is no state of its own
    /// (`ClockSkewed`): the connection state stays as it is.
    fn tell(&self, notice: &ConnectionState) {
        let watch = self.watch.lock().ok().and_then(|w| w.clone());
        if let Some(watch) = watch {
            watch(notice);
        }
    }

    fn set_connection(&self, connection: ConnectionState) {
        let changed = {
            let mut state = self.state();
            let changed = state.connection != connection;
            state.connection = connection.clone();
            changed
        };
        let watch = self.watch.lock().ok().and_then(|w| w.clone());
        // A stall is told each time: the engine shows it even when the
        // client still held it from an earlier sync.
        let tell = changed || matches!(connection, ConnectionState::Stalled { .. });
        if let (true, Some(watch)) = (tell, watch) {
            watch(&connection);
        }
    }

    /// Logs in now (dropping any token held), retrying transient failures;
    /// `log` gets one record per attempt. For a "test connection" button.
    pub fn login(&self, log: &mut dyn FnMut(CallRecord)) -> Result<()> {
        if self.shutdown.is_triggered() {
            return Err(Error::Interrupted);
        }
        let _guard = self.login_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.check_refusal()?;
        self.login_locked(log).map(|_| ())
    }

    /// Posts `body` to `{base_url}/Sync/{endpoint}` with the bearer token
    /// (logging in first when there is none or it is about to expire) and
    /// returns the envelope's `data`.
    ///
    /// Transport errors, 429 and 500/502/503/504 are retried up to
    /// `retry.max_attempts` times with the same body; a 401 triggers one new
    /// login and one repeat. `log` is called once per HTTP attempt, login
    /// attempts included. Errors: `Offline`, `Server`, `RateLimited` when
    /// retries run out; `AuthFailed`, `Conflict`, `Rejected`, `Protocol`,
    /// `Config` (bad endpoint name); `Interrupted` on shutdown.
    pub fn call(
        &self,
        endpoint: &str,
        body: &[u8],
        log: &mut dyn FnMut(CallRecord),
    ) -> Result<Reply> {
        self.call_as(endpoint, body, CallKind::Idempotent, log)
    }

    /// Keeps an applied pull page's buffer for the next page's body: with
    /// glibc, freeing a page of many megabytes and allocating the next one
    /// leaves the heap holding up to twice that unused.
    pub(crate) fn recycle(&self, buffer: Vec<u8>) {
        if let Ok(mut spare) = self.spare.lock() {
            if spare.len() < SPARE_BUFFERS {
                spare.push(buffer);
            }
        }
    }

    /// Frees the kept buffers (at the end of a pull).
    pub(crate) fn drop_spares(&self) {
        if let Ok(mut spare) = self.spare.lock() {
            spare.clear();
        }
    }

    /// [`ApiClient::call`], for a call of the given kind.
    pub fn call_as(
        &self,
        endpoint: &str,
        body: &[u8],
        kind: CallKind,
        log: &mut dyn FnMut(CallRecord),
    ) -> Result<Reply> {
        self.call_with(endpoint, &Outgoing::json(body), kind, log)
    }

    /// [`ApiClient::call_as`], sending `out` (a multipart upload, or a call
    /// whose answer has no known shape).
    pub fn call_with(
        &self,
        endpoint: &str,
        out: &Outgoing<'_>,
        kind: CallKind,
        log: &mut dyn FnMut(CallRecord),
    ) -> Result<Reply> {
        check_endpoint(endpoint)?;
        if self.shutdown.is_triggered() {
            return Err(Error::Interrupted);
        }
        self.check_refusal()?;
        let mut refused_once = false;
        let mut cut = 0u32;
        loop {
            let token = self.ensure_token(log)?;
            let sent = self.send_retrying(endpoint, out, Some(&token), kind, log)?;
            if out.lenient_answer {
                if let Some(reply) = lenient_success(&sent.response) {
                    log(record(endpoint, &sent, None, None));
                    return Ok(reply);
                }
            }
            // The body is parsed once: a pull page can be many megabytes.
            let parsed = parse_envelope(&sent.response.body);
            if parsed.is_err() && kind == CallKind::Save && is_cut_short(&sent.response) {
                // Whatever its status, a save's answer that was cut short
                // cannot say what the server applied.
                let tracking_id = tracking(&sent.response);
                let message = format!("HTTP {}: the answer was cut short", sent.response.status);
                log(record(endpoint, &sent, Some(message.clone()), None));
                return Err(Error::InDoubt {
                    message,
                    tracking_id,
                });
            }
            if parsed.is_err()
                && kind != CallKind::Save
                && self.cut_short(endpoint, &sent, &mut cut, log)?
            {
                continue;
            }
            if is_token_refusal(sent.response.status, parsed.as_ref().ok()) {
                let envelope = parsed.ok();
                let tracking_id = tracking(&sent.response);
                log(record(
                    endpoint,
                    &sent,
                    Some(format!(
                        "token refused (HTTP {}){}",
                        sent.response.status,
                        if refused_once {
                            ""
                        } else {
                            "; logging in again"
                        }
                    )),
                    (!refused_once).then_some(RetryCause::TokenRefresh),
                ));
                self.invalidate_token(&token);
                if refused_once {
                    self.set_connection(ConnectionState::AuthFailed);
                    let (code, message) = envelope
                        .map(|e| (e.code.unwrap_or(0), e.message.into_owned()))
                        .unwrap_or((0, String::new()));
                    return Err(Error::AuthFailed {
                        code,
                        message: if message.is_empty() {
                            "the server refused a fresh token".to_string()
                        } else {
                            message
                        },
                        tracking_id,
                    });
                }
                refused_once = true;
                continue;
            }
            let result = interpret(&sent.response, parsed, kind);
            log(record(
                endpoint,
                &sent,
                result.as_ref().err().map(|e| e.to_string()),
                None,
            ));
            if let Err(Error::AuthFailed { .. }) = &result {
                self.set_connection(ConnectionState::AuthFailed);
            }
            let mut sent = sent;
            return result.map(|(reply, data)| reply.with_data(&mut sent.response.body, data));
        }
    }

    /// An answer cut short (the connection closed mid-body, with no length
    /// to tell; any status) is a transport failure, for a call that changes
    /// nothing (a save's is left to `InDoubt`): `Ok(true)` after the pause
    /// before asking again, `Offline` once the call's attempts or the
    /// sync's budget are spent, `Ok(false)` when the answer is whole.
    fn cut_short(
        &self,
        endpoint: &str,
        sent: &Sent,
        cut: &mut u32,
        log: &mut dyn FnMut(CallRecord),
    ) -> Result<bool> {
        if !is_cut_short(&sent.response) {
            return Ok(false);
        }
        *cut += 1;
        let policy = &self.config.retry;
        let again = *cut < policy.attempts() && self.retry_allowed();
        log(record(
            endpoint,
            sent,
            Some("the answer was cut short".to_string()),
            again.then_some(RetryCause::CutShort),
        ));
        if again {
            self.pause(jittered_backoff(policy, *cut))?;
            return Ok(true);
        }
        let retry_after = self.set_offline(policy, *cut);
        Err(Error::Offline {
            message: "the answer was cut short".to_string(),
            retry_after: Some(retry_after),
            tracking_id: tracking(&sent.response),
        })
    }

    fn check_refusal(&self) -> Result<()> {
        match &self.state().refusal {
            Some(refusal) => Err(refusal.to_error()),
            None => Ok(()),
        }
    }

    fn usable_token(&self) -> Option<String> {
        let state = self.state();
        state
            .token
            .as_ref()
            .filter(|t| t.usable(self.shutdown.now()))
            .map(|t| t.value.clone())
    }

    /// Drops the token if it is still `value` (another thread may already
    /// have logged in again).
    fn invalidate_token(&self, value: &str) {
        let mut state = self.state();
        if state.token.as_ref().is_some_and(|t| t.value == value) {
            state.token = None;
        }
    }

    fn ensure_token(&self, log: &mut dyn FnMut(CallRecord)) -> Result<String> {
        if let Some(token) = self.usable_token() {
            return Ok(token);
        }
        let _guard = self.login_lock.lock().unwrap_or_else(|e| e.into_inner());
        // Another thread may have logged in while this one waited.
        if let Some(token) = self.usable_token() {
            return Ok(token);
        }
        self.check_refusal()?;
        self.login_locked(log)
    }

    /// Logs in; the caller holds `login_lock`. Returns the token value.
    fn login_locked(&self, log: &mut dyn FnMut(CallRecord)) -> Result<String> {
        let (credentials, generation) = {
            let state = self.state();
            (state.credentials.clone(), state.generation)
        };
        let body = self.codec.login_body(&credentials, &self.config)?;
        drop(credentials);
        let endpoint = self.config.login_endpoint.as_str();
        let mut cut = 0u32;
        let sent = loop {
            let sent = self.send_retrying(
                endpoint,
                &Outgoing::json(&body),
                None,
                CallKind::Idempotent,
                log,
            )?;
            if !self.cut_short(endpoint, &sent, &mut cut, log)? {
                break sent;
            }
        };
        drop(body);
        let expected = self.state().expected;
        let result = interpret_login(
            self.codec,
            &sent.response,
            &self.config,
            self.shutdown.now(),
        )
        .and_then(|login| check_identity(expected, login.session.as_ref()).map(|_| login));
        log(record(
            endpoint,
            &sent,
            result.as_ref().err().map(|e| e.to_string()),
            None,
        ));
        let mut state = self.state();
        let current = state.generation == generation;
        match result {
            Ok(login) => {
                let value = login.token.value.clone();
                let skew = clock_skew(self.shutdown.now(), login.server_time);
                if current {
                    state.token = Some(login.token);
                    if login.session.is_some() {
                        state.session = login.session;
                    }
                    state.clock_skew = skew;
                }
                drop(state);
                if current && clock_skew_warns(skew, self.config.clock_skew_warning_seconds) {
                    self.tell(&ConnectionState::ClockSkewed {
                        skew_seconds: skew.unwrap_or(0),
                    });
                }
                Ok(value)
            }
            Err(error) => {
                if let Error::AuthFailed {
                    code,
                    message,
                    tracking_id,
                } = &error
                {
                    state.connection = ConnectionState::AuthFailed;
                    let refused = self.codec.login_refusal_sticks(*code);
                    if current && refused {
                        state.refusal = Some(Refusal {
                            code: *code,
                            message: message.clone(),
                            tracking_id: tracking_id.clone(),
                        });
                    }
                }
                Err(error)
            }
        }
    }

    /// Sends until a response that is not retried comes back (returned
    /// unlogged, for the caller to interpret and log), or attempts run out.
    fn send_retrying(
        &self,
        endpoint: &str,
        out: &Outgoing<'_>,
        token: Option<&str>,
        kind: CallKind,
        log: &mut dyn FnMut(CallRecord),
    ) -> Result<Sent> {
        let policy = &self.config.retry;
        let attempts = policy.attempts();
        let mut headers = vec![
            ("Content-Type".to_string(), out.content_type.clone()),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        headers.extend(out.headers.iter().cloned());
        let mut url = format!("{}/Sync/{}", self.base_url, endpoint);
        if let Some(token) = token {
            headers.push(("Authorization".to_string(), format!("Bearer {token}")));
            if let Some(name) = out.token_query {
                url = format!("{url}?{name}={}", percent_encode(token));
            }
        }
        let request = HttpRequest {
            method: "POST".to_string(),
            url,
            headers,
            body: out.body.to_vec(),
        };
        let mut last_tracking_id = None;
        let mut attempt = 0u32;
        // Attempts in a row whose answer stalled (a read timeout).
        let mut stalls = 0u32;
        loop {
            attempt += 1;
            if self.shutdown.is_triggered() {
                return Err(Error::Interrupted);
            }
            let last = attempt >= attempts || !self.retry_allowed();
            let at = self.shutdown.now();
            let started = Instant::now();
            let buffer = if out.reuse_buffer {
                self.spare.lock().map(|mut s| s.pop()).ok().flatten()
            } else {
                None
            };
            let outcome = match (out.progress, buffer) {
                (Some(Progress(sent)), _) => self.transport.send_reporting(&request, sent),
                (None, Some(buffer)) => self.transport.send_into(&request, buffer),
                (None, None) => self.transport.send(&request),
            };
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            // A failed connect sent nothing.
            let sent_bytes = match &outcome {
                Err(e) if e.kind == TransportErrorKind::Connect => 0,
                _ => request.body.len() as u64,
            };
            let (received_bytes, wire_received_bytes) = match &outcome {
                Ok(r) => (r.body.len() as u64, r.wire_len()),
                Err(_) => (0, 0),
            };
            let mut attempt_record =
                |status: Option<u16>,
                 tracking_id: Option<String>,
                 error,
                 retry: Option<RetryCause>| {
                    log(CallRecord {
                        at,
                        endpoint: endpoint.to_string(),
                        attempt,
                        status,
                        duration_ms,
                        tracking_id,
                        error: Some(error),
                        sent_bytes,
                        received_bytes,
                        wire_received_bytes,
                        retry,
                    })
                };
            match outcome {
                Ok(response) => {
                    stalls = 0;
                    self.set_connection(ConnectionState::Online);
                    let status = response.status;
                    let tracking_id = tracking(&response);
                    last_tracking_id.clone_from(&tracking_id);
                    if status == 429 {
                        let retry_after = response
                            .header("retry-after")
                            .and_then(|v| parse_retry_after(v, self.shutdown.system_now()));
                        let wait = rate_limit_wait(policy, retry_after, attempt, fastrand::f64());
                        let again = matches!(wait, RateLimitWait::Sleep(delay) if !last && self.fits(delay));
                        attempt_record(
                            Some(status),
                            tracking_id.clone(),
                            "rate limited (HTTP 429)".to_string(),
                            again.then_some(RetryCause::RateLimited),
                        );
                        match wait {
                            RateLimitWait::Sleep(delay) if again => {
                                self.pause(delay)?;
                                continue;
                            }
                            RateLimitWait::Sleep(delay) | RateLimitWait::GiveUp(delay) => {
                                return Err(Error::RateLimited {
                                    retry_after: Some(delay),
                                    tracking_id,
                                });
                            }
                        }
                    }
                    if kind == CallKind::Save && status >= 500 {
                        // The server may have applied the save before it
                        // failed: never repeat it blindly.
                        let message = server_message(&response);
                        attempt_record(Some(status), tracking_id.clone(), message.clone(), None);
                        return Err(Error::InDoubt {
                            message,
                            tracking_id,
                        });
                    }
                    if is_retryable_status(status) {
                        let message = server_message(&response);
                        attempt_record(
                            Some(status),
                            tracking_id.clone(),
                            message.clone(),
                            (!last).then_some(RetryCause::ServerError),
                        );
                        let delay = jittered_backoff(policy, attempt);
                        if last {
                            self.set_offline(policy, attempt);
                            return Err(Error::Server {
                                status,
                                message,
                                tracking_id,
                            });
                        }
                        self.pause(delay)?;
                        continue;
                    }
                    return Ok(Sent {
                        response,
                        at,
                        attempt,
                        duration_ms,
                        sent_bytes,
                    });
                }
                Err(error) => {
                    // A timeout past the connect is a stall: the server took
                    // the request and its answer stopped coming. Twice in a
                    // row on one call ends it, named (invariant 17); a stall
                    // that comes and goes is retried like any fault.
                    let stalled = error.kind == TransportErrorKind::Timeout;
                    if stalled {
                        stalls += 1;
                    } else {
                        stalls = 0;
                    }
                    let in_doubt =
                        kind == CallKind::Save && error.kind != TransportErrorKind::Connect;
                    let again = !in_doubt && stalls < 2 && !last;
                    let cause = if stalled {
                        RetryCause::Stall
                    } else {
                        RetryCause::Transport
                    };
                    attempt_record(None, None, error.to_string(), again.then_some(cause));
                    if stalled {
                        self.set_connection(ConnectionState::Stalled {
                            endpoint: endpoint.to_string(),
                        });
                    }
                    // A request that may have reached the server: only a
                    // failed connect is sure not to have.
                    if in_doubt {
                        if stalls == 0 {
                            self.set_offline(policy, attempt);
                        }
                        return Err(Error::InDoubt {
                            message: error.to_string(),
                            tracking_id: last_tracking_id,
                        });
                    }
                    if stalls >= 2 {
                        return Err(Error::Stalled {
                            endpoint: endpoint.to_string(),
                            attempts: stalls,
                            message: error.to_string(),
                            tracking_id: last_tracking_id,
                        });
                    }
                    if last {
                        let retry_after = self.set_offline(policy, attempt);
                        return Err(Error::Offline {
                            message: error.to_string(),
                            retry_after: Some(retry_after),
                            tracking_id: last_tracking_id,
                        });
                    }
                    self.pause(jittered_backoff(policy, attempt))?;
                }
            }
        }
    }

    /// Starts a sync's budget: every call until [`ApiClient::end_budget`]
    /// shares `retries` retries, and none is made (nor waited for) past
    /// `deadline` from now (DESIGN.md invariant 13).
    pub fn begin_budget(&self, deadline: Duration, retries: u32) {
        self.state().budget = Some(Budget {
            deadline: self.shutdown.monotonic().checked_add(deadline),
            retries,
        });
    }

    /// Ends the sync's budget: calls retry per their own policy again.
    pub fn end_budget(&self) {
        self.state().budget = None;
    }

    /// True when the sync's budget allows one more retry now.
    fn retry_allowed(&self) -> bool {
        match self.state().budget {
            None => true,
            Some(b) => b.retries > 0 && b.deadline.is_none_or(|d| self.shutdown.monotonic() < d),
        }
    }

    /// True when waiting `delay` ends before the sync's deadline.
    fn fits(&self, delay: Duration) -> bool {
        match self.state().budget.and_then(|b| b.deadline) {
            None => true,
            Some(d) => self
                .shutdown
                .monotonic()
                .checked_add(delay)
                .is_some_and(|end| end < d),
        }
    }

    /// Waits before a retry, spending one of the sync's retries; a wait
    /// that would pass the sync's deadline ends at it, as `Offline`.
    fn pause(&self, delay: Duration) -> Result<()> {
        let deadline = {
            let mut state = self.state();
            match state.budget.as_mut() {
                Some(b) => {
                    b.retries = b.retries.saturating_sub(1);
                    b.deadline
                }
                None => None,
            }
        };
        let Some(deadline) = deadline else {
            return self.shutdown.sleep(delay);
        };
        let left = deadline.saturating_sub(self.shutdown.monotonic());
        if delay < left {
            return self.shutdown.sleep(delay);
        }
        self.shutdown.sleep(left)?;
        Err(Error::Offline {
            message: "the sync's deadline passed while retrying".into(),
            retry_after: Some(delay),
            tracking_id: None,
        })
    }

    /// Marks the connection offline after `failures` failed attempts and
    /// returns the suggested wait before the next try (the next backoff,
    /// never below `base_delay`).
    fn set_offline(&self, policy: &RetryPolicy, failures: u32) -> Duration {
        let delay = jittered_backoff(policy, failures.saturating_add(1))
            .max(policy.base_delay.min(policy.max_delay));
        let next_attempt = chrono::Duration::from_std(delay)
            .ok()
            .and_then(|d| self.shutdown.now().checked_add_signed(d));
        self.set_connection(ConnectionState::Offline { next_attempt });
        delay
    }
}

fn record(
    endpoint: &str,
    sent: &Sent,
    error: Option<String>,
    retry: Option<RetryCause>,
) -> CallRecord {
    CallRecord {
        at: sent.at,
        endpoint: endpoint.to_string(),
        attempt: sent.attempt,
        status: Some(sent.response.status),
        duration_ms: sent.duration_ms,
        tracking_id: tracking(&sent.response),
        error,
        sent_bytes: sent.sent_bytes,
        received_bytes: sent.response.body.len() as u64,
        wire_received_bytes: sent.response.wire_len(),
        retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::refresh_time;
    use crate::api::dialect;
    use crate::api::dialect::login::parse_expire_date;
    use crate::api::dialect::Dialect;
    use crate::api::envelope::PLAIN_ANSWER_MAX;
    use crate::transport::{TransportError, TransportErrorKind};
    use std::collections::VecDeque;

    const PASSWORD: &str = "s3cret-PASSWORD";
    const TOKEN: &str = "tok-AAA";
    const TOKEN2: &str = "tok-BBB";

    type Step =
        Box<dyn FnOnce(&HttpRequest) -> std::result::Result<HttpResponse, TransportError> + Send>;

    /// A scripted transport: answers each request with the next step and
    /// keeps every request it saw.
    #[derive(Default)]
    struct Script {
        steps: Mutex<VecDeque<Step>>,
        seen: Mutex<Vec<HttpRequest>>,
        /// Capacities of the buffers handed to `send_into`.
        buffers: Mutex<Vec<usize>>,
    }

    impl Script {
        fn new() -> Arc<Self> {
            Arc::new(Script::default())
        }
        fn then(
            self: &Arc<Self>,
            f: impl FnOnce(&HttpRequest) -> std::result::Result<HttpResponse, TransportError>
                + Send
                + 'static,
        ) -> Arc<Self> {
            self.steps.lock().unwrap().push_back(Box::new(f));
            self.clone()
        }
        fn reply(self: &Arc<Self>, response: HttpResponse) -> Arc<Self> {
            self.then(move |_| Ok(response))
        }
        fn fail(self: &Arc<Self>, kind: TransportErrorKind) -> Arc<Self> {
            self.then(move |_| Err(TransportError::new(kind, "connection reset by peer")))
        }
        fn seen(&self) -> Vec<HttpRequest> {
            self.seen.lock().unwrap().clone()
        }
        fn left(&self) -> usize {
            self.steps.lock().unwrap().len()
        }
    }

    impl Transport for Script {
        fn send(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
            self.seen.lock().unwrap().push(request.clone());
            let step = self
                .steps
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| panic!("unscripted request to {}", request.url));
            step(request)
        }

        fn send_into(
            &self,
            request: &HttpRequest,
            buffer: Vec<u8>,
        ) -> std::result::Result<HttpResponse, TransportError> {
            self.buffers.lock().unwrap().push(buffer.capacity());
            self.send(request)
        }
    }

    /// A pull's answer is read into a buffer an applied page gave back; other
    /// calls, and a pull with none given back, read into a new one. At most
    /// two are kept, and a pull's end frees them.
    #[test]
    fn pull_answers_are_read_into_recycled_buffers() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(ok_data("[1]"))
            .reply(ok_data("[2]"))
            .reply(ok_data("[3]"));
        let c = client(&script);
        let pull = Outgoing {
            reuse_buffer: true,
            progress: None,
            ..Outgoing::json(b"{}")
        };
        let call = |out: &Outgoing<'_>| {
            c.call_with("GetAllData", out, CallKind::Idempotent, &mut |_| {})
                .unwrap()
        };
        assert_eq!(call(&pull).data, "[1]");
        for _ in 0..3 {
            c.recycle(Vec::with_capacity(1 << 20));
        }
        assert_eq!(c.spare.lock().unwrap().len(), 2, "two kept");
        assert_eq!(call(&pull).data, "[2]");
        assert_eq!(call(&Outgoing::json(b"{}")).data, "[3]");
        assert_eq!(*script.buffers.lock().unwrap(), vec![1 << 20]);
        assert_eq!(c.spare.lock().unwrap().len(), 1);
        c.drop_spares();
        assert!(c.spare.lock().unwrap().is_empty());
    }

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Trackingid".into(), format!("trk-{status}"))],
            body: body.as_bytes().to_vec(),
            wire_bytes: None,
        }
    }

    fn with_header(mut r: HttpResponse, name: &str, value: &str) -> HttpResponse {
        r.headers.push((name.into(), value.into()));
        r
    }

    fn login_ok(token: &str) -> HttpResponse {
        resp(
            200,
            &format!(
                r#"{{"success":true,"code":0,"message":"","data":{{"token":"{token}","expireDate":"2999-01-01T00:00:00Z"}}}}"#
            ),
        )
    }

    fn ok_data(data: &str) -> HttpResponse {
        resp(
            200,
            &format!(r#"{{"success":true,"code":0,"message":"ok","data":{data}}}"#),
        )
    }

    fn credentials() -> Credentials {
        Credentials {
            username: "user1".into(),
            password: PASSWORD.into(),
            database_id: 1001,
            package_number: 2002,
        }
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_retry_after: Duration::from_secs(30),
        }
    }

    fn client_with(script: &Arc<Script>, retry: RetryPolicy) -> ApiClient {
        let config = ClientConfig {
            retry,
            ..ClientConfig::new("http://127.0.0.1:9/API/v3/")
        };
        ApiClient::new(config, credentials(), script.clone(), Shutdown::new()).unwrap()
    }

    fn client(script: &Arc<Script>) -> ApiClient {
        client_with(script, fast_policy())
    }

    /// Runs a call, collecting its log, and checks no secret leaked into the
    /// log or the error.
    fn run(client: &ApiClient, endpoint: &str) -> (Result<Reply>, Vec<CallRecord>) {
        let mut records = Vec::new();
        let result = client.call(endpoint, br#"{"ordersRowVersion":0}"#, &mut |r| {
            records.push(r)
        });
        let text = format!("{records:?} {:?} {client:?}", result.as_ref().err());
        for secret in [PASSWORD, TOKEN, TOKEN2] {
            assert!(!text.contains(secret), "secret leaked: {text}");
        }
        (result, records)
    }

    // ----- the mahak dialect --------------------------------------------------

    /// A JWT whose payload carries `exp` only as a time (no signature check
    /// is made by the client).
    fn jwt(exp: i64) -> String {
        use base64::Engine as _;
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        format!(
            "{}.{}.{}",
            enc(br#"{"alg":"HS256","typ":"JWT"}"#),
            enc(format!(r#"{{"nbf":1,"exp":{exp},"iat":1,"sub":"tok-AAA"}}"#).as_bytes()),
            enc(b"sig")
        )
    }

    fn mahak_login(token: &str, visitor: i64, server_time: &str) -> HttpResponse {
        resp(
            200,
            &format!(
                r#"{{"Result":true,"Data":{{"UserToken":"{token}","VisitorId":{visitor},"SyncId":77,"DatabaseId":1001,"UserTitle":"فروشگاه ","ServerTime":"{server_time}","PackageNo":"2002","CreditDay":0,"HasRadara":false}}}}"#
            ),
        )
    }

    fn mahak_client(script: &Arc<Script>) -> ApiClient {
        let config = ClientConfig {
            retry: fast_policy(),
            dialect: Dialect::Mahak,
            login_endpoint: "Login".into(),
            ..ClientConfig::new("http://127.0.0.1:9/API/v3/")
        };
        ApiClient::new(config, credentials(), script.clone(), Shutdown::new()).unwrap()
    }

    fn tehran_now(offset: chrono::Duration) -> String {
        (Utc::now() + offset + chrono::Duration::seconds(3 * 3600 + 1800))
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string()
    }

    /// The skew is the device's clock (the client's, here a virtual one)
    /// minus the login answer's `ServerTime` (Tehran wall time); past the
    /// threshold the watch is told `ClockSkewed` while the connection
    /// state stays what it was. No `ServerTime`, or one that does not read,
    /// is no skew and no error.
    #[test]
    fn a_login_measures_the_clock_skew_against_server_time() {
        use crate::api::shutdown::VirtualClock;
        let device = chrono::DateTime::parse_from_rfc3339("2026-12-05T10:20:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let token = jwt(device.timestamp() + 7 * 86_400);
        let cases: [(&str, Option<i64>, bool); 5] = [
            // Tehran 13:30 is 10:00 UTC: the device is 20 minutes ahead.
            ("2026-12-05T13:30:00", Some(1200), true),
            ("2026-12-05T13:45:00.1234567", Some(300), false),
            // The device is 14 minutes behind.
            ("2026-12-05T14:04:00", Some(-840), true),
            ("yesterday", None, false),
            ("", None, false),
        ];
        for (server_time, skew, warns) in cases {
            let script = Script::new().reply(mahak_login(&token, 31, server_time));
            let shutdown = Shutdown::new();
            shutdown.set_clock(Some(Arc::new(VirtualClock::new(device))));
            let config = ClientConfig {
                retry: fast_policy(),
                dialect: Dialect::Mahak,
                login_endpoint: "Login".into(),
                ..ClientConfig::new("http://127.0.0.1:9/API/v3/")
            };
            let c = ApiClient::new(config, credentials(), script.clone(), shutdown).unwrap();
            let told = Arc::new(Mutex::new(Vec::new()));
            let sink = told.clone();
            c.watch_connection(Arc::new(move |s: &ConnectionState| {
                sink.lock().unwrap().push(s.clone())
            }));
            c.login(&mut |_| {}).unwrap();
            assert_eq!(c.clock_skew(), skew, "{server_time}");
            let notices: Vec<ConnectionState> = told
                .lock()
                .unwrap()
                .iter()
                .filter(|s| **s != ConnectionState::Online)
                .cloned()
                .collect();
            match warns {
                true => assert_eq!(
                    notices,
                    vec![ConnectionState::ClockSkewed {
                        skew_seconds: skew.unwrap()
                    }]
                ),
                false => assert!(notices.is_empty(), "{notices:?}"),
            }
            assert!(!matches!(
                c.connection_state(),
                ConnectionState::ClockSkewed { .. }
            ));
        }
    }

    #[test]
    fn mahak_login_hashes_the_password_and_reads_the_session() {
        let token = jwt(Utc::now().timestamp() + 7 * 86_400);
        let script = Script::new()
            .reply(mahak_login(
                &token,
                31,
                &tehran_now(chrono::Duration::zero()),
            ))
            .reply(resp(200, r#"{"Result":true,"Data":{"Objects":{}}}"#));
        let c = mahak_client(&script);
        let (r, _) = run(&c, "GetAllData");
        let reply = r.unwrap();
        assert!(reply.success);
        let seen = script.seen();
        assert!(seen[0].url.ends_with("/Sync/Login"));
        let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(body["userName"], "user1");
        assert_eq!(body["password"], dialect::mahak::password_hash(PASSWORD));
        assert_eq!(body["packageNo"], "2002", "packageNo is a string");
        assert_eq!(body["databaseId"], 1001);
        assert!(!String::from_utf8_lossy(&seen[0].body).contains(PASSWORD));
        assert_eq!(
            seen[1].header("authorization"),
            Some(format!("Bearer {token}").as_str())
        );
        let session = c.session().unwrap();
        assert_eq!(
            (session.visitor_id, session.sync_id, session.database_id),
            (31, 77, 1001)
        );
        assert_eq!(session.user_title, "فروشگاه ");
    }

    #[test]
    fn mahak_token_is_renewed_before_its_jwt_exp_on_the_server_clock() {
        // The token expires in 100 s of the server's clock; the device clock
        // is an hour behind the server's. The margin (60 s, at most half the life) puts
        // the renewal 50 s from now, whatever the device clock says.
        let exp = Utc::now().timestamp() + 3600 + 100;
        let script = Script::new()
            .reply(mahak_login(
                &jwt(exp),
                31,
                &tehran_now(chrono::Duration::hours(1)),
            ))
            .reply(ok_data("{}"));
        let c = mahak_client(&script);
        run(&c, "GetAllData").0.unwrap();
        let at = c.state().token.as_ref().and_then(|t| t.refresh_at).unwrap();
        let left = (at - Utc::now()).num_seconds();
        assert!((45..=51).contains(&left), "renews in {left} s");
        // An expired token (exp passed on the server's clock) is renewed
        // before the next call.
        let script = Script::new()
            .reply(mahak_login(
                &jwt(Utc::now().timestamp() - 10),
                31,
                &tehran_now(chrono::Duration::zero()),
            ))
            .reply(ok_data("{}"))
            .reply(mahak_login(
                &jwt(Utc::now().timestamp() + 3600),
                31,
                &tehran_now(chrono::Duration::zero()),
            ))
            .reply(ok_data("{}"));
        let c = mahak_client(&script);
        run(&c, "GetAllData").0.unwrap();
        run(&c, "GetAllData").0.unwrap();
        let logins = script
            .seen()
            .iter()
            .filter(|r| r.url.ends_with("/Login"))
            .count();
        assert_eq!(logins, 2);
    }

    #[test]
    fn mahak_token_without_exp_lives_a_bounded_time_and_renews_on_401() {
        let script = Script::new()
            .reply(mahak_login("opaque-token", 31, ""))
            .reply(resp(401, ""))
            .reply(mahak_login("opaque-token-2", 31, ""))
            .reply(ok_data("{}"));
        let c = mahak_client(&script);
        let at = {
            run(&c, "GetAllData").0.unwrap();
            c.state().token.as_ref().and_then(|t| t.refresh_at).unwrap()
        };
        let hours = (at - Utc::now()).num_hours();
        assert!((11..=12).contains(&hours), "{hours}");
        assert_eq!(script.left(), 0);
    }

    #[test]
    fn mahak_login_refusal_is_auth_failed_and_sticks() {
        let script = Script::new().reply(resp(
            200,
            r#"{"Result":false,"Message":"نام کاربری یا رمز عبور اشتباه است","Data":null}"#,
        ));
        let c = mahak_client(&script);
        let (r, _) = run(&c, "GetAllData");
        assert!(matches!(&r, Err(Error::AuthFailed { message, .. }) if message.contains("رمز")));
        let (r, _) = run(&c, "GetAllData");
        assert!(matches!(r, Err(Error::AuthFailed { .. })));
        assert_eq!(
            script.seen().len(),
            1,
            "no second login until new credentials"
        );
        assert_eq!(c.connection_state(), ConnectionState::AuthFailed);
    }

    /// Without `Message` or `Code`, a refusal's `Data.ErrorMessage` and
    /// `Data.ErrorCode` (keys in any case, the code a number or a string)
    /// are what the app is told; the envelope's own win when both are there.
    #[test]
    fn mahak_login_refusal_reads_the_error_code_and_message_from_its_data() {
        for (body, code, message) in [
            (
                r#"{"Result":false,"Data":{"ErrorCode":12,"ErrorMessage":"بسته منقضی شده است "}}"#,
                12,
                "بسته منقضی شده است",
            ),
            (
                r#"{"result":false,"data":{"errorCode":"7","errormessage":"user is locked"}}"#,
                7,
                "user is locked",
            ),
            (
                r#"{"Result":false,"Code":3,"Message":"bad password","Data":{"ErrorCode":9,"ErrorMessage":"other"}}"#,
                3,
                "bad password",
            ),
            (
                r#"{"Result":false,"Data":{"ErrorCode":null,"ErrorMessage":null}}"#,
                0,
                "login refused",
            ),
        ] {
            let script = Script::new().reply(resp(200, body));
            let c = mahak_client(&script);
            let (r, _) = run(&c, "GetAllData");
            match r {
                Err(Error::AuthFailed {
                    code: got,
                    message: said,
                    ..
                }) => {
                    assert_eq!(got, code, "{body}");
                    assert_eq!(said, message, "{body}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn another_database_or_visitor_is_a_replica_mismatch() {
        let token = jwt(Utc::now().timestamp() + 3600);
        let script = Script::new().reply(mahak_login(&token, 32, ""));
        let c = mahak_client(&script);
        c.expect_identity(Some((1001, 31)));
        let (r, _) = run(&c, "GetAllData");
        assert!(matches!(
            r,
            Err(Error::ReplicaMismatch { ref what, replica: 31, server: 32 }) if what == "visitorId"
        ));
        assert_eq!(script.seen().len(), 1, "nothing but the login was sent");
        assert!(!c.has_token());
        let script = Script::new()
            .reply(mahak_login(&token, 31, ""))
            .reply(ok_data("{}"));
        let c = mahak_client(&script);
        c.expect_identity(Some((1001, 31)));
        assert!(run(&c, "GetAllData").0.is_ok());
    }

    #[test]
    fn retries_are_budgeted_per_sync_not_per_call() {
        let policy = RetryPolicy {
            max_attempts: 10,
            ..fast_policy()
        };
        let script = Script::new().reply(login_ok(TOKEN));
        for _ in 0..40 {
            script.fail(TransportErrorKind::Connect);
        }
        let c = client_with(&script, policy);
        c.begin_budget(Duration::from_secs(60), 3);
        assert!(matches!(
            run(&c, "GetAllDataV2").0,
            Err(Error::Offline { .. })
        ));
        assert!(matches!(
            run(&c, "GetAllDataV2").0,
            Err(Error::Offline { .. })
        ));
        // The login, then 1 + 3 attempts of the first call, 1 of the second.
        assert_eq!(script.seen().len(), 1 + 4 + 1);
        c.end_budget();
        let before = script.seen().len();
        assert!(run(&c, "GetAllDataV2").0.is_err());
        assert_eq!(script.seen().len() - before, 10, "its own policy again");
    }

    #[test]
    fn no_retry_waits_past_the_sync_deadline() {
        let policy = RetryPolicy {
            max_attempts: 50,
            base_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(40),
            max_retry_after: Duration::from_secs(30),
        };
        let script = Script::new().reply(login_ok(TOKEN));
        for _ in 0..60 {
            script.fail(TransportErrorKind::Io);
        }
        script.reply(with_header(resp(429, ""), "Retry-After", "5"));
        let c = client_with(&script, policy);
        c.begin_budget(Duration::from_millis(300), 1_000);
        let started = Instant::now();
        assert!(matches!(
            run(&c, "GetAllDataV2").0,
            Err(Error::Offline { .. })
        ));
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            started.elapsed()
        );
    }

    fn save(c: &ApiClient) -> Result<Reply> {
        c.call_as("SaveAllData", b"{}", CallKind::Save, &mut |_| {})
    }

    #[test]
    fn a_save_that_may_have_arrived_is_in_doubt_and_never_repeated() {
        let token = jwt(Utc::now().timestamp() + 3600);
        for failure in [TransportErrorKind::Io, TransportErrorKind::Timeout] {
            let script = Script::new()
                .reply(mahak_login(&token, 31, ""))
                .fail(failure);
            let c = mahak_client(&script);
            assert!(matches!(save(&c), Err(Error::InDoubt { .. })));
            assert_eq!(script.seen().len(), 2, "sent once");
        }
        let script = Script::new()
            .reply(mahak_login(&token, 31, ""))
            .reply(resp(503, "<html>busy</html>"));
        let c = mahak_client(&script);
        assert!(matches!(save(&c), Err(Error::InDoubt { .. })));
        let script = Script::new()
            .reply(mahak_login(&token, 31, ""))
            .reply(resp(200, r#"{"Result":true,"Data":{"Obj"#));
        let c = mahak_client(&script);
        assert!(matches!(save(&c), Err(Error::InDoubt { .. })));
        // A refused connection never reached the server: retried.
        let script = Script::new()
            .reply(mahak_login(&token, 31, ""))
            .fail(TransportErrorKind::Connect)
            .reply(resp(429, ""))
            .reply(resp(200, r#"{"Result":true,"Data":null}"#));
        let c = mahak_client(&script);
        assert!(save(&c).unwrap().success);
    }

    #[test]
    fn a_partial_save_answer_is_returned_with_its_data() {
        let token = jwt(Utc::now().timestamp() + 3600);
        let script = Script::new()
            .reply(mahak_login(&token, 31, ""))
            .reply(resp(200, r#"{"Result":false,"Data":{"Objects":{}}}"#))
            .reply(resp(200, r#"{"Result":false,"Message":"too big"}"#));
        let c = mahak_client(&script);
        let reply = save(&c).unwrap();
        assert!(!reply.success);
        assert_eq!(reply.data.as_str(), r#"{"Objects":{}}"#);
        assert!(
            matches!(save(&c), Err(Error::Rejected { ref message, .. }) if message == "too big")
        );
    }

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ApiClient>();
        check::<Shutdown>();
    }

    #[test]
    fn new_validates_the_base_url() {
        let script = Script::new();
        let r = ApiClient::new(
            ClientConfig::new("http://example.com/API/v3"),
            credentials(),
            script.clone(),
            Shutdown::new(),
        );
        assert!(matches!(r, Err(Error::Config(_))));
        assert!(ApiClient::new(
            ClientConfig::new("https://example.com/API/v3"),
            credentials(),
            script,
            Shutdown::new(),
        )
        .is_ok());
    }

    #[test]
    fn logs_in_then_calls_and_reuses_the_token() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(ok_data(r#"{"orders":{"rowVersion":5,"records":[]}}"#))
            .reply(ok_data("[1, 2]"));
        let c = client(&script);
        assert_eq!(c.connection_state(), ConnectionState::Unknown);
        let (reply, log) = run(&c, "GetAllDataV2");
        let reply = reply.unwrap();
        assert_eq!(
            reply.data.as_str(),
            r#"{"orders":{"rowVersion":5,"records":[]}}"#
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.tracking_id.as_deref(), Some("trk-200"));
        assert_eq!(c.connection_state(), ConnectionState::Online);

        let seen = script.seen();
        assert_eq!(seen[0].url, "http://127.0.0.1:9/API/v3/Sync/LoginV2");
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].header("authorization"), None);
        let login: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(
            login,
            serde_json::json!({"username":"user1","password":PASSWORD,"databaseId":1001,"packageNumber":2002})
        );
        assert_eq!(seen[1].url, "http://127.0.0.1:9/API/v3/Sync/GetAllDataV2");
        assert_eq!(
            seen[1].header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(seen[1].header("authorization"), Some("Bearer tok-AAA"));
        assert_eq!(seen[1].body, br#"{"ordersRowVersion":0}"#);

        assert_eq!(log.len(), 2);
        assert_eq!(log[0].endpoint, "LoginV2");
        assert_eq!(log[1].endpoint, "GetAllDataV2");
        assert!(log.iter().all(|r| r.attempt == 1
            && r.status == Some(200)
            && r.error.is_none()
            && r.tracking_id.as_deref() == Some("trk-200")));

        // Second call: same token, no new login.
        let (reply, log) = run(&c, "GetAllDataV2");
        assert_eq!(reply.unwrap().data.as_str(), "[1, 2]");
        assert_eq!(log.len(), 1);
        assert_eq!(
            script.seen()[2].header("authorization"),
            Some("Bearer tok-AAA")
        );
    }

    #[test]
    fn bare_login_answer_is_accepted() {
        let script = Script::new()
            .reply(resp(
                200,
                r#"{"token":"tok-AAA","expireDate":"2999-01-15T12:00:00"}"#,
            ))
            .reply(ok_data("{}"));
        let c = client(&script);
        assert!(run(&c, "GetAllDataV2").0.is_ok());
        assert_eq!(
            script.seen()[1].header("authorization"),
            Some("Bearer tok-AAA")
        );
    }

    #[test]
    fn login_without_a_token_is_a_protocol_error() {
        for body in [
            r#"{"success":true,"code":0,"data":null}"#,
            r#"{"success":true,"code":0,"data":{"token":""}}"#,
            r#"{"success":true,"code":0,"data":{"token":"a b\r\nX-Evil: 1"}}"#,
            "<html>",
        ] {
            let script = Script::new().reply(resp(200, body));
            let c = client(&script);
            let (r, log) = run(&c, "GetAllDataV2");
            assert!(matches!(r, Err(Error::Protocol { .. })), "{body}: {r:?}");
            assert_eq!(log.len(), 1);
            assert!(log[0].error.is_some());
        }
    }

    #[test]
    fn login_refusals_fail_at_once_and_stick_until_new_credentials() {
        for (status, code) in [(401, 1002), (401, 1001), (200, 1001), (200, 1002)] {
            let script = Script::new().reply(resp(
                status,
                &format!(r#"{{"success":false,"code":{code},"message":"nope","data":null}}"#),
            ));
            let c = client(&script);
            let (r, log) = run(&c, "SaveAllDataV2");
            match r {
                Err(Error::AuthFailed {
                    code: got,
                    message,
                    tracking_id,
                }) => {
                    assert_eq!(got, code);
                    assert_eq!(message, "nope");
                    assert_eq!(tracking_id, Some(format!("trk-{status}")));
                }
                other => panic!("{status}/{code}: {other:?}"),
            }
            assert_eq!(log.len(), 1);
            assert_eq!(script.seen().len(), 1);
            assert_eq!(c.connection_state(), ConnectionState::AuthFailed);

            // Sticky: nothing is sent with the refused credentials.
            let (r, log) = run(&c, "SaveAllDataV2");
            assert!(matches!(r, Err(Error::AuthFailed { .. })));
            assert!(log.is_empty());
            assert_eq!(script.seen().len(), 1);

            // New credentials: the next call logs in again.
            c.set_credentials(credentials());
            assert_eq!(c.connection_state(), ConnectionState::Unknown);
            script.reply(login_ok(TOKEN)).reply(ok_data("{}"));
            assert!(run(&c, "SaveAllDataV2").0.is_ok());
        }
    }

    #[test]
    fn login_401_without_envelope_is_auth_failed() {
        let script = Script::new().reply(resp(401, ""));
        let c = client(&script);
        match run(&c, "GetAllDataV2").0 {
            Err(Error::AuthFailed { code, .. }) => assert_eq!(code, 0),
            other => panic!("{other:?}"),
        }
        // Not a 1001/1002: not sticky.
        script.reply(login_ok(TOKEN)).reply(ok_data("{}"));
        assert!(run(&c, "GetAllDataV2").0.is_ok());
    }

    #[test]
    fn a_401_logs_in_again_once_and_repeats_the_call() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(resp(
                401,
                r#"{"success":false,"code":1003,"message":"expired"}"#,
            ))
            .reply(login_ok(TOKEN2))
            .reply(ok_data(r#""done""#));
        let c = client(&script);
        let (r, log) = run(&c, "SaveAllDataV2");
        assert_eq!(r.unwrap().data.as_str(), r#""done""#);
        let seen = script.seen();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1].header("authorization"), Some("Bearer tok-AAA"));
        assert_eq!(seen[3].header("authorization"), Some("Bearer tok-BBB"));
        assert_eq!(seen[1].body, seen[3].body);
        let endpoints: Vec<_> = log.iter().map(|r| r.endpoint.as_str()).collect();
        assert_eq!(log[1].retry, Some(RetryCause::TokenRefresh));
        assert!(log.iter().filter(|r| r.retry.is_some()).count() == 1);
        assert_eq!(
            endpoints,
            ["LoginV2", "SaveAllDataV2", "LoginV2", "SaveAllDataV2"]
        );
        assert!(log[1].error.as_deref().unwrap().contains("401"));
        assert_eq!(log[1].status, Some(401));
    }

    #[test]
    fn code_1003_under_http_200_is_a_token_refusal_too() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(resp(200, r#"{"success":false,"code":1003}"#))
            .reply(login_ok(TOKEN2))
            .reply(ok_data("{}"));
        assert!(run(&client(&script), "GetAllDataV2").0.is_ok());
        assert_eq!(script.left(), 0);
    }

    #[test]
    fn a_second_401_in_a_row_is_auth_failed() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(resp(401, ""))
            .reply(login_ok(TOKEN2))
            .reply(resp(
                401,
                r#"{"success":false,"code":1003,"message":"bad token"}"#,
            ));
        let c = client(&script);
        match run(&c, "GetAllDataV2").0 {
            Err(Error::AuthFailed {
                code,
                message,
                tracking_id,
            }) => {
                assert_eq!(code, 1003);
                assert_eq!(message, "bad token");
                assert_eq!(tracking_id.as_deref(), Some("trk-401"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(script.seen().len(), 4);
        assert_eq!(c.connection_state(), ConnectionState::AuthFailed);
        assert!(!c.has_token());
        // Not sticky: a later call tries again.
        script.reply(login_ok(TOKEN)).reply(ok_data("{}"));
        assert!(run(&c, "GetAllDataV2").0.is_ok());
    }

    #[test]
    fn expired_token_is_renewed_before_the_call() {
        let script = Script::new()
            .reply(resp(
                200,
                r#"{"success":true,"data":{"token":"tok-AAA","expireDate":"2000-01-01T00:00:00Z"}}"#,
            ))
            .reply(ok_data("{}"))
            .reply(login_ok(TOKEN2))
            .reply(ok_data("{}"))
            .reply(ok_data("{}"));
        let c = client(&script);
        assert!(run(&c, "GetAllDataV2").0.is_ok());
        // The stored token is past its refresh time: log in before calling.
        let (r, log) = run(&c, "GetAllDataV2");
        assert!(r.is_ok());
        assert_eq!(log[0].endpoint, "LoginV2");
        // The new one is good for centuries.
        let (r, log) = run(&c, "GetAllDataV2");
        assert!(r.is_ok());
        assert_eq!(log.len(), 1);
        assert_eq!(
            script.seen()[4].header("authorization"),
            Some("Bearer tok-BBB")
        );
    }

    #[test]
    fn token_lifetime_follows_the_server_clock() {
        // The server's clock says 2000; its token lives one hour from then.
        // A device clock far ahead must not make it look expired.
        let script = Script::new()
            .reply(with_header(
                resp(
                    200,
                    r#"{"token":"tok-AAA","expireDate":"2000-01-01T01:00:00Z"}"#,
                ),
                "Date",
                "Sat, 01 Jan 2000 00:00:00 GMT",
            ))
            .reply(ok_data("{}"))
            .reply(ok_data("{}"));
        let c = client(&script);
        assert!(run(&c, "GetAllDataV2").0.is_ok());
        let (r, log) = run(&c, "GetAllDataV2");
        assert!(r.is_ok());
        assert_eq!(log.len(), 1, "{log:?}");
    }

    #[test]
    fn refresh_time_bounds() {
        let now = DateTime::parse_from_rfc3339("2025-01-15T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let h = chrono::Duration::hours(1);
        let margin = Duration::from_secs(60);
        assert_eq!(
            refresh_time(now + h, None, now, margin),
            Some(now + h - chrono::Duration::seconds(60))
        );
        // Short-lived token: margin is at most half its life.
        assert_eq!(
            refresh_time(now + chrono::Duration::seconds(10), None, now, margin),
            Some(now + chrono::Duration::seconds(5))
        );
        assert_eq!(refresh_time(now - h, None, now, margin), Some(now));
        // Skewed device clock: lifetime measured on the server's clock.
        assert_eq!(
            refresh_time(now + h, Some(now), now + h * 24, margin),
            Some(now + h * 25 - chrono::Duration::seconds(60))
        );
    }

    #[test]
    fn expire_date_formats() {
        for text in [
            "2025-01-15T12:00:00Z",
            "2025-01-15T15:30:00+03:30",
            "2025-01-15T12:00:00",
            "2025-01-15T12:00:00.1234567",
            "2025-01-15 12:00:00",
        ] {
            let t = parse_expire_date(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                t.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "2025-01-15T12:00:00"
            );
        }
        assert_eq!(parse_expire_date("tomorrow"), None);
    }

    fn after_login(response: HttpResponse) -> (Result<Reply>, Vec<CallRecord>, Arc<Script>) {
        let script = Script::new().reply(login_ok(TOKEN)).reply(response);
        let c = client(&script);
        let (r, log) = run(&c, "SaveAllDataV2");
        assert_eq!(script.left(), 0, "a non-retryable answer was retried");
        (r, log, script)
    }

    #[test]
    fn conflict_2002_lists_the_records() {
        for status in [400, 200] {
            let (r, log, _) = after_login(resp(
                status,
                r#"{"success":false,"code":2002,"message":"stale","extra":1,"data":{"errors":[
                    {"entity":"orders","clientId":100,"id":777,"field":null,"code":2002,
                     "message":"rowVersion 5 < 9","serverRecord":{"orderId":777,"rowVersion":9}},
                    "garbage"]}}"#,
            ));
            match r {
                Err(Error::Conflict {
                    message,
                    errors,
                    tracking_id,
                }) => {
                    assert_eq!(message, "stale");
                    assert_eq!(errors.len(), 1);
                    assert_eq!(errors[0].entity.as_deref(), Some("orders"));
                    assert_eq!(errors[0].client_id, Some(100));
                    assert_eq!(errors[0].id, Some(777));
                    assert_eq!(
                        errors[0].server_record,
                        Some(serde_json::json!({"orderId":777,"rowVersion":9}))
                    );
                    assert_eq!(tracking_id, Some(format!("trk-{status}")));
                }
                other => panic!("{other:?}"),
            }
            assert!(log[1].error.as_deref().unwrap().contains("conflict"));
        }
    }

    #[test]
    fn integrity_and_validation_errors_are_rejections() {
        for (status, code) in [
            (400, 2001),
            (200, 2001),
            (400, 3001),
            (200, 3001),
            (400, 4711),
        ] {
            let (r, _, _) = after_login(resp(
                status,
                &format!(
                    r#"{{"success":false,"code":{code},"message":"bad","data":{{"errors":[{{"entity":"orders","clientId":100,"field":"customerId","code":{code}}}]}}}}"#
                ),
            ));
            match r {
                Err(Error::Rejected {
                    status: s,
                    code: c,
                    message,
                    errors,
                    tracking_id,
                }) => {
                    assert_eq!((s, c), (status, code));
                    assert_eq!(message, "bad");
                    assert_eq!(errors.len(), 1);
                    assert_eq!(errors[0].field.as_deref(), Some("customerId"));
                    assert!(tracking_id.is_some());
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn rejection_without_errors_or_message() {
        let (r, _, _) = after_login(resp(400, r#"{"success":false,"code":"3001"}"#));
        match r {
            Err(Error::Rejected {
                status,
                code,
                errors,
                message,
                ..
            }) => {
                assert_eq!((status, code), (400, 3001));
                assert!(errors.is_empty());
                assert!(!message.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // A bare list as data is taken as the errors list.
        let (r, _, _) = after_login(resp(
            200,
            r#"{"success":false,"code":3001,"message":"m","data":[{"field":"x"}]}"#,
        ));
        assert!(matches!(r, Err(Error::Rejected { errors, .. }) if errors.len() == 1));
    }

    #[test]
    fn http_400_with_a_non_json_body_is_rejected_with_code_0() {
        let (r, _, _) = after_login(resp(400, "Bad Request\r\n"));
        match r {
            Err(Error::Rejected {
                status,
                code,
                message,
                errors,
                ..
            }) => {
                assert_eq!((status, code), (400, 0));
                assert!(message.contains("Bad Request"), "{message}");
                assert!(errors.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_codes_on_a_call_are_auth_failed() {
        let (r, _, _) = after_login(resp(200, r#"{"success":false,"code":1001}"#));
        assert!(matches!(r, Err(Error::AuthFailed { code: 1001, .. })));
    }

    #[test]
    fn success_2xx_that_is_not_an_envelope_is_a_protocol_error() {
        for body in [
            "<html>oops</html>",
            r#"{"data":{}}"#,
            r#"[1,2]"#,
            r#"{"success":true,"data":{"orders":]"#,
        ] {
            let (r, log, _) = after_login(resp(200, body));
            assert!(matches!(r, Err(Error::Protocol { .. })), "{body}: {r:?}");
            assert!(log[1].error.is_some());
        }
    }

    /// Where the answer's shape is not known (the real server's disputes
    /// and uploads), a 2xx that is empty, JSON or a short plain text is a
    /// success; a web page, broken or cut-short JSON, a long text or a text
    /// that speaks of a failure is not.
    #[test]
    fn an_answer_of_unknown_shape_is_a_success_when_empty_json_or_short_text() {
        let call = |response: HttpResponse| {
            let script = Script::new().reply(login_ok(TOKEN)).reply(response);
            let c = client(&script);
            let out = Outgoing {
                lenient_answer: true,
                ..Outgoing::json(b"{}")
            };
            let r = c.call_with("SolveDispute", &out, CallKind::Save, &mut |_| {});
            (r, script.left())
        };
        for (body, data) in [
            ("", "null"),
            ("  \r\n", "null"),
            ("true", "true"),
            (r#"{"Saved":3}"#, r#"{"Saved":3}"#),
            ("OK", r#""OK""#),
            ("\u{feff} Done \n", r#""Done""#),
            ("ثبت شد", r#""ثبت شد""#),
        ] {
            let (r, left) = call(resp(200, body));
            let reply = r.unwrap_or_else(|e| panic!("{body:?}: {e:?}"));
            assert!(reply.success, "{body:?}");
            assert_eq!(reply.data, data, "{body:?}");
            assert_eq!(left, 0);
        }
        let long = "x".repeat(PLAIN_ANSWER_MAX + 1);
        for response in [
            resp(200, "<html><body>Sign in to the hotel Wi-Fi</body></html>"),
            with_header(
                resp(200, "Sign in"),
                "Content-Type",
                "text/html; charset=utf-8",
            ),
            resp(200, r#"{"Saved":"#),
            resp(200, "[1, 2"),
            resp(200, &long),
            resp(200, "Error: the file is too large"),
            resp(200, "System.NullReferenceException at Upload"),
            resp(200, "خطا در ثبت"),
        ] {
            let body = String::from_utf8_lossy(&response.body).into_owned();
            let (r, _) = call(response);
            assert!(r.is_err(), "{body:?}: {r:?}");
        }
    }

    #[test]
    fn a_save_whose_answer_was_cut_short_is_in_doubt_whatever_its_status() {
        for (status, body) in [
            (400, r#"{"code":2002,"data":{"errors":[{"entity":"orders""#),
            (200, r#"{"Result":true,"Data":{"Objects":"#),
            (200, ""),
        ] {
            let script = Script::new()
                .reply(login_ok(TOKEN))
                .reply(resp(status, body));
            let c = client(&script);
            let r = c.call_as("SaveAllDataV2", b"{}", CallKind::Save, &mut |_| {});
            assert!(
                matches!(&r, Err(Error::InDoubt { message, .. }) if message.contains("cut short")),
                "{status} {body}: {r:?}"
            );
            assert_eq!(script.left(), 0, "never sent twice");
        }
    }

    #[test]
    fn a_2xx_answer_cut_short_is_asked_again_then_offline() {
        for body in [
            r#"{"success":true,"data":{"orders":"#,
            "\u{feff}{\"Data\": [1, ",
        ] {
            let script = Script::new().reply(login_ok(TOKEN));
            for _ in 0..fast_policy().attempts() {
                script.reply(resp(200, body));
            }
            let (r, log) = run(&client(&script), "GetAllDataV2");
            assert_eq!(script.left(), 0, "asked again up to the attempts");
            assert!(
                matches!(&r, Err(Error::Offline { message, .. }) if message.contains("cut short")),
                "{body}: {r:?}"
            );
            let cut = log
                .iter()
                .filter(|l| l.error.as_deref() == Some("the answer was cut short"))
                .count();
            assert!(cut > 1, "asked again: {log:?}");
        }
    }

    #[test]
    fn envelope_tolerance() {
        // Missing message and code, unknown fields, BOM, PascalCase, no data.
        let (r, _, _) = after_login(resp(200, "\u{feff}{\"success\":true,\"x\":[1]}"));
        assert_eq!(r.unwrap().data.as_str(), "null");
        let (r, _, _) = after_login(resp(
            201,
            r#"{"Success":true,"Code":0,"Message":null,"Data":{"a":[1, 2]}}"#,
        ));
        let reply = r.unwrap();
        assert_eq!(reply.data.as_str(), r#"{"a":[1, 2]}"#);
        assert_eq!(reply.status, 201);
        let (r, _, _) = after_login(resp(
            200,
            r#"{"success":false,"code":3001,"message":{"field":"x"}}"#,
        ));
        assert!(matches!(r, Err(Error::Rejected { message, .. }) if message.contains("field")));
    }

    #[test]
    fn transient_5xx_is_retried_with_the_same_body() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(resp(503, "<html><body>Service Unavailable</body>"))
            .reply(resp(502, r#"{"success":false,"mess"#))
            .reply(ok_data("{}"));
        let c = client(&script);
        let (r, log) = run(&c, "SaveAllDataV2");
        assert!(r.is_ok());
        let seen = script.seen();
        assert_eq!(seen.len(), 4);
        assert!(seen[1..].iter().all(|s| s.body == seen[1].body));
        let attempts: Vec<_> = log[1..].iter().map(|r| (r.attempt, r.status)).collect();
        assert_eq!(attempts, [(1, Some(503)), (2, Some(502)), (3, Some(200))]);
        assert!(log[1].error.is_some() && log[3].error.is_none());
        assert_eq!(c.connection_state(), ConnectionState::Online);
        let retries: Vec<_> = log.iter().map(|r| r.retry).collect();
        let again = Some(RetryCause::ServerError);
        assert_eq!(retries, [None, again, again, None]);
        assert!(log[1..]
            .iter()
            .all(|r| r.sent_bytes == seen[1].body.len() as u64));
        assert_eq!(log[3].received_bytes, log[3].wire_received_bytes);
    }

    #[test]
    fn exhausted_5xx_is_a_server_error() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(resp(500, ""))
            .reply(resp(504, "gateway timeout"))
            .reply(resp(
                503,
                r#"{"success":false,"code":0,"message":"maintenance"}"#,
            ));
        let c = client(&script);
        let (r, log) = run(&c, "SaveAllDataV2");
        match r {
            Err(Error::Server {
                status,
                message,
                tracking_id,
            }) => {
                assert_eq!(status, 503);
                assert!(message.contains("maintenance"), "{message}");
                assert_eq!(tracking_id.as_deref(), Some("trk-503"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(log.len(), 4);
        assert!(matches!(
            c.connection_state(),
            ConnectionState::Offline {
                next_attempt: Some(_)
            }
        ));
    }

    #[test]
    fn non_transient_5xx_is_not_retried() {
        let (r, _, _) = after_login(resp(501, ""));
        assert!(matches!(r, Err(Error::Server { status: 501, .. })));
    }

    #[test]
    fn transport_errors_are_retried_then_offline() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(resp(503, ""))
            .fail(TransportErrorKind::Io)
            .fail(TransportErrorKind::Timeout);
        let c = client(&script);
        let (r, log) = run(&c, "GetAllDataV2");
        match r {
            Err(Error::Offline {
                message,
                retry_after,
                tracking_id,
            }) => {
                assert!(message.contains("Timeout"), "{message}");
                let retry_after = retry_after.unwrap();
                assert!(retry_after >= Duration::from_millis(1));
                assert!(retry_after <= Duration::from_millis(4));
                // The last response that came back named this one.
                assert_eq!(tracking_id.as_deref(), Some("trk-503"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(log.len(), 4);
        assert_eq!(log[3].status, None);
        assert_eq!(log[3].attempt, 3);
        assert!(log[3].error.is_some());
        assert!(matches!(
            c.connection_state(),
            ConnectionState::Offline { .. }
        ));
        // Back online on the next response.
        script.reply(ok_data("{}"));
        assert!(run(&c, "GetAllDataV2").0.is_ok());
        assert_eq!(c.connection_state(), ConnectionState::Online);
    }

    #[test]
    fn login_is_retried_on_transient_failures() {
        let script = Script::new()
            .fail(TransportErrorKind::Connect)
            .reply(resp(502, ""))
            .reply(login_ok(TOKEN))
            .reply(ok_data("{}"));
        let (r, log) = run(&client(&script), "GetAllDataV2");
        assert!(r.is_ok());
        let login_attempts: Vec<_> = log
            .iter()
            .filter(|r| r.endpoint == "LoginV2")
            .map(|r| r.attempt)
            .collect();
        assert_eq!(login_attempts, [1, 2, 3]);
    }

    #[test]
    fn rate_limit_honours_retry_after() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(with_header(resp(429, ""), "Retry-After", "0"))
            .reply(with_header(
                resp(429, "<html>slow down"),
                "retry-after",
                "Thu, 01 Jan 1970 00:00:00 GMT",
            ))
            .reply(ok_data("{}"));
        let (r, log) = run(&client(&script), "GetAllDataV2");
        assert!(r.is_ok());
        assert_eq!(log[1].status, Some(429));
        assert!(log[1].error.as_deref().unwrap().contains("429"));
        let retries: Vec<_> = log.iter().map(|r| r.retry).collect();
        let again = Some(RetryCause::RateLimited);
        assert_eq!(retries, [None, again, again, None]);
    }

    #[test]
    fn exhausted_rate_limit_is_rate_limited() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(resp(429, ""))
            .reply(resp(429, ""))
            .reply(with_header(resp(429, ""), "Retry-After", "1"));
        let c = client_with(
            &script,
            RetryPolicy {
                max_attempts: 3,
                ..fast_policy()
            },
        );
        match run(&c, "GetAllDataV2").0 {
            Err(Error::RateLimited {
                retry_after,
                tracking_id,
            }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(1)));
                assert_eq!(tracking_id.as_deref(), Some("trk-429"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.connection_state(), ConnectionState::Online);
    }

    #[test]
    fn retry_after_beyond_the_cap_gives_up_at_once() {
        let script = Script::new().reply(login_ok(TOKEN)).reply(with_header(
            resp(429, ""),
            "Retry-After",
            "3600",
        ));
        let (r, log) = run(&client(&script), "GetAllDataV2");
        assert!(matches!(
            r,
            Err(Error::RateLimited { retry_after: Some(d), .. }) if d == Duration::from_secs(3600)
        ));
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn shutdown_before_a_call_sends_nothing() {
        let script = Script::new();
        let c = client(&script);
        c.shutdown().trigger();
        let (r, log) = run(&c, "GetAllDataV2");
        assert!(matches!(r, Err(Error::Interrupted)));
        assert!(log.is_empty());
        assert!(script.seen().is_empty());
    }

    #[test]
    fn shutdown_interrupts_a_backoff() {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let script = Script::new().reply(login_ok(TOKEN)).then(move |_| {
            trigger.trigger();
            Ok(resp(503, ""))
        });
        let config = ClientConfig {
            retry: RetryPolicy {
                max_attempts: 2,
                // Long enough that a sleep which ignored the shutdown would
                // end in a Server error after the (unscripted) retry.
                base_delay: Duration::from_secs(600),
                max_delay: Duration::from_secs(600),
                max_retry_after: Duration::from_secs(600),
            },
            ..ClientConfig::new("http://localhost/API/v3")
        };
        let c = ApiClient::new(config, credentials(), script.clone(), shutdown).unwrap();
        let (r, _) = run(&c, "GetAllDataV2");
        assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
        assert_eq!(script.seen().len(), 2);
    }

    #[test]
    fn shutdown_sleep() {
        let s = Shutdown::new();
        assert!(!s.is_triggered());
        assert!(s.sleep(Duration::from_millis(1)).is_ok());
        assert!(s.sleep(Duration::ZERO).is_ok());
        let other = s.clone();
        let sleeper = std::thread::spawn(move || other.sleep(Duration::MAX));
        s.trigger();
        assert!(matches!(sleeper.join().unwrap(), Err(Error::Interrupted)));
        assert!(s.is_triggered());
        assert!(matches!(s.sleep(Duration::ZERO), Err(Error::Interrupted)));
        assert_eq!(format!("{s:?}"), "Shutdown { triggered: true }");
    }

    #[test]
    fn forget_token_logs_in_again() {
        let script = Script::new()
            .reply(login_ok(TOKEN))
            .reply(ok_data("{}"))
            .reply(login_ok(TOKEN2))
            .reply(ok_data("{}"));
        let c = client(&script);
        assert!(run(&c, "GetAllDataV2").0.is_ok());
        assert!(c.has_token());
        c.forget_token();
        assert!(!c.has_token());
        assert_eq!(c.connection_state(), ConnectionState::Unknown);
        assert!(run(&c, "GetAllDataV2").0.is_ok());
        assert_eq!(
            script.seen()[3].header("authorization"),
            Some("Bearer tok-BBB")
        );
    }

    #[test]
    fn explicit_login() {
        let script = Script::new().reply(login_ok(TOKEN));
        let c = client(&script);
        let mut log = Vec::new();
        c.login(&mut |r| log.push(r)).unwrap();
        assert!(c.has_token());
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn bad_endpoint_names_are_refused() {
        let script = Script::new();
        let c = client(&script);
        for e in ["", "a/b", "x?y=1", "../LoginV2", "a b"] {
            assert!(matches!(run(&c, e).0, Err(Error::Config(_))), "{e}");
        }
        assert!(script.seen().is_empty());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let creds = credentials();
        let text = format!("{creds:?}");
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(text.contains("<redacted>") && text.contains("user1"));
        let token = Token {
            value: TOKEN.into(),
            refresh_at: None,
        };
        assert!(!format!("{token:?}").contains(TOKEN));
        let script = Script::new().reply(login_ok(TOKEN));
        let c = client(&script);
        c.login(&mut |_| {}).unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains(TOKEN) && !text.contains(PASSWORD), "{text}");
    }
}
