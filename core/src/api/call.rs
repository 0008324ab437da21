//! What one call sends and gets back, whatever its endpoint: how it may be
//! repeated ([`CallKind`]), its body and headers ([`Outgoing`]), and the
//! envelope's reply ([`Reply`]). Imports nothing above it.

/// How a call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Safe to send again after any failure (a pull, or a save the server
    /// deduplicates).
    Idempotent,
    /// A save the server does not deduplicate: once it may have reached
    /// the server, it is never repeated; a failure then is `InDoubt`. A
    /// `Result: false` answer that carries data is returned, for its
    /// per-record results.
    Save,
}

/// What a call sends. Every call but an upload sends a JSON body with the
/// bearer token; an upload (`/Sync/Upload`) sends multipart, and the real
/// server wants its token in the query as well.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The request body.
    pub body: &'a [u8],
    /// Its `Content-Type`.
    pub content_type: String,
    /// Headers besides `Content-Type`, `Accept` and `Authorization`.
    pub headers: Vec<(String, String)>,
    /// Also send the token as this query parameter (`userToken`).
    pub token_query: Option<&'static str>,
    /// The answer's shape is not known (the real server's disputes and
    /// uploads): a whole 2xx answer that is empty, JSON that is not an
    /// envelope, or a short plain text that does not speak of a failure, is
    /// a success. An envelope is read as usual; a web page is not a success.
    pub lenient_answer: bool,
    /// Read the answer into a buffer given back with
    /// `ApiClient::recycle` (pull pages), if one is there.
    pub reuse_buffer: bool,
    /// Told how many bytes of the body went out so far, as they go
    /// (uploads).
    pub progress: Option<Progress<'a>>,
}

/// A callback told the bytes of a request body sent so far.
#[derive(Clone, Copy)]
pub struct Progress<'a>(pub &'a dyn Fn(u64));

impl std::fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl<'a> Outgoing<'a> {
    /// A JSON body, the answer an envelope.
    pub fn json(body: &'a [u8]) -> Self {
        Outgoing {
            body,
            content_type: "application/json; charset=utf-8".to_string(),
            headers: Vec::new(),
            token_query: None,
            lenient_answer: false,
            reuse_buffer: false,
            progress: None,
        }
    }
}

/// A reply: `success:true`, or (for a [`CallKind::Save`]) a `Result:
/// false` that carries data.
#[derive(Debug)]
pub struct Reply {
    /// The envelope's flag.
    pub success: bool,
    /// The envelope's message, for a reply that is not a success.
    pub message: String,
    /// The envelope's `data`, its JSON text as the server wrote it (`null`
    /// when absent). A pull page's text is taken from the answer's own
    /// buffer, not copied.
    pub data: String,
    /// The response's `Trackingid` header.
    pub tracking_id: Option<String>,
    /// HTTP status.
    pub status: u16,
}
