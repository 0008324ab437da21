//! Handling one request: routing `{anything}/Sync/<Name>` and the admin
//! prefix, injected faults, login, bearer-token checks, rate limiting, the
//! response envelope, the `Trackingid` header and the request log. Pull and
//! save themselves live in `pull.rs` and `save.rs`.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use crate::auth;
use crate::faults::{Fault, FaultBody, RetryAfter};
use crate::pull::{self, BadPull};
use crate::save::{self, Saved, CODE_VALIDATION};
use crate::{
    Outcome, RefServer, RequestLog, CODE_BAD_CREDENTIALS, CODE_BAD_DATABASE, CODE_BAD_TOKEN,
};
use rowsync::{HttpRequest, HttpResponse};

/// The data endpoints served (besides the two logins).
const KNOWN: &[&str] = &[
    "GetAllDataV2",
    "GetAllData",
    "SaveAllDataV2",
    "SaveAllData",
    "SolveOrderDispute",
    "SolveDispute",
    "Upload",
];

/// The reply being built, before faults that act after handling.
pub(crate) struct Reply {
    pub status: u16,
    pub code: Option<i64>,
    pub outcome: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply with this body text.
    pub fn json(status: u16, code: Option<i64>, outcome: impl Into<String>, body: String) -> Self {
        Reply {
            status,
            code,
            outcome: outcome.into(),
            headers: vec![(
                "Content-Type".to_string(),
                "application/json; charset=utf-8".to_string(),
            )],
            body: body.into_bytes(),
        }
    }

    /// A success envelope around the `data` JSON text.
    pub fn ok_raw(data: &str) -> Self {
        Reply::json(
            200,
            Some(0),
            "ok",
            format!("{{\"success\":true,\"code\":0,\"message\":\"\",\"data\":{data}}}"),
        )
    }

    /// A success envelope around `data`.
    pub fn ok(data: Value) -> Self {
        Reply::ok_raw(&data.to_string())
    }

    /// A failure envelope.
    pub fn fail(status: u16, code: i64, message: &str, data: Value) -> Self {
        let body = json!({"success": false, "code": code, "message": message, "data": data});
        let outcome = if status < 500 {
            format!("rejected {code}: {message}")
        } else {
            format!("error {code}: {message}")
        };
        Reply::json(status, Some(code), outcome, body.to_string())
    }

    fn into_response(self, tracking_id: &str) -> HttpResponse {
        let mut headers = self.headers;
        headers.push(("Trackingid".to_string(), tracking_id.to_string()));
        HttpResponse {
            status: self.status,
            headers,
            body: self.body,
            wire_bytes: None,
        }
    }
}

/// The path part of a URL (no scheme, host, query or fragment).
fn path_of(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            after.find('/').map_or("/", |j| &after[j..])
        }
        None => url,
    };
    rest.split(['?', '#']).next().unwrap_or("")
}

enum Route<'a> {
    Sync(&'a str),
    Admin(&'a str),
    Unknown(&'a str),
}

fn route(path: &str) -> Route<'_> {
    let lower = path.to_ascii_lowercase();
    if let Some(i) = lower.rfind("/sync/") {
        return Route::Sync(path[i + 6..].trim_end_matches('/'));
    }
    if let Some(i) = lower.find("/admin/") {
        return Route::Admin(path[i + 7..].trim_end_matches('/'));
    }
    if lower.ends_with("/admin") {
        return Route::Admin("");
    }
    Route::Unknown(path)
}

fn retry_after_value(form: RetryAfter) -> String {
    match form {
        RetryAfter::Seconds(s) => s.to_string(),
        RetryAfter::HttpDate(s) => {
            httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(s))
        }
    }
}

fn rate_limited(form: RetryAfter, mahak: bool) -> Reply {
    let mut r = if mahak {
        crate::mahak::fail(429, "too many requests")
    } else {
        Reply::fail(429, 429, "too many requests", Value::Null)
    };
    r.headers
        .push(("Retry-After".to_string(), retry_after_value(form)));
    r
}

