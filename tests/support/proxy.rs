//! `FaultProxy`: a plain TCP proxy on 127.0.0.1 in front of a server's plain IMAP port
//! that injects one `Fault` into each connection. Runs on std threads.
//!
//! The fault is chosen when a connection is accepted (`set_fault` affects only later
//! connections), and every connection accepted while a fault is set gets it, counted
//! per connection (wrap it in `Fault::OnlyConnection` to hit just one).
//!
//! Byte-counting faults (`DropAfterServerBytes`, `Stall`) forward raw bytes and cut at
//! the exact byte. IMAP-aware faults (`TaggedNoInFetch`, `RemoveCapability`) split the
//! server's stream into whole responses (lines plus their `{n}` literals) and the
//! client's into command lines; they assume a plain-text session (no STARTTLS, no
//! COMPRESS through the proxy).

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::imap_wire::literal_len;

/// What the proxy does to a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything through unchanged.
    None,
    /// Forward exactly this many server→client bytes of the connection, then shut
    /// down both sockets (the client sees EOF, the server a closed connection).
    DropAfterServerBytes(u64),
    /// Count the untagged `* n FETCH` responses carrying a literal that answer a
    /// `[UID] FETCH … BODY[`/`BODY.PEEK[`/`BINARY[`/`BINARY.PEEK[` command, over the
    /// whole connection. Once `after_messages` of them have been forwarded, the rest of
    /// the fetch command in flight is swallowed (untagged responses included) and its
    /// tagged completion is replaced by `<tag> NO [SERVERBUG] injected fault`. Fires
    /// once per connection; later commands pass through. A fetch in chunks
    /// (`BODY.PEEK[]<o.n>`) counts each chunk.
    TaggedNoInFetch { after_messages: usize },
    /// Remove these capabilities (space-separated, case-insensitive) from every `* CAPABILITY` response
    /// and every `[CAPABILITY …]` response code (greeting, LOGIN, AUTHENTICATE).
    RemoveCapability(String),
    /// Forward exactly this many server→client bytes, then forward nothing more from
    /// the server while keeping both sockets open (client→server still flows), until
    /// the client closes or the proxy is dropped.
    Stall { after_server_bytes: u64 },
    /// `fault` on the `n`th connection accepted by this proxy (1-based), `None` on
    /// every other.
    OnlyConnection { n: usize, fault: Box<Fault> },
    /// Refuse APPENDs the way strict servers do, with a tagged `NO` and without
    /// passing the message on (a MULTIAPPEND whole, if one of its messages is
    /// refused): Cyrus refuses bare LF or CR, NUL bytes and header
    /// lines that are neither fields nor continuations; Yahoo a message that does
    /// not end with CRLF; any server one over its size limit (`max_size`). Other
    /// APPENDs reach the server (sent as LITERAL+, which Dovecot offers; the proxy
    /// answers a synchronising literal's `+` itself). Other commands pass unchanged.
    StrictAppend { max_size: Option<u64> },
    /// Refuse an APPEND into the mailbox the session has open (SELECT or
    /// EXAMINE, until CLOSE or UNSELECT) the way Courier-IMAP does, with a
    /// tagged `NO Current box is selected READ-ONLY.` and without passing the
    /// message on. Other commands pass unchanged.
    CourierAppend,
    /// Answer the `nth_append` APPEND (1-based, counted over every
    /// connection of this proxy) with `<tag> answer` instead of passing it
    /// on, then close the connection if `close`: a provider throttling, as
    /// Exchange Online does (`BAD Request is throttled. Suggested Backoff
    /// Time: N milliseconds`, then a disconnect) or Gmail (`NO [THROTTLED]`).
    /// Fires once; every other command passes unchanged.
    Throttle {
        nth_append: usize,
        answer: String,
        close: bool,
    },
    /// Answer the first `times` logins (LOGIN or AUTHENTICATE, over every
    /// connection) with `<tag> answer`, e.g. Gmail's `NO [ALERT] Too many
    /// simultaneous connections. (Failure)`; later ones pass.
    BusyLogin { times: usize, answer: String },
    /// Answer every command whose line (without its tag) contains
    /// `containing` (case-insensitive) with `<tag> answer` instead of passing
    /// it on: a server (or an ACL) that will not change flags (`UID STORE`),
    /// one that does not know an item (`X-GUID`). Other commands pass.
    Refuse { containing: String, answer: String },
    /// Swallow the `nth` (1-based, counted over the connection) untagged `FETCH`
    /// response that carries a body literal, and pass everything else, the tagged
    /// `OK` included: a server that lists a message but does not send it.
    DropFetchBody { nth: usize },
}

