//! Test helpers: a small client that talks to the reference server either
//! in-process or over real HTTP (ureq), and shorthand for envelopes.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rowsync::{HttpRequest, HttpResponse, Transport};
use rowsync_refserver::{InProcessTransport, RefServer, ServerConfig};
use serde_json::{json, Value};

/// A transport over real HTTP with ureq; any status is a response.
pub struct Http(pub ureq::Agent);

impl Http {
    pub fn new() -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Http(agent)
    }
}

impl Transport for Http {
    fn send(&self, r: &HttpRequest) -> Result<HttpResponse, rowsync::TransportError> {
        let io = |e: ureq::Error| {
            rowsync::TransportError::new(rowsync::TransportErrorKind::Io, e.to_string())
        };
        let mut req = self.0.post(&r.url);
        for (k, v) in &r.headers {
            req = req.header(k, v);
        }
        let resp = req.send(&r.body[..]).map_err(io)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp
            .into_body()
            .with_config()
            .limit(200 * 1024 * 1024)
            .read_to_vec()
            .map_err(io)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
            wire_bytes: None,
        })
    }
}

pub struct Client {
    pub transport: Box<dyn Transport>,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    pub fn in_process(server: &Arc<RefServer>) -> Self {
        Client {
            transport: Box::new(InProcessTransport(server.clone())),
            base: "http://127.0.0.1:1/API/v3".to_string(),
            token: None,
        }
    }

    pub fn http(base: &str) -> Self {
        Client {
            transport: Box::new(Http::new()),
            base: base.to_string(),
            token: None,
        }
    }

    pub fn raw(
        &self,
        name: &str,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> Result<HttpResponse, rowsync::TransportError> {
        let mut headers = vec![(
            "Content-Type".to_string(),
            "application/json; charset=utf-8".to_string(),
        )];
        if let Some(t) = token {
            headers.push(("Authorization".to_string(), format!("Bearer {t}")));
        }
        self.transport.send(&HttpRequest {
            method: "POST".to_string(),
            url: format!("{}/Sync/{name}", self.base),
            headers,
            body,
        })
    }

    /// Posts `body` with the client's token; panics on a transport error.
    pub fn post(&self, name: &str, body: Value) -> HttpResponse {
        self.raw(name, body.to_string().into_bytes(), self.token.as_deref())
            .expect("transport error")
    }

    pub fn login_as(&self, user: &str, pass: &str) -> HttpResponse {
        self.raw(
            "LoginV2",
            json!({"username": user, "password": pass, "databaseId": 1001, "packageNumber": 2002})
                .to_string()
                .into_bytes(),
            None,
        )
        .expect("transport error")
    }

    pub fn login(mut self) -> Self {
        let r = self.login_as("user1", "pass1");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = body(&r);
        let data = if v.get("data").is_some() {
            &v["data"]
        } else {
            &v
        };
        self.token = Some(data["token"].as_str().unwrap().to_string());
        self
    }
}

pub fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
}

/// Asserts an envelope with this status and code; returns it.
pub fn expect(r: &HttpResponse, status: u16, code: i64) -> Value {
    let v = body(r);
    assert_eq!(r.status, status, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["success"], code == 0, "{v}");
    assert!(
        r.tracking_id().is_some_and(|t| !t.is_empty()),
        "no Trackingid"
    );
    v
}

/// The documented dialect: the suites written for it run there.
pub fn documented() -> ServerConfig {
    ServerConfig {
        dialect: rowsync_refserver::Dialect::Documented,
        ..ServerConfig::default()
    }
}

pub fn server() -> Arc<RefServer> {
    RefServer::open(documented()).unwrap()
}

pub fn server_with(f: impl FnOnce(&mut ServerConfig)) -> Arc<RefServer> {
    let mut c = documented();
    f(&mut c);
    RefServer::open(c).unwrap()
}

/// A unique path in the temp dir.
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "rowsync-refserver-{tag}-{}-{nanos}-{n}",
        std::process::id()
    ))
}