fn fault_reply(status: u16, body: FaultBody, mahak: bool) -> Reply {
    let (content_type, text) = match body {
        FaultBody::Empty => ("text/plain", String::new()),
        FaultBody::Html => (
            "text/html",
            format!(
                "<html><head><title>{status} Service Unavailable</title></head>\
                 <body><h1>{status}</h1><p>The server is temporarily unable to service \
                 your request.</p></body></html>"
            ),
        ),
        FaultBody::TruncatedJson if mahak => (
            "application/json; charset=utf-8",
            "{\"Result\":false,\"Message\":\"Internal serv".to_string(),
        ),
        FaultBody::TruncatedJson => (
            "application/json; charset=utf-8",
            "{\"success\":false,\"code\":500,\"message\":\"Internal serv".to_string(),
        ),
        FaultBody::Envelope if mahak => (
            "application/json; charset=utf-8",
            json!({"Result": false, "Message": "injected failure", "Data": null}).to_string(),
        ),
        FaultBody::Envelope => (
            "application/json; charset=utf-8",
            json!({"success": false, "code": status, "message": "injected failure", "data": null})
                .to_string(),
        ),
    };
    Reply {
        status,
        code: None,
        outcome: format!("injected {status}"),
        headers: vec![("Content-Type".to_string(), content_type.to_string())],
        body: text.into_bytes(),
    }
}

fn bad_token(message: &str) -> Reply {
    Reply::fail(401, CODE_BAD_TOKEN, message, Value::Null)
}

/// A query parameter of `url`, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.eq_ignore_ascii_case(name)
            .then(|| crate::tasks::percent_decode(v))
    })
}