struct Shared {
    fault: Mutex<Fault>,
    /// Every command line clients sent, without its tag (a LOGIN's
    /// arguments blanked), in the order the proxy saw them.
    commands: Mutex<Vec<String>>,
    connections: AtomicUsize,
    /// APPENDs and logins seen, over every connection (`Throttle`, `BusyLogin`).
    appends: AtomicUsize,
    logins: AtomicUsize,
    stopping: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

/// A running proxy; dropping it closes the listener and every proxied connection.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target_port`.
    pub fn start(target_port: u16, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy port");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            fault: Mutex::new(fault),
            commands: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            appends: AtomicUsize::new(0),
            logins: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept_thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || accept_loop(listener, target_port, s))
            .expect("spawn proxy thread");
        FaultProxy {
            port,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// The port clients connect to (plain IMAP, `tls = "none"`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every command clients sent through the proxy so far, without tags
    /// (`EXAMINE INBOX`, `UID FETCH 1:* (FLAGS)`; `LOGIN ***`).
    pub fn commands(&self) -> Vec<String> {
        self.shared.commands.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The fault for connections accepted from now on.
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        for s in self.shared.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, target_port: u16, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let n = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = match shared.fault.lock().unwrap().clone() {
            Fault::OnlyConnection { n: only, fault } if only == n => *fault,
            Fault::OnlyConnection { .. } => Fault::None,
            f => f,
        };
        let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        {
            let mut open = shared.open.lock().unwrap();
            open.push(client.try_clone().unwrap());
            open.push(server.try_clone().unwrap());
        }
        let conn = Conn {
            client,
            server,
            shared: shared.clone(),
        };
        let _ = std::thread::Builder::new()
            .name(format!("fault-proxy-conn-{n}"))
            .spawn(move || conn.run(fault));
    }
}

struct Conn {
    client: TcpStream,
    server: TcpStream,
    shared: Arc<Shared>,
}

impl Conn {
    fn run(self, fault: Fault) {
        let fetch_tags = Arc::new(Mutex::new(HashSet::new()));
        let shared = self.shared.clone();
        // Both directions write to the client: whole writes under one lock.
        let client_lock = Arc::new(Mutex::new(()));
        let judge = match &fault {
            Fault::StrictAppend { max_size } => Some(Judge::Strict(*max_size)),
            Fault::CourierAppend => Some(Judge::Courier),
            Fault::Throttle {
                nth_append,
                answer,
                close,
            } => Some(Judge::Throttle {
                nth: *nth_append,
                answer: answer.clone(),
                close: *close,
            }),
            Fault::BusyLogin { times, answer } => Some(Judge::BusyLogin {
                times: *times,
                answer: answer.clone(),
            }),
            Fault::Refuse { containing, answer } => Some(Judge::Refuse {
                containing: containing.to_ascii_uppercase(),
                answer: answer.clone(),
            }),
            _ => None,
        };
        let c2s = {
            let (client, server) = (
                self.client.try_clone().unwrap(),
                self.server.try_clone().unwrap(),
            );
            let tags = fetch_tags.clone();
            let lock = client_lock.clone();
            std::thread::spawn(move || {
                let _ = if let Some(judge) = judge {
                    client_to_server_judged(&client, &server, judge, &lock, &shared)
                } else {
                    client_to_server_framed(&client, &server, &tags, &shared.commands)
                };
                close_both(&client, &server);
            })
        };
        let (client, server) = (self.client, self.server);
        let result = match fault {
            Fault::None | Fault::OnlyConnection { .. } => copy_raw(&server, &client).map(|_| true),
            Fault::StrictAppend { .. }
            | Fault::CourierAppend
            | Fault::Throttle { .. }
            | Fault::BusyLogin { .. }
            | Fault::Refuse { .. } => copy_raw_locked(&server, &client, &client_lock).map(|_| true),
            Fault::DropAfterServerBytes(limit) => {
                copy_limited(&server, &client, limit).map(|_| true)
            }
            Fault::Stall { after_server_bytes } => {
                // Keep both sockets open: the client→server thread closes them when the
                // client goes away, and the proxy's Drop does otherwise.
                copy_limited(&server, &client, after_server_bytes).map(|_| false)
            }
            Fault::TaggedNoInFetch { after_messages } => server_to_client_framed(
                &server,
                &client,
                &fetch_tags,
                Framed {
                    no_after: Some(after_messages),
                    ..Framed::default()
                },
            )
            .map(|_| true),
            Fault::RemoveCapability(cap) => server_to_client_framed(
                &server,
                &client,
                &fetch_tags,
                Framed {
                    remove_cap: Some(&cap),
                    ..Framed::default()
                },
            )
            .map(|_| true),
            Fault::DropFetchBody { nth } => server_to_client_framed(
                &server,
                &client,
                &fetch_tags,
                Framed {
                    drop_body: Some(nth),
                    ..Framed::default()
                },
            )
            .map(|_| true),
        };
        if result.unwrap_or(true) {
            close_both(&client, &server);
        }
        let _ = c2s.join();
    }
}

fn close_both(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

fn copy_raw(mut from: &TcpStream, mut to: &TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
    }
}

fn copy_raw_locked(mut from: &TcpStream, mut to: &TcpStream, lock: &Mutex<()>) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let _g = lock.lock().unwrap();
        to.write_all(&buf[..n])?;
    }
}

