//! The Mahak envelope, whichever dialect writes it (`success` or `Result`,
//! any case), and what an answer that was not retried means: a reply, or
//! the error the caller can act on (PROTOCOL.md sections 1-2, WIRE.md
//! section 1). Bodies may be empty, HTML or cut; none of that panics.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::call::{CallKind, Reply};
use crate::error::{Error, RecordError, Result};
use crate::record::JsonKey;
use crate::transport::HttpResponse;

pub(crate) fn tracking(response: &HttpResponse) -> Option<String> {
    response.tracking_id().map(str::to_string)
}

/// The Mahak envelope, borrowed from the body: `data` stays raw JSON text.
/// Its keys are read in any case (`Result`, `result`, `RESULT`; `success`
/// in the documented dialect); where a key comes twice, the first wins.
pub(crate) struct Envelope<'a> {
    success: bool,
    code: Option<i64>,
    message: Option<&'a RawValue>,
    data: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

/// A code as a number, a numeric string, or null (anything else: none).
struct LenientCode(Option<i64>);

impl<'de> Deserialize<'de> for LenientCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        lenient_code(d).map(LenientCode)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an envelope object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Envelope<'a>, A::Error> {
        let mut success: Option<bool> = None;
        let mut code: Option<Option<i64>> = None;
        let mut message: Option<&'a RawValue> = None;
        let mut data: Option<&'a RawValue> = None;
        while let Some(JsonKey(key)) = map.next_key::<JsonKey<'a>>()? {
            let is = |name: &str| key.eq_ignore_ascii_case(name);
            if (is("result") || is("success")) && success.is_none() {
                success = Some(map.next_value()?);
            } else if is("code") && code.is_none() {
                code = Some(map.next_value::<LenientCode>()?.0);
            } else if is("message") && message.is_none() {
                message = Some(map.next_value()?);
            } else if is("data") && data.is_none() {
                data = Some(map.next_value()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(Envelope {
            success: success.ok_or_else(|| serde::de::Error::missing_field("success"))?,
            code: code.flatten(),
            message,
            data,
        })
    }
}

/// An envelope with its message decoded.
pub(crate) struct Parsed<'a> {
    pub(crate) success: bool,
    pub(crate) code: Option<i64>,
    pub(crate) message: Cow<'a, str>,
    pub(crate) data: Option<&'a RawValue>,
}

/// Accepts a code as a number, a numeric string, or null.
pub(crate) fn lenient_code<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    Ok(lenient_int(&serde_json::Value::deserialize(d)?))
}

/// An integer the server may write as a number (a whole float too) or as
/// a numeric string; anything else is none.
pub(crate) fn lenient_int(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The value of `obj`'s key `name` in any case: the exact spelling first,
/// else the first other spelling; a null counts as absent, so a key given
/// both null and not in two cases reads as the one that is not.
pub(crate) fn get_ci<'v>(
    obj: &'v serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'v serde_json::Value> {
    match obj.get(name) {
        Some(v) if !v.is_null() => Some(v),
        _ => obj
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_null())
            .map(|(_, v)| v),
    }
}

pub(crate) fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// Parses an envelope; `Err` holds serde's message (which names positions,
/// never content).
pub(crate) fn parse_envelope(body: &[u8]) -> std::result::Result<Parsed<'_>, String> {
    let envelope: Envelope<'_> =
        serde_json::from_slice(strip_bom(body)).map_err(|e| e.to_string())?;
    let message = match envelope.message {
        None => Cow::Borrowed(""),
        Some(raw) => match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
            Ok(text) => text,
            Err(_) if raw.get() == "null" => Cow::Borrowed(""),
            // A message that is an object or a list: keep its JSON text.
            Err(_) => Cow::Borrowed(raw.get()),
        },
    };
    Ok(Parsed {
        success: envelope.success,
        code: envelope.code,
        message,
        data: envelope.data.filter(|d| d.get() != "null"),
    })
}

pub(crate) fn parse_lenient(body: &[u8]) -> Option<Parsed<'_>> {
    parse_envelope(body).ok()
}

/// A 401, or a `success:false` envelope with code 1003 (token missing,
/// invalid or expired) under any status.
pub(crate) fn is_token_refusal(status: u16, envelope: Option<&Parsed<'_>>) -> bool {
    status == 401 || matches!(envelope, Some(e) if !e.success && e.code == Some(1003))
}

/// A short description of a 5xx body for logs and `Error::Server`: the
/// envelope's message when there is one, else just the status (bodies may be
/// empty, HTML or cut; none of that is an error).
pub(crate) fn server_message(response: &HttpResponse) -> String {
    match parse_lenient(&response.body) {
        Some(e) if !e.message.is_empty() => format!("HTTP {}: {}", response.status, e.message),
        _ => format!("HTTP {}", response.status),
    }
}