/// Looks a field up case-insensitively (`databaseId` or `DatabaseId`).
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// An integer, or a string holding one.
pub(crate) fn as_int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl RefServer {
    /// Handles one request: the whole protocol, faults included. Never
    /// panics on any input.
    pub fn handle(&self, req: &HttpRequest) -> Outcome {
        let started = Instant::now();
        let tracking_id = self.next_tracking_id();
        let path = path_of(&req.url);
        let mut entry = RequestLog {
            tracking_id: tracking_id.clone(),
            method: req.method.clone(),
            endpoint: path.to_string(),
            counts: Vec::new(),
            status: None,
            code: None,
            outcome: String::new(),
            fault: None,
            elapsed: Duration::ZERO,
        };
        let outcome = self.dispatch(req, path, &mut entry, &tracking_id);
        entry.elapsed = started.elapsed();
        self.record(entry);
        outcome
    }

    fn dispatch(
        &self,
        req: &HttpRequest,
        path: &str,
        entry: &mut RequestLog,
        tracking_id: &str,
    ) -> Outcome {
        // Picture files are public: no token, no envelope.
        if let Some(file) = crate::pictures::file_of(path) {
            return crate::pictures::serve(self, req, &file, entry);
        }
        let name = match route(path) {
            Route::Sync(name) => name,
            Route::Admin(rest) => {
                entry.endpoint = format!("admin/{rest}");
                let reply = if self.config().admin {
                    crate::admin::handle_http(self, &req.method, rest, &req.body)
                } else {
                    Reply::fail(404, 404, "the admin interface is disabled", Value::Null)
                };
                return self.finish(reply, entry, tracking_id, None);
            }
            Route::Unknown(p) => {
                let reply = Reply::fail(404, 404, &format!("no endpoint at `{p}`"), Value::Null);
                return self.finish(reply, entry, tracking_id, None);
            }
        };
        entry.endpoint = name.to_string();
        // A renamed endpoint answers under its new name only.
        let renamed = self.config().renamed;
        let canonical: String;
        let name = if let Some((_, to)) = renamed
            .iter()
            .find(|(served, _)| served.eq_ignore_ascii_case(name))
        {
            canonical = to.clone();
            canonical.as_str()
        } else if renamed.iter().any(|(_, to)| to.eq_ignore_ascii_case(name)) {
            let reply = Reply::fail(404, 404, &format!("no endpoint `{name}` here"), Value::Null);
            return self.finish(reply, entry, tracking_id, None);
        } else {
            name
        };
        let is_login = name.eq_ignore_ascii_case("LoginV2") || name.eq_ignore_ascii_case("Login");

        let mahak = self.mahak.is_some();
        let stalled = mahak && self.config().stall_pulls && name.eq_ignore_ascii_case("GetAllData");
        let fault = if stalled {
            Some(Fault::StallResponse)
        } else {
            self.faults.next(name, is_login)
        };
        entry.fault = fault.as_ref().map(Fault::name);
        match fault {
            Some(Fault::Status(status, body)) => {
                return self.finish(fault_reply(status, body, mahak), entry, tracking_id, None)
            }
            Some(Fault::RateLimit { retry_after }) => {
                return self.finish(rate_limited(retry_after, mahak), entry, tracking_id, None)
            }
            Some(Fault::DropBeforeResponse) => {
                entry.outcome = "dropped before response".to_string();
                return Outcome::DropConnection;
            }
            Some(Fault::ExpireToken) => {
                return self.finish(self.bad_token("token expired"), entry, tracking_id, None)
            }
            Some(Fault::Latency(d)) => std::thread::sleep(d),
            _ => {}
        }

        let reply = if !req.method.eq_ignore_ascii_case("POST") {
            self.refuse(
                405,
                405,
                &format!("{} is not allowed: use POST", req.method),
            )
        } else if req.body.len() > self.config().max_body_bytes
            && !name.eq_ignore_ascii_case("Upload")
        {
            let message = format!(
                "request body too large: more than {} bytes",
                self.config().max_body_bytes
            );
            if mahak {
                // A business failure, as the real server answers one.
                crate::mahak::fail(200, &message)
            } else {
                Reply::fail(400, CODE_VALIDATION, &message, Value::Null)
            }
        } else if is_login && mahak {
            crate::mahak::login(self, &req.body)
        } else if is_login {
            self.login(name.eq_ignore_ascii_case("LoginV2"), &req.body)
        } else if !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            self.refuse(404, 404, &format!("unknown endpoint `Sync/{name}`"))
        } else {
            self.authenticated(name, req, entry)
        };
        self.finish(reply, entry, tracking_id, fault)
    }

    fn finish(
        &self,
        reply: Reply,
        entry: &mut RequestLog,
        tracking_id: &str,
        fault: Option<Fault>,
    ) -> Outcome {
        entry.status = Some(reply.status);
        entry.code = reply.code;
        entry.outcome = reply.outcome.clone();
        let response = reply.into_response(tracking_id);
        match fault {
            Some(Fault::CutResponse) => {
                entry.outcome.push_str(", response cut");
                Outcome::CutResponse(response)
            }
            Some(Fault::LoseResponseAfterApply) => {
                entry.outcome.push_str(", response lost");
                entry.status = None;
                Outcome::DropConnection
            }
            Some(Fault::StallResponse) => {
                entry.outcome.push_str(", response stalled");
                Outcome::StallResponse(response)
            }
            _ => Outcome::Respond(response),
        }
    }

    fn login(&self, v2: bool, body: &[u8]) -> Reply {
        let obj = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                return Reply::fail(
                    400,
                    CODE_VALIDATION,
                    "the body must be a JSON object",
                    Value::Null,
                )
            }
            Err(e) => {
                return Reply::fail(
                    400,
                    CODE_VALIDATION,
                    &format!("malformed JSON: {e}"),
                    Value::Null,
                )
            }
        };
        let config = self.config();
        let database_id = as_int(field(&obj, "databaseId"));
        let package_number = as_int(field(&obj, "packageNumber"));
        if database_id != Some(config.database_id) || package_number != Some(config.package_number)
        {
            return Reply::fail(
                401,
                CODE_BAD_DATABASE,
                "unknown databaseId or packageNumber",
                Value::Null,
            );
        }
        let user = field(&obj, "username").and_then(Value::as_str);
        let pass = field(&obj, "password").and_then(Value::as_str);
        let Some(user) = user.filter(|u| {
            config
                .users
                .iter()
                .any(|(n, p)| n == u && Some(p.as_str()) == pass)
        }) else {
            return Reply::fail(
                401,
                CODE_BAD_CREDENTIALS,
                "wrong username or password",
                Value::Null,
            );
        };
        match auth::issue(&config.jwt_secret, user, config.token_ttl, self.next_seq()) {
            Ok(t) => {
                let data = json!({"token": t.token, "expireDate": t.expire_date});
                if v2 && config.bare_login {
                    Reply::json(200, None, "ok (bare)", data.to_string())
                } else {
                    Reply::ok(data)
                }
            }
            Err(e) => Reply::fail(500, 500, &format!("cannot sign a token: {e}"), Value::Null),
        }
    }

    /// A refusal under `status`, in the dialect's envelope (`code` only in
    /// the documented one).
    fn refuse(&self, status: u16, code: i64, message: &str) -> Reply {
        if self.mahak.is_some() {
            crate::mahak::fail(status, message)
        } else {
            Reply::fail(status, code, message, Value::Null)
        }
    }

    /// A refused token: 401, in the dialect's envelope.
    fn bad_token(&self, message: &str) -> Reply {
        if self.mahak.is_some() {
            crate::mahak::fail(401, message)
        } else {
            bad_token(message)
        }
    }

    fn authenticated(&self, name: &str, req: &HttpRequest, entry: &mut RequestLog) -> Reply {
        let config = self.config();
        let lower = name.to_ascii_lowercase();
        // The real server's upload takes its token as the `userToken` query.
        let from_query = match (self.mahak.is_some(), lower.as_str()) {
            (true, "upload") => Some(
                query_param(&req.url, "userToken")
                    .map(|t| format!("Bearer {t}"))
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        let header = match &from_query {
            Some(h) => Some(h.as_str()).filter(|h| !h.is_empty()),
            None => req.header("authorization"),
        };
        let token = match auth::check(&config.jwt_secret, header) {
            Ok(t) => t.to_string(),
            Err(why) => return self.bad_token(why.message()),
        };
        let token = token.as_str();
        let user = auth::user_of(&config.jwt_secret, token).unwrap_or_default();
        if let Some(rate) = config.rate_limit_per_sec {
            if let Err(wait) = self.limiter.admit(token, rate) {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let secs = secs.max(1);
                let form = if config.retry_after_http_date {
                    RetryAfter::HttpDate(secs)
                } else {
                    RetryAfter::Seconds(secs)
                };
                return rate_limited(form, self.mahak.is_some());
            }
        }
        let internal =
            |e: crate::ServerError| self.refuse(500, 500, &format!("internal error: {e}"));
        match lower.as_str() {
            "solveorderdispute" | "solvedispute" => {
                return crate::tasks::dispute(self, name, &req.body, entry).unwrap_or_else(internal)
            }
            "upload" => return crate::tasks::upload(self, req, entry).unwrap_or_else(internal),
            _ => {}
        }
        if let Some(schema) = &self.mahak {
            let lower = name.to_ascii_lowercase();
            let answer = if lower.starts_with("getalldata") {
                crate::mahak::pull(self, schema, &req.body, entry)
            } else {
                crate::mahak::save(self, schema, &req.body, &user, entry)
            };
            return answer.unwrap_or_else(internal);
        }
        match name.to_ascii_lowercase().as_str() {
            "getalldatav2" | "getalldata" => {
                let mut db = self.db();
                match pull::pull(&mut db, &self.catalogue, config.max_page_size, &req.body) {
                    Ok(Ok(p)) => {
                        entry.counts = p.counts;
                        Reply::ok_raw(&p.data)
                    }
                    Ok(Err(BadPull(msg))) => Reply::fail(400, CODE_VALIDATION, &msg, Value::Null),
                    Err(e) => internal(e),
                }
            }
            "savealldatav2" | "savealldata" => {
                let mut db = self.db();
                match save::save(
                    &mut db,
                    &self.catalogue,
                    config.max_records_per_save,
                    &req.body,
                ) {
                    Ok(Saved::Applied { data, counts }) => {
                        entry.counts = counts;
                        Reply::ok(Value::Object(data))
                    }
                    Ok(Saved::Rejected {
                        code,
                        message,
                        errors,
                        counts,
                    }) => {
                        entry.counts = counts;
                        let data = if config.omit_error_list {
                            Value::Null
                        } else {
                            json!({"errors": errors.iter().map(|e| e.to_json()).collect::<Vec<_>>()})
                        };
                        Reply::fail(400, code, &message, data)
                    }
                    Err(e) => internal(e),
                }
            }
            _ => Reply::fail(
                404,
                404,
                &format!("unknown endpoint `Sync/{name}`"),
                Value::Null,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_under_any_base() {
        assert_eq!(
            path_of("http://127.0.0.1:1/API/v3/Sync/LoginV2?x=1"),
            "/API/v3/Sync/LoginV2"
        );
        assert_eq!(path_of("/a/Sync/GetAllDataV2"), "/a/Sync/GetAllDataV2");
        assert!(matches!(
            route("/API/v3/Sync/LoginV2"),
            Route::Sync("LoginV2")
        ));
        assert!(matches!(
            route("/x/sync/SaveAllDataV2/"),
            Route::Sync("SaveAllDataV2")
        ));
        assert!(matches!(route("/admin/counter"), Route::Admin("counter")));
        assert!(matches!(route("/nothing"), Route::Unknown(_)));
    }
}