/// How an APPEND (or a login) is judged by [`client_to_server_judged`].
#[derive(Clone, Debug)]
enum Judge {
    /// `Fault::StrictAppend`.
    Strict(Option<u64>),
    /// `Fault::CourierAppend`.
    Courier,
    /// `Fault::Throttle`.
    Throttle {
        nth: usize,
        answer: String,
        close: bool,
    },
    /// `Fault::BusyLogin`.
    BusyLogin { times: usize, answer: String },
    /// `Fault::Refuse` (`containing` in upper case).
    Refuse { containing: String, answer: String },
}

/// The mailbox argument at the start of `rest` (quoted or an atom),
/// unquoted; INBOX in any case is `INBOX`.
fn mailbox_arg(rest: &str) -> String {
    let name = if let Some(q) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                '"' => break,
                c => out.push(c),
            }
        }
        out
    } else {
        rest.split_whitespace().next().unwrap_or("").to_string()
    };
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        name
    }
}

/// Client → server for the APPEND-judging faults: an APPEND is read whole
/// (answering `+` to synchronising literals), judged, and either refused
/// with a tagged `NO` or sent on with LITERAL+; everything else is forwarded
/// as it comes. Command lines are recorded as `client_to_server_framed` does.
fn client_to_server_judged(
    client: &TcpStream,
    mut server: &TcpStream,
    judge: Judge,
    lock: &Mutex<()>,
    shared: &Shared,
) -> io::Result<()> {
    let commands = &shared.commands;
    let mut r = BufReader::new(client);
    let mut to_client = client;
    let mut selected: Option<String> = None;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        commands.lock().unwrap().push(command_text(&line));
        let text = String::from_utf8_lossy(&line).into_owned();
        let mut words = text.splitn(3, ' ');
        let tag = words.next().unwrap_or("").to_string();
        let verb = words.next().unwrap_or("").trim_end().to_ascii_uppercase();
        let rest = words
            .next()
            .unwrap_or("")
            .trim_end_matches(['\r', '\n'])
            .to_string();
        match verb.as_str() {
            "SELECT" | "EXAMINE" => selected = Some(mailbox_arg(&rest)),
            "CLOSE" | "UNSELECT" => selected = None,
            _ => {}
        }
        if let Judge::BusyLogin { times, answer } = &judge {
            if (verb == "LOGIN" || verb == "AUTHENTICATE")
                && shared.logins.fetch_add(1, Ordering::SeqCst) < *times
            {
                let _g = lock.lock().unwrap();
                to_client.write_all(format!("{tag} {answer}\r\n").as_bytes())?;
                continue;
            }
        }
        if let Judge::Refuse { containing, answer } = &judge {
            if format!("{verb} {}", rest.to_ascii_uppercase()).contains(containing.as_str()) {
                let _g = lock.lock().unwrap();
                to_client.write_all(format!("{tag} {answer}\r\n").as_bytes())?;
                continue;
            }
        }
        let is_append = verb == "APPEND";
        if !is_append {
            server.write_all(&line)?;
            if let Some(n) = literal_len(&line) {
                // A literal in another command (a password, a mailbox name).
                let copied = io::copy(&mut (&mut r).take(n), &mut server)?;
                if copied < n {
                    return Ok(());
                }
            }
            continue;
        }
        let target = mailbox_arg(&rest);
        // The whole APPEND: lines and literals, each literal a message (more
        // than one with MULTIAPPEND, which a server takes whole or refuses).
        let mut segments: Vec<Vec<u8>> = Vec::new();
        let mut messages: Vec<Vec<u8>> = Vec::new();
        loop {
            let Some(n) = literal_len(&line) else {
                segments.push(line);
                break;
            };
            let sync = !line.ends_with(b"+}\r\n") && !line.ends_with(b"+}\n");
            if sync {
                let _g = lock.lock().unwrap();
                to_client.write_all(b"+ go ahead\r\n")?;
                // Rewrite `{n}` as `{n+}`: the server must not answer `+` again.
                let cut = line.len() - if line.ends_with(b"\r\n") { 3 } else { 2 };
                line.truncate(cut);
                line.extend_from_slice(b"+}\r\n");
            }
            segments.push(line);
            let mut data = Vec::with_capacity(n as usize);
            (&mut r).take(n).read_to_end(&mut data)?;
            if (data.len() as u64) < n {
                return Ok(());
            }
            segments.push(data.clone());
            messages.push(data);
            line = Vec::new();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
        }
        let refusal = match &judge {
            Judge::Strict(max_size) => messages
                .iter()
                .find_map(|m| strict_refusal(m, *max_size))
                .map(|r| format!("NO {r}")),
            Judge::Courier => (selected.as_deref() == Some(target.as_str()))
                .then(|| "NO Current box is selected READ-ONLY.".to_string()),
            Judge::Throttle { nth, answer, close } => {
                if shared.appends.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
                    let _g = lock.lock().unwrap();
                    to_client.write_all(format!("{tag} {answer}\r\n").as_bytes())?;
                    if *close {
                        return Ok(());
                    }
                    continue;
                }
                None
            }
            Judge::BusyLogin { .. } | Judge::Refuse { .. } => None,
        };
        if let Some(reason) = refusal {
            let _g = lock.lock().unwrap();
            to_client.write_all(format!("{tag} {reason}\r\n").as_bytes())?;
            continue;
        }
        for seg in &segments {
            server.write_all(seg)?;
        }
    }
}

