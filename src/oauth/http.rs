//! The little HTTP that OAuth2 needs: a form POST to a token endpoint over
//! HTTPS (plain HTTP only to loopback, for tests and local helpers), and a
//! one-request loopback server for the browser's redirect. HTTP/1.1 with
//! `Connection: close`; chunked responses are decoded; no redirects are
//! followed (an OAuth client must not follow them).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most an endpoint's answer may be.
const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("`{url}` is not a usable URL: {problem}")]
    BadUrl { url: String, problem: String },
    #[error("cannot reach {host}:{port}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {secs} s talking to {host}")]
    Timeout { host: String, secs: u64 },
    #[error("TLS with {host} failed")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} sent an answer that is not HTTP: {what}")]
    Garbled { host: String, what: String },
}

/// A parsed `https://host[:port]/path?query`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Parses an endpoint URL; `http://` only for loopback hosts.
pub fn parse_url(url: &str) -> Result<Url, HttpError> {
    let bad = |problem: &str| HttpError::BadUrl {
        url: url.to_string(),
        problem: problem.to_string(),
    };
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad("it must start with https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?;
            (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                port,
            )
        }
        _ => (authority.to_string(), if https { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    if !https && !crate::imap::is_loopback_host(&host) {
        return Err(bad(
            "plain http:// is only allowed to this machine (127.0.0.1, localhost); use https://",
        ));
    }
    Ok(Url {
        https,
        host,
        port,
        path,
    })
}

/// `application/x-www-form-urlencoded` (also for query strings).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` and `+` of a query string value.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `key=value` pairs of a query string, decoded.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

trait Rw: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Rw for T {}

/// POSTs a form; returns the status code and the body.
pub async fn post_form(
    url: &str,
    form: &[(&str, &str)],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    let u = parse_url(url)?;
    let body = form_encode(form);
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mailkeep/{}\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        u.path,
        u.host,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    let timed_out = || HttpError::Timeout {
        host: u.host.clone(),
        secs: timeout.as_secs(),
    };
    let work = async {
        let tcp = TcpStream::connect((u.host.as_str(), u.port))
            .await
            .map_err(|source| HttpError::Connect {
                host: u.host.clone(),
                port: u.port,
                source,
            })?;
        let mut stream: Box<dyn Rw> = if u.https {
            let name = rustls::pki_types::ServerName::try_from(u.host.clone()).map_err(|e| {
                HttpError::BadUrl {
                    url: url.to_string(),
                    problem: e.to_string(),
                }
            })?;
            let tls = tokio_rustls::TlsConnector::from(crate::imap::https_client_config())
                .connect(name, tcp)
                .await
                .map_err(|source| HttpError::Tls {
                    host: u.host.clone(),
                    source,
                })?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let io = |source: std::io::Error| HttpError::Connect {
            host: u.host.clone(),
            port: u.port,
            source,
        };
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    if raw.len() > MAX_RESPONSE {
                        return Err(HttpError::Garbled {
                            host: u.host.clone(),
                            what: "the answer is larger than 1 MiB".into(),
                        });
                    }
                }
                // Servers that close without TLS close_notify: what came is the answer.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
                Err(e) => return Err(io(e)),
            }
        }
        parse_response(&u.host, &raw)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| timed_out())?
}

fn parse_response(host: &str, raw: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
    let garbled = |what: &str| HttpError::Garbled {
        host: host.to_string(),
        what: what.to_string(),
    };
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| garbled("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(|| garbled("no status line"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let mut body = raw[end + 4..].to_vec();
    if chunked {
        body = dechunk(&body).ok_or_else(|| garbled("a broken chunked body"))?;
    } else if let Some(n) = length {
        body.truncate(n);
    }
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("https://login.microsoftonline.com/common/oauth2/v2.0/token").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (true, "login.microsoftonline.com", 443)
        );
        assert_eq!(u.path, "/common/oauth2/v2.0/token");
        let u = parse_url("http://127.0.0.1:8080/token").unwrap();
        assert_eq!((u.https, u.port, u.path.as_str()), (false, 8080, "/token"));
        assert!(
            parse_url("http://example.com/token").is_err(),
            "plain http only to loopback"
        );
        assert!(parse_url("ftp://x").is_err());
    }

    #[test]
    fn forms_and_queries_round_trip() {
        let f = form_encode(&[
            ("scope", "https://mail.google.com/ offline_access"),
            ("a", "b&c"),
        ]);
        assert_eq!(
            f,
            "scope=https%3A%2F%2Fmail.google.com%2F%20offline_access&a=b%26c"
        );
        let q = parse_query("code=4%2F0Ab+x&state=s1");
        assert_eq!(q[0], ("code".into(), "4/0Ab x".into()));
        assert_eq!(q[1], ("state".into(), "s1".into()));
    }

    #[test]
    fn chunked_and_plain_responses() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response("h", raw).unwrap(),
            (200, b"{\"a\":1}".to_vec())
        );
        let raw = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response("h", raw).unwrap(), (400, b"{}".to_vec()));
        assert!(parse_response("h", b"garbage").is_err());
    }
}
