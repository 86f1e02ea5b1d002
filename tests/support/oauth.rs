//! A local OAuth2 authority for the tests: the token-introspection endpoint
//! that Dovecot's oauth2 passdb asks (`POST /introspect`, `token=…`), and a
//! token endpoint (`/token`: refresh, device code, authorization code with
//! PKCE) and device-authorization endpoint (`/device`) for mailkeep's own
//! flows. Plain HTTP on 127.0.0.1, one thread, one request per connection.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the authority knows and has seen.
#[derive(Default)]
pub struct AuthorityState {
    /// access token → user it belongs to (active).
    pub access: HashMap<String, String>,
    /// refresh token → user.
    pub refresh: HashMap<String, String>,
    /// Requests seen, as `path grant_type` (tokens never recorded).
    pub log: Vec<String>,
    /// Device codes answered `authorization_pending` this many times first.
    pub pending_polls: usize,
    /// PKCE: the code it hands out and the challenge it expects.
    pub pkce: Option<(String, String)>,
    /// User the device / code flows sign in.
    pub flow_user: String,
    /// Lifetime of access tokens it issues, seconds.
    pub expires_in: i64,
    counter: usize,
}

pub struct Authority {
    port: u16,
    pub state: Arc<Mutex<AuthorityState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Authority {
    pub fn start() -> Authority {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the authority");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(AuthorityState {
            flow_user: "alice".into(),
            expires_in: 3600,
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    serve(c, &st);
                }
            }
        });
        Authority {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Makes `token` a valid access token of `user`.
    pub fn grant(&self, token: &str, user: &str) {
        self.state
            .lock()
            .unwrap()
            .access
            .insert(token.into(), user.into());
    }

    /// The requests seen so far.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// Stops answering: the port is closed (an endpoint that is down).
    pub fn shut_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Authority {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn serve(mut c: TcpStream, state: &Arc<Mutex<AuthorityState>>) {
    let mut reader = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let f = form(&String::from_utf8_lossy(&body));
    let mut s = state.lock().unwrap();
    let grant = f.get("grant_type").cloned().unwrap_or_default();
    s.log.push(format!("{path} {grant}").trim().to_string());
    let (status, json) = match path.as_str() {
        "/introspect" => match f.get("token").and_then(|t| s.access.get(t)) {
            Some(user) => (200, format!("{{\"active\": true, \"username\": \"{user}\"}}")),
            None => (200, "{\"active\": false}".to_string()),
        },
        "/device" => (
            200,
            "{\"device_code\": \"dev-1\", \"user_code\": \"ABCD-EFGH\", \"verification_uri\": \"https://example.com/devicelogin\", \"expires_in\": 300, \"interval\": 0}".to_string(),
        ),
        "/token" => {
            let user = s.flow_user.clone();
            let issue = |s: &mut AuthorityState, user: &str| {
                s.counter += 1;
                let (a, r) = (format!("access-{}", s.counter), format!("refresh-{}", s.counter));
                s.access.insert(a.clone(), user.to_string());
                s.refresh.insert(r.clone(), user.to_string());
                (
                    200,
                    format!(
                        "{{\"access_token\": \"{a}\", \"refresh_token\": \"{r}\", \"token_type\": \"Bearer\", \"expires_in\": {}}}",
                        s.expires_in
                    ),
                )
            };
            match grant.as_str() {
                "refresh_token" => match f.get("refresh_token").and_then(|r| s.refresh.get(r)).cloned() {
                    Some(u) => issue(&mut s, &u),
                    None => (400, "{\"error\": \"invalid_grant\", \"error_description\": \"unknown refresh token\"}".into()),
                },
                "urn:ietf:params:oauth:grant-type:device_code" => {
                    if s.pending_polls > 0 {
                        s.pending_polls -= 1;
                        (400, "{\"error\": \"authorization_pending\"}".into())
                    } else {
                        issue(&mut s, &user)
                    }
                }
                "authorization_code" => {
                    let ok = match (&s.pkce, f.get("code"), f.get("code_verifier")) {
                        (Some((code, challenge)), Some(c), Some(v)) => {
                            code == c && &pkce(v) == challenge
                        }
                        _ => false,
                    };
                    if ok {
                        issue(&mut s, &user)
                    } else {
                        (400, "{\"error\": \"invalid_grant\"}".into())
                    }
                }
                _ => (400, "{\"error\": \"unsupported_grant_type\"}".into()),
            }
        }
        _ => (404, "{}".into()),
    };
    drop(s);
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    let _ = write!(
        c,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
}

/// PKCE S256 of a verifier (RFC 7636), computed independently of mailkeep.
pub fn pkce(verifier: &str) -> String {
    let d = ring_sha256(verifier.as_bytes());
    base64url(&d)
}

fn ring_sha256(b: &[u8]) -> Vec<u8> {
    // rcgen's ring is a dev-dependency already.
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

fn base64url(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, &x| (acc << 8) | x as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
