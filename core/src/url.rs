//! URLs: the base URL an app configures (HTTPS, or plain HTTP to a
//! loopback host), the endpoint names put after it, the token as a query
//! value, and a server's relative URL made absolute for an image loader.
//! A leaf: it imports nothing of the engine but its error type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};

/// `url` made absolute against the origin (scheme and host) of `base`, the
/// server's base URL: the real server's picture URLs may be relative to its
/// origin (WIRE.md section 7). An absolute `http(s)` URL stays as it is;
/// `//host/path` takes the base's scheme; `/path` and `path` hang from the
/// origin. Spaces, non-ASCII letters (Persian file names) and other bytes
/// no URL may hold are percent-encoded; existing `%XX` escapes are kept.
pub fn absolute_url(base: &str, url: &str) -> Result<String> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::Config("an empty URL cannot be made absolute".into()));
    }
    let Some((scheme, rest)) = base.split_once("://") else {
        return Err(Error::Config(format!("base URL `{base}` has no scheme")));
    };
    let origin = match rest.find('/') {
        Some(i) => &base[..scheme.len() + 3 + i],
        None => base,
    };
    let lower = url.to_ascii_lowercase();
    let whole = if lower.starts_with("http://") || lower.starts_with("https://") {
        url.to_string()
    } else if let Some(rest) = url.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if url.starts_with('/') {
        format!("{origin}{url}")
    } else {
        format!("{origin}/{url}")
    };
    let mut out = String::with_capacity(whole.len());
    for c in whole.chars() {
        if c.is_ascii_graphic()
            && !matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
        {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(out)
}

/// Checks a base URL such as `https://host/API/v3`: scheme `https`, or `http`
/// only when the host is loopback (`127.0.0.0/8`, `::1`, `localhost`); a
/// valid host name or IP literal; an optional port in 1..=65535; an optional
/// path; no user info, query, fragment, whitespace or control characters.
/// Anything else is `Error::Config`.
pub fn validate_base_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Config(format!("base URL `{url}`: {why}")));
    if url.is_empty() {
        return Err(Error::Config("base URL is empty".to_string()));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains whitespace or control characters");
    }
    if !url.is_ascii() {
        return bad("contains non-ASCII characters (use punycode and percent-encoding)");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("missing scheme (expected https://)");
    };
    let secure = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return bad("scheme must be https");
    };
    if rest.contains(['?', '#']) {
        return bad("must not have a query or fragment");
    }
    let (authority, _path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return bad("must not contain user info");
    }
    let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
        let Some((inside, after)) = after_bracket.split_once(']') else {
            return bad("unclosed `[` in the host");
        };
        let Ok(v6) = inside.parse::<Ipv6Addr>() else {
            return bad("invalid IPv6 address");
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return bad("unexpected text after the IPv6 address"),
            },
        };
        (Host::Ip(IpAddr::V6(v6)), port)
    } else {
        let (name, port) = match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        if let Ok(v4) = name.parse::<Ipv4Addr>() {
            (Host::Ip(IpAddr::V4(v4)), port)
        } else if is_valid_host_name(name) {
            (Host::Name(name), port)
        } else {
            return bad("invalid host");
        }
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && matches!(port.parse::<u16>(), Ok(p) if p != 0);
        if !valid {
            return bad("invalid port");
        }
    }
    if !secure && !host.is_loopback() {
        return bad("plain http:// is only allowed for loopback hosts; use https://");
    }
    Ok(())
}

enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

impl Host<'_> {
    fn is_loopback(&self) -> bool {
        match self {
            Host::Ip(IpAddr::V4(v4)) => v4.is_loopback(),
            Host::Ip(IpAddr::V6(v6)) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Host::Name(name) => {
                let name = name.strip_suffix('.').unwrap_or(name);
                name.eq_ignore_ascii_case("localhost")
            }
        }
    }
}