/// Why a strict server would refuse this message, if it would.
pub fn strict_refusal(m: &[u8], max_size: Option<u64>) -> Option<&'static str> {
    if max_size.is_some_and(|max| m.len() as u64 > max) {
        return Some("[LIMIT] Message too large");
    }
    if m.contains(&0) {
        return Some("Message contains NUL characters");
    }
    for (i, &b) in m.iter().enumerate() {
        let bare_lf = b == b'\n' && (i == 0 || m[i - 1] != b'\r');
        let bare_cr = b == b'\r' && m.get(i + 1) != Some(&b'\n');
        if bare_lf || bare_cr {
            return Some("Message contains bare newlines");
        }
    }
    if !m.ends_with(b"\r\n") {
        return Some("[CANNOT] Message must end with CRLF");
    }
    for line in m.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        let name_ok = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|c| c > 0 && line[..c].iter().all(|&b| (33..=126).contains(&b)));
        if !name_ok {
            return Some("Message contains invalid header");
        }
    }
    None
}

/// Forwards exactly `limit` bytes (or until EOF).
fn copy_limited(mut from: &TcpStream, mut to: &TcpStream, limit: u64) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    let mut left = limit;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = from.read(&mut buf[..want])?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Forwards client bytes as they come, noting the tags of body-fetching commands
/// before the server can see them.
fn client_to_server_framed(
    client: &TcpStream,
    mut server: &TcpStream,
    fetch_tags: &Mutex<HashSet<String>>,
    commands: &Mutex<Vec<String>>,
) -> io::Result<()> {
    let mut r = BufReader::new(client);
    let mut continuation = false;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if !continuation {
            commands.lock().unwrap().push(command_text(&line));
        }
        if !continuation && is_body_fetch(&line) {
            let tag = String::from_utf8_lossy(line.split(|&b| b == b' ').next().unwrap_or(b""))
                .into_owned();
            fetch_tags.lock().unwrap().insert(tag);
        }
        server.write_all(&line)?;
        match literal_len(&line) {
            Some(n) => {
                // The literal's bytes (after `+` when synchronising), then the command
                // goes on.
                let copied = io::copy(&mut (&mut r).take(n), &mut server)?;
                if copied < n {
                    return Ok(());
                }
                continuation = true;
            }
            None => continuation = false,
        }
    }
}

/// A command line without its tag and line ending; a LOGIN's arguments
/// blanked (they hold a password).
fn command_text(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\r', '\n']);
    let rest = text.split_once(' ').map_or("", |(_, r)| r);
    if rest.len() >= 6 && rest[..6].eq_ignore_ascii_case("LOGIN ") {
        "LOGIN ***".to_string()
    } else {
        rest.to_string()
    }
}