/// The first 200 characters of a non-JSON body, for error messages about
/// endpoints other than login.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(800)]);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    text.trim().to_string()
}

/// The `errors` list of a failure's `data`: `{ "errors": [...] }`, or the
/// list itself. Elements that do not parse are skipped; no list is empty.
pub(crate) fn record_errors(data: Option<&RawValue>) -> Vec<RecordError> {
    #[derive(Deserialize)]
    struct WithErrors<'a> {
        #[serde(default, alias = "Errors", borrow)]
        errors: Option<Vec<&'a RawValue>>,
    }
    let Some(data) = data else {
        return Vec::new();
    };
    let items: Vec<&RawValue> = match serde_json::from_str::<WithErrors<'_>>(data.get()) {
        Ok(w) => w.errors.unwrap_or_default(),
        Err(_) => serde_json::from_str::<Vec<&RawValue>>(data.get()).unwrap_or_default(),
    };
    items
        .into_iter()
        .filter_map(|item| serde_json::from_str::<RecordError>(item.get()).ok())
        .collect()
}

/// Maps a failure envelope (or a 4xx one) to its error.
pub(crate) fn failure(status: u16, envelope: &Parsed<'_>, tracking_id: Option<String>) -> Error {
    let code = envelope.code.unwrap_or(0);
    let message = if envelope.message.is_empty() {
        format!("HTTP {status}, code {code}")
    } else {
        envelope.message.to_string()
    };
    match code {
        1001 | 1002 => Error::AuthFailed {
            code,
            message,
            tracking_id,
        },
        2002 => Error::Conflict {
            message,
            errors: record_errors(envelope.data),
            tracking_id,
        },
        _ => Error::Rejected {
            status,
            code,
            message,
            errors: record_errors(envelope.data),
            tracking_id,
        },
    }
}

/// Where `data` lies in the answer's `body`: its text is filled in by
/// [`Reply::with_data`] once the borrows of the body are over.
pub(crate) type DataSpan = Option<std::ops::Range<usize>>;

/// [`interpret`] of a whole response, with the reply's `data` filled in.
pub(crate) fn interpret_reply(mut response: HttpResponse, kind: CallKind) -> Result<Reply> {
    let result = interpret(&response, parse_envelope(&response.body), kind);
    result.map(|(reply, span)| reply.with_data(&mut response.body, span))
}

/// The byte range of `inner` inside `outer`, when `inner` is a slice of it
/// (text parsed out of a buffer without copying), so the buffer can be
/// moved or cut while the range stays valid.
pub(crate) fn span_within(outer: &[u8], inner: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    let end = start.checked_add(inner.len())?;
    (outer.get(start..end)?.as_ptr() == inner.as_ptr()).then_some(start..end)
}

impl Reply {
    /// This reply with `data` set to the text at `span` of `body` (`null`
    /// without one). The text is cut out of `body` in place and `body` is
    /// left empty: a pull page of many megabytes is never held twice.
    pub(crate) fn with_data(mut self, body: &mut Vec<u8>, span: DataSpan) -> Reply {
        self.data = match span {
            Some(span) => {
                let mut text = std::mem::take(body);
                text.truncate(span.end);
                text.drain(..span.start);
                String::from_utf8(text)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            }
            None => "null".to_string(),
        };
        self
    }
}