/// An RFC 1123 host name: dot-separated labels of letters, digits, `-` (and
/// `_`, which real intranets use), no label empty, starting or ending with
/// `-`, or longer than 63; one trailing dot allowed; 253 characters at most.
fn is_valid_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    // An all-numeric dotted name that is not a valid IPv4 address (`300.1.1.1`).
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return false;
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A query value, percent-encoded (RFC 3986 unreserved characters kept).
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Endpoint names are plain identifiers (`GetAllDataV2`): nothing that could
/// change the URL's path or add a query.
pub(crate) fn check_endpoint(endpoint: &str) -> Result<()> {
    let valid = !endpoint.is_empty()
        && endpoint
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "invalid endpoint name `{}`",
            endpoint.escape_debug()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) {
        if let Err(e) = validate_base_url(url) {
            panic!("{url} refused: {e}");
        }
    }

    fn refused(url: &str) {
        match validate_base_url(url) {
            Err(Error::Config(_)) => {}
            other => panic!("{url}: expected Config error, got {other:?}"),
        }
    }

    #[test]
    fn picture_urls_are_made_absolute_against_the_servers_origin() {
        let base = "https://mahakacc.mahaksoft.com/API/v3";
        let abs = |u: &str| absolute_url(base, u).unwrap();
        assert_eq!(
            abs("/Files/Pictures/12.jpg"),
            "https://mahakacc.mahaksoft.com/Files/Pictures/12.jpg"
        );
        assert_eq!(
            abs("Files/12.jpg"),
            "https://mahakacc.mahaksoft.com/Files/12.jpg"
        );
        assert_eq!(
            abs("//cdn.example.com/a.png"),
            "https://cdn.example.com/a.png"
        );
        assert_eq!(
            abs(" HTTP://other.example/x.jpg "),
            "HTTP://other.example/x.jpg"
        );
        assert_eq!(
            abs("/Files/عکس 1.jpg"),
            "https://mahakacc.mahaksoft.com/Files/%D8%B9%DA%A9%D8%B3%201.jpg"
        );
        assert_eq!(
            abs("/a%20b.jpg?v=2"),
            "https://mahakacc.mahaksoft.com/a%20b.jpg?v=2"
        );
        assert_eq!(
            absolute_url("http://127.0.0.1:8080", "x.jpg").unwrap(),
            "http://127.0.0.1:8080/x.jpg"
        );
        assert!(matches!(absolute_url(base, "  "), Err(Error::Config(_))));
        assert!(matches!(absolute_url("", "/x"), Err(Error::Config(_))));
    }

    #[test]
    fn https_urls_are_accepted() {
        ok("https://example.com");
        ok("https://example.com/");
        ok("https://example.com/API/v3");
        ok("HTTPS://Example.COM:8443/API/v3/");
        ok("https://10.0.0.5/API/v3");
        ok("https://[2001:db8::1]:443/API");
        ok("https://my_host.intranet./api");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        ok("http://127.0.0.1:8080/API/v3");
        ok("http://127.0.0.5");
        ok("http://127.255.255.254/x");
        ok("http://[::1]:8080");
        ok("http://[::1]");
        ok("http://[::ffff:127.0.0.1]:80");
        ok("http://localhost");
        ok("http://LOCALHOST:3000/API/v3");
        refused("http://example.com");
        refused("http://example.com/API/v3");
        refused("http://10.0.0.1:8080");
        refused("http://128.0.0.1");
        refused("http://[2001:db8::1]");
        refused("http://localhost.example.com");
        refused("http://mylocalhost");
    }

    #[test]
    fn garbage_is_refused() {
        for url in [
            "",
            "example.com",
            "ftp://example.com",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://example.com:",
            "https://example.com:0",
            "https://example.com:65536",
            "https://example.com:80a",
            "https://example.com:-1",
            "https://[::1",
            "https://[::1]x",
            "https://[zz::1]",
            "https://user:pw@example.com",
            "https://example.com/api?x=1",
            "https://example.com/#frag",
            "https://-example.com",
            "https://exa..mple.com",
            "https://300.1.1.1",
            "https://exämple.com",
            "https://example.com\n",
            "https://a:b:c",
            " https://example.com",
        ] {
            refused(url);
        }
    }
}