fn is_body_fetch(line: &[u8]) -> bool {
    let up = String::from_utf8_lossy(line).to_ascii_uppercase();
    let mut words = up.split_whitespace();
    let _tag = words.next();
    let first = words.next().unwrap_or("");
    let is_fetch = first == "FETCH" || (first == "UID" && words.next() == Some("FETCH"));
    is_fetch && (up.contains("BODY[") || up.contains("BODY.PEEK[") || up.contains("BINARY"))
}

/// Reads one whole server response: line, literal, line, … up to a line without a
/// literal. `None` at EOF.
fn read_response(r: &mut BufReader<&TcpStream>) -> io::Result<Option<(Vec<Vec<u8>>, bool)>> {
    // Segments alternate: line, literal, line, …; `has_literal` tells whether any
    // literal came with the response.
    let mut segments = Vec::new();
    let mut has_literal = false;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let lit = literal_len(&line);
        segments.push(line);
        match lit {
            Some(n) => {
                let mut data = Vec::with_capacity(n as usize);
                (&mut *r).take(n).read_to_end(&mut data)?;
                if (data.len() as u64) < n {
                    return Ok(None);
                }
                segments.push(data);
                has_literal = true;
            }
            None => return Ok(Some((segments, has_literal))),
        }
    }
}

/// What the framed server → client copy does to the responses.
#[derive(Default)]
struct Framed<'a> {
    /// `TaggedNoInFetch`.
    no_after: Option<usize>,
    /// `RemoveCapability`.
    remove_cap: Option<&'a str>,
    /// `DropFetchBody`.
    drop_body: Option<usize>,
}

fn server_to_client_framed(
    server: &TcpStream,
    mut client: &TcpStream,
    fetch_tags: &Mutex<HashSet<String>>,
    framed: Framed<'_>,
) -> io::Result<()> {
    let Framed {
        no_after,
        remove_cap,
        drop_body,
    } = framed;
    let mut r = BufReader::new(server);
    let mut count = 0usize;
    let mut bodies = 0usize;
    let mut fired = false;
    while let Some((mut segments, has_literal)) = read_response(&mut r)? {
        if let Some(nth) = drop_body {
            let first = String::from_utf8_lossy(&segments[0]).into_owned();
            let is_fetch = first.starts_with("* ")
                && first
                    .split(' ')
                    .nth(2)
                    .is_some_and(|w| w.eq_ignore_ascii_case("FETCH"));
            if has_literal && is_fetch {
                bodies += 1;
                if bodies == nth {
                    continue; // swallowed
                }
            }
        }
        if let Some(cap) = remove_cap {
            // Lines are the even segments; literals are never touched.
            for seg in segments.iter_mut().step_by(2) {
                for one in cap.split_whitespace() {
                    *seg = strip_capability(seg, one);
                }
            }
        }
        if let (Some(limit), false) = (no_after, fired) {
            let first = String::from_utf8_lossy(&segments[0]).into_owned();
            let tag = first.split(' ').next().unwrap_or("").to_string();
            let in_fetch = !fetch_tags.lock().unwrap().is_empty();
            if tag == "*" && in_fetch {
                let is_body_fetch = has_literal
                    && first
                        .split(' ')
                        .nth(2)
                        .is_some_and(|w| w.eq_ignore_ascii_case("FETCH"));
                if count >= limit {
                    continue; // swallowed
                }
                if is_body_fetch {
                    count += 1;
                }
            } else if fetch_tags.lock().unwrap().remove(&tag) && count >= limit {
                fired = true;
                client.write_all(format!("{tag} NO [SERVERBUG] injected fault\r\n").as_bytes())?;
                continue;
            }
        }
        for seg in &segments {
            client.write_all(seg)?;
        }
    }
    Ok(())
}

/// Removes `cap` from a `* CAPABILITY …` line or a `[CAPABILITY …]` response code.
fn strip_capability(line: &[u8], cap: &str) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(line) else {
        return line.to_vec();
    };
    let filter = |list: &str| -> String {
        list.split(' ')
            .filter(|c| !c.eq_ignore_ascii_case(cap))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("* CAPABILITY ") {
        let body = text["* CAPABILITY ".len()..].trim_end_matches(['\r', '\n']);
        return format!("* CAPABILITY {}\r\n", filter(body)).into_bytes();
    }
    if let Some(i) = upper.find("[CAPABILITY ") {
        let start = i + "[CAPABILITY ".len();
        if let Some(len) = text[start..].find(']') {
            let end = start + len;
            return format!(
                "{}{}{}",
                &text[..start],
                filter(&text[start..end]),
                &text[end..]
            )
            .into_bytes();
        }
    }
    line.to_vec()
}