/// Interprets a response that the retry loop did not retry (anything but
/// 429, 5xx-transient and, for calls, token refusals). A reply's `data` is
/// left empty and its place in the body returned beside it.
pub(crate) fn interpret(
    response: &HttpResponse,
    parsed: std::result::Result<Parsed<'_>, String>,
    kind: CallKind,
) -> Result<(Reply, DataSpan)> {
    let status = response.status;
    let tracking_id = tracking(response);
    match status {
        200..=299 => match parsed {
            Ok(envelope)
                if envelope.success || (kind == CallKind::Save && envelope.data.is_some()) =>
            {
                let span = envelope
                    .data
                    .and_then(|d| span_within(&response.body, d.get().as_bytes()));
                Ok((
                    Reply {
                        success: envelope.success,
                        message: envelope.message.into_owned(),
                        data: String::new(),
                        tracking_id,
                        status,
                    },
                    span,
                ))
            }
            Ok(envelope) => Err(failure(status, &envelope, tracking_id)),
            // A save whose answer cannot be read may still have been applied.
            Err(why) if kind == CallKind::Save => Err(Error::InDoubt {
                message: format!("HTTP {status} body is not a Mahak envelope: {why}"),
                tracking_id,
            }),
            Err(why) => Err(Error::Protocol {
                collection: None,
                message: format!("HTTP {status} body is not a Mahak envelope: {why}"),
                tracking_id,
            }),
        },
        400..=499 => match parsed.ok() {
            Some(envelope) => Err(failure(status, &envelope, tracking_id)),
            None => Err(Error::Rejected {
                status,
                code: 0,
                message: match snippet(&response.body) {
                    s if s.is_empty() => format!("HTTP {status}"),
                    s => format!("HTTP {status}: {s}"),
                },
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
            message: match response.header("location") {
                Some(location) => format!("unexpected HTTP {status} (to {location})"),
                None => format!("unexpected HTTP {status}"),
            },
            tracking_id,
        }),
    }
}

/// True when an answer was cut short: JSON that ends before its last value
/// closed (rather than malformed JSON), or no body at all where a success
/// always has one. An error status with no body is just that.
pub(crate) fn is_cut_short(response: &HttpResponse) -> bool {
    let body = &response.body;
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return (200..300).contains(&response.status);
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err_and(|e| e.is_eof())
}

/// The longest plain-text answer taken as a success where the answer has no
/// known shape.
pub(crate) const PLAIN_ANSWER_MAX: usize = 4096;

/// A whole 2xx answer to a call whose answer has no known shape, that is
/// not an envelope: empty, any other JSON, or a short plain text (`OK`;
/// kept as a JSON string). `None` for an envelope (read as usual), an error
/// status, an answer cut short, or a web page (a proxy's or a portal's
/// page says nothing of the server).
pub(crate) fn lenient_success(response: &HttpResponse) -> Option<Reply> {
    if !(200..300).contains(&response.status) {
        return None;
    }
    let body = &response.body;
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let data = if body.iter().all(u8::is_ascii_whitespace) {
        "null".to_string()
    } else {
        if parse_envelope(body).is_ok() {
            return None;
        }
        match serde_json::from_slice::<&RawValue>(body) {
            Ok(raw) => raw.get().to_string(),
            Err(_) => serde_json::to_string(plain_text(response, body)?).ok()?,
        }
    };
    Some(Reply {
        success: true,
        message: String::new(),
        data,
        tracking_id: tracking(response),
        status: response.status,
    })
}

/// A body that reads as a short plain text: UTF-8, not HTML by its type or
/// its first character, and not the start of JSON (JSON that did not parse
/// was cut short or is broken).
pub(crate) fn plain_text<'a>(response: &HttpResponse, body: &'a [u8]) -> Option<&'a str> {
    let html = response
        .header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().contains("html"));
    let text = std::str::from_utf8(body).ok()?.trim();
    let json_like = text.starts_with(['<', '{', '[', '"']);
    // A text that says something failed is not taken for a success: the
    // task is parked with it rather than taken as delivered.
    let lower = text.to_lowercase();
    let failure = ["error", "exception", "fail", "خطا"]
        .iter()
        .any(|w| lower.contains(w));
    (!html && !json_like && !failure && text.len() <= PLAIN_ANSWER_MAX && !text.is_empty())
        .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every envelope key is read in any case, a code as a number or a
    /// string, and a key given twice is taken from its first place.
    #[test]
    fn envelope_keys_are_read_in_any_case() {
        for (body, success, code, message, data) in [
            (
                r#"{"Result":true,"Data":{"A":1}}"#,
                true,
                None,
                "",
                Some(r#"{"A":1}"#),
            ),
            (
                r#"{"RESULT":false,"CODE":"7","MESSAGE":"no","DATA":[]}"#,
                false,
                Some(7),
                "no",
                Some("[]"),
            ),
            (
                r#"{"success":true,"code":null,"message":null,"data":null}"#,
                true,
                None,
                "",
                None,
            ),
            (
                r#"{"reSult":true,"Result":false,"mEssage":"first","Message":"second"}"#,
                true,
                None,
                "first",
                None,
            ),
            (
                "\u{feff}{\"Result\":true,\"Other\":{\"Data\":1}}",
                true,
                None,
                "",
                None,
            ),
        ] {
            let p = parse_envelope(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(p.success, success, "{body}");
            assert_eq!(p.code, code, "{body}");
            assert_eq!(p.message, message, "{body}");
            assert_eq!(p.data.map(|d| d.get()), data, "{body}");
        }
        for body in [r#"{"Data":{}}"#, "[true]", r#"{"Result":"yes"}"#, "<html>"] {
            assert!(parse_envelope(body.as_bytes()).is_err(), "{body}");
        }
    }
}
