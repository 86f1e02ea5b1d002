//! `TestClient`: a small blocking IMAP client (std::net + rustls), independent of the
//! crate's own IMAP code, used to seed servers and to check what mailkeep did.
//!
//! Every method panics with the command and the server's answer on `NO`/`BAD`, except
//! `raw_command` / `try_raw_command`, which return the tagged line for the caller to judge.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::imap_wire::{literal_len, parse_values, quote, Value};
use super::tls;

/// How long any read may block before the client gives up (and panics).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One message as `fetch_all` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: u32,
    /// Flags as the server spelt them, without `\Recent`.
    pub flags: Vec<String>,
    /// INTERNALDATE exactly as served, e.g. `01-Jan-2020 01:00:00 +0000`.
    pub internaldate: String,
    /// `BODY.PEEK[]`, byte for byte.
    pub bytes: Vec<u8>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// Only while STARTTLS swaps the plain stream for a TLS one.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream closed")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Closed => Err(closed()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Closed => Err(closed()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Closed => Err(closed()),
        }
    }
}

/// A blocking IMAP client for tests.
pub struct TestClient {
    stream: Stream,
    buf: Vec<u8>,
    next_tag: u32,
    greeting: String,
    capabilities: Vec<String>,
    selected: Option<String>,
}

impl TestClient {
    /// Connects with implicit TLS to `127.0.0.1:port` (certificate checked for
    /// `localhost` against `ca_file`) and logs in.
    pub fn connect_tls(port: u16, ca_file: &Path, user: &str, password: &str) -> TestClient {
        let tcp = connect_tcp(port);
        let mut c = TestClient::new(Stream::Tls(Box::new(tls_wrap(tcp, ca_file))));
        c.read_greeting();
        c.login(user, password);
        c
    }

    /// Connects in plain text, upgrades with STARTTLS, and logs in.
    pub fn connect_starttls(port: u16, ca_file: &Path, user: &str, password: &str) -> TestClient {
        let mut c = TestClient::connect_plain_no_login(port);
        assert!(
            c.has_capability("STARTTLS"),
            "server on port {port} does not offer STARTTLS: {}",
            c.greeting
        );
        c.ok("STARTTLS");
        assert!(c.buf.is_empty(), "server sent data after STARTTLS OK");
        let Stream::Plain(tcp) = std::mem::replace(&mut c.stream, Stream::Closed) else {
            panic!("STARTTLS on a TLS stream");
        };
        c.stream = Stream::Tls(Box::new(tls_wrap(tcp, ca_file)));
        c.capabilities.clear();
        c.login(user, password);
        c
    }

    /// Connects in plain text (e.g. through a `FaultProxy`) and logs in.
    pub fn connect_plain(port: u16, user: &str, password: &str) -> TestClient {
        let mut c = TestClient::connect_plain_no_login(port);
        c.login(user, password);
        c
    }

    /// Connects in plain text and reads the greeting, without logging in.
    pub fn connect_plain_no_login(port: u16) -> TestClient {
        let mut c = TestClient::new(Stream::Plain(connect_tcp(port)));
        c.read_greeting();
        c
    }

    fn new(stream: Stream) -> TestClient {
        TestClient {
            stream,
            buf: Vec::new(),
            next_tag: 1,
            greeting: String::new(),
            capabilities: Vec::new(),
            selected: None,
        }
    }

    /// The server's greeting line.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Capabilities last announced (greeting, LOGIN response or CAPABILITY).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// `CREATE`.
    pub fn create(&mut self, mailbox_raw: &str) {
        self.ok(&format!("CREATE {}", quote(mailbox_raw)));
    }

    /// `APPEND` with flags and an optional INTERNALDATE (`"01-Jan-2020 10:00:00 +0900"`);
    /// returns the UID from `APPENDUID`.
    pub fn append(
        &mut self,
        mailbox_raw: &str,
        flags: &[&str],
        internaldate: Option<&str>,
        bytes: &[u8],
    ) -> u32 {
        let mut cmd = format!("APPEND {} ({})", quote(mailbox_raw), flags.join(" "));
        if let Some(date) = internaldate {
            cmd.push(' ');
            cmd.push_str(&quote(date));
        }
        cmd.push_str(&format!(" {{{}}}", bytes.len()));
        let tagged = self.command_with_literal(&cmd, bytes);
        appenduid(&tagged)
            .unwrap_or_else(|| panic!("no APPENDUID in the answer to APPEND: {tagged}"))
    }

    /// Many messages in one `APPEND` (MULTIAPPEND, RFC 3502, with LITERAL+
    /// literals: one round trip), each `(flags, INTERNALDATE, bytes)`; for
    /// seeding big mailboxes fast. Returns the tagged answer (with APPENDUID).
    pub fn append_many(
        &mut self,
        mailbox_raw: &str,
        messages: &[(Vec<&str>, Option<String>, Vec<u8>)],
    ) -> String {
        assert!(self.has_capability("MULTIAPPEND") && self.has_capability("LITERAL+"));
        let tag = self.tag();
        let mut out = format!("{tag} APPEND {}", quote(mailbox_raw)).into_bytes();
        for (flags, date, bytes) in messages {
            out.extend_from_slice(format!(" ({})", flags.join(" ")).as_bytes());
            if let Some(d) = date {
                out.extend_from_slice(format!(" {}", quote(d)).as_bytes());
            }
            out.extend_from_slice(format!(" {{{}+}}\r\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(b"\r\n");
        self.stream
            .write_all(&out)
            .and_then(|_| self.stream.flush())
            .unwrap_or_else(|e| panic!("APPEND to {mailbox_raw}: connection error: {e}"));
        let (untagged, tagged) = self
            .read_until_tagged(&tag)
            .unwrap_or_else(|e| panic!("APPEND to {mailbox_raw}: connection error: {e}"));
        check_ok("APPEND (many)", &tagged, &untagged);
        tagged
    }

    /// Like `append` but returns the tagged answer instead of panicking on NO/BAD.
    pub fn try_append(&mut self, mailbox_raw: &str, bytes: &[u8]) -> String {
        let cmd = format!("APPEND {} {{{}}}", quote(mailbox_raw), bytes.len());
        self.try_command_with_literal(&cmd, bytes)
            .unwrap_or_else(|e| panic!("APPEND to {mailbox_raw}: connection error: {e}"))
    }

    /// Every message of the mailbox (EXAMINE, `UID FETCH 1:* (UID FLAGS INTERNALDATE
    /// BODY.PEEK[])`), sorted by UID.
    pub fn fetch_all(&mut self, mailbox_raw: &str) -> Vec<FetchedMessage> {
        let (untagged, _) = self.ok(&format!("EXAMINE {}", quote(mailbox_raw)));
        self.selected = Some(mailbox_raw.to_string());
        let exists = untagged
            .iter()
            .find_map(|l| {
                let t = String::from_utf8_lossy(l);
                let rest = t.strip_prefix("* ")?;
                let (n, word) = rest.trim_end().split_once(' ')?;
                word.eq_ignore_ascii_case("EXISTS")
                    .then(|| n.parse::<u32>().ok())?
            })
            .unwrap_or(0);
        if exists == 0 {
            return Vec::new();
        }
        let (untagged, _) = self.ok("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])");
        let mut by_seq: std::collections::BTreeMap<u32, Partial> = Default::default();
        for resp in &untagged {
            let v = parse_values(resp);
            if v.len() < 4 || !matches!(&v[2], Value::Atom(a) if a.eq_ignore_ascii_case("FETCH")) {
                continue;
            }
            let seq: u32 = v[1].as_str().parse().expect("sequence number");
            let p = by_seq.entry(seq).or_default();
            let items = v[3].as_list();
            for pair in items.chunks(2) {
                let key = pair[0].as_str().to_ascii_uppercase();
                match key.as_str() {
                    "UID" => p.uid = Some(pair[1].as_str().parse().expect("UID")),
                    "FLAGS" => {
                        p.flags = Some(
                            pair[1]
                                .as_list()
                                .iter()
                                .map(Value::as_str)
                                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                                .collect(),
                        )
                    }
                    "INTERNALDATE" => p.internaldate = Some(pair[1].as_str()),
                    "BODY[]" => match &pair[1] {
                        Value::Bytes(b) => p.bytes = Some(b.clone()),
                        Value::Nil => p.bytes = Some(Vec::new()),
                        other => panic!("BODY[] is not a string: {other:?}"),
                    },
                    _ => {}
                }
            }
        }
        let mut out: Vec<FetchedMessage> = by_seq
            .into_iter()
            .filter(|(_, p)| p.bytes.is_some())
            .map(|(seq, p)| FetchedMessage {
                uid: p.uid.unwrap_or_else(|| panic!("no UID for message {seq}")),
                flags: p.flags.unwrap_or_default(),
                internaldate: p
                    .internaldate
                    .unwrap_or_else(|| panic!("no INTERNALDATE for message {seq}")),
                bytes: p.bytes.unwrap(),
            })
            .collect();
        out.sort_by_key(|m| m.uid);
        out
    }

    /// Raw names of all mailboxes (`LIST "" "*"`).
    pub fn list(&mut self) -> Vec<String> {
        self.list_with_attributes()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// `(raw name, attributes)` of all mailboxes, with special-use attributes
    /// (`LIST "" "*" RETURN (SPECIAL-USE)`).
    pub fn list_with_attributes(&mut self) -> Vec<(String, Vec<String>)> {
        let (untagged, _) = self.ok("LIST \"\" \"*\" RETURN (SPECIAL-USE)");
        untagged
            .iter()
            .filter_map(|resp| {
                let v = parse_values(resp);
                if v.len() >= 5 && v[1].as_str().eq_ignore_ascii_case("LIST") {
                    let attrs = v[2].as_list().iter().map(Value::as_str).collect();
                    Some((v[4].as_str(), attrs))
                } else {
                    None
                }
            })
            .collect()
    }

    /// UIDVALIDITY via `STATUS`.
    pub fn uidvalidity(&mut self, mailbox_raw: &str) -> u32 {
        self.status_item(mailbox_raw, "UIDVALIDITY") as u32
    }

    /// One numeric `STATUS` item (`MESSAGES`, `UIDNEXT`, `UIDVALIDITY`, `UNSEEN`, …).
    pub fn status_item(&mut self, mailbox_raw: &str, item: &str) -> u64 {
        let (untagged, _) = self.ok(&format!("STATUS {} ({item})", quote(mailbox_raw)));
        for resp in &untagged {
            let v = parse_values(resp);
            if v.len() >= 4 && v[1].as_str().eq_ignore_ascii_case("STATUS") {
                let items = v[3].as_list();
                for pair in items.chunks(2) {
                    if pair[0].as_str().eq_ignore_ascii_case(item) {
                        return pair[1].as_str().parse().expect("numeric STATUS item");
                    }
                }
            }
        }
        panic!("no {item} in the STATUS answer for {mailbox_raw}");
    }

    /// `UID STORE uid op (flags)`, op being `+FLAGS`, `-FLAGS` or `FLAGS`.
    pub fn store_flags(&mut self, mailbox_raw: &str, uid: u32, op: &str, flags: &[&str]) {
        self.select(mailbox_raw);
        self.ok(&format!("UID STORE {uid} {op} ({})", flags.join(" ")));
    }

    /// `UID STORE +FLAGS.SILENT (\Deleted)` then `UID EXPUNGE` of exactly these UIDs.
    pub fn expunge_uids(&mut self, mailbox_raw: &str, uids: &[u32]) {
        if uids.is_empty() {
            return;
        }
        self.select(mailbox_raw);
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        self.ok(&format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"));
        self.ok(&format!("UID EXPUNGE {set}"));
    }

    /// `RENAME`.
    pub fn rename(&mut self, from: &str, to: &str) {
        self.unselect();
        self.ok(&format!("RENAME {} {}", quote(from), quote(to)));
    }

    /// `DELETE`.
    pub fn delete_mailbox(&mut self, name: &str) {
        self.unselect();
        self.ok(&format!("DELETE {}", quote(name)));
    }

    /// `GETQUOTAROOT INBOX` → the STORAGE resource `(usage, limit)` in KiB.
    pub fn quota_usage_kib(&mut self) -> (u64, u64) {
        let (untagged, _) = self.ok("GETQUOTAROOT INBOX");
        for resp in &untagged {
            let v = parse_values(resp);
            if v.len() >= 4 && v[1].as_str().eq_ignore_ascii_case("QUOTA") {
                let items = v[3].as_list();
                for triple in items.chunks(3) {
                    if triple.len() == 3 && triple[0].as_str().eq_ignore_ascii_case("STORAGE") {
                        return (
                            triple[1].as_str().parse().expect("quota usage"),
                            triple[2].as_str().parse().expect("quota limit"),
                        );
                    }
                }
            }
        }
        panic!(
            "no STORAGE quota in the GETQUOTAROOT answer: {:?}\nhint: start the Dovecot with `quota_kib: Some(..)`",
            untagged
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect::<Vec<_>>()
        );
    }

    /// `SELECT` (read-write).
    pub fn select(&mut self, mailbox_raw: &str) {
        self.ok(&format!("SELECT {}", quote(mailbox_raw)));
        self.selected = Some(mailbox_raw.to_string());
    }

    fn unselect(&mut self) {
        if self.selected.take().is_some() {
            self.ok("UNSELECT");
        }
    }

    /// Sends `cmd` (without tag or CRLF) and returns the untagged responses (lossy
    /// UTF-8, literals inline, CRLF stripped) and the tagged line. Does NOT panic on
    /// NO/BAD; panics on a connection error.
    pub fn raw_command(&mut self, cmd: &str) -> (Vec<String>, String) {
        self.try_raw_command(cmd)
            .unwrap_or_else(|e| panic!("`{}`: connection error: {e}", redact(cmd)))
    }

    /// Like `raw_command`, but a connection error (closed, reset, timeout) is returned.
    pub fn try_raw_command(&mut self, cmd: &str) -> io::Result<(Vec<String>, String)> {
        let (untagged, tagged) = self.try_command(cmd)?;
        Ok((
            untagged
                .iter()
                .map(|l| lossy_line(l))
                .collect::<Vec<String>>(),
            tagged,
        ))
    }

    /// `LOGOUT`, waiting for the server's answer.
    pub fn logout(mut self) {
        let _ = self.try_command("LOGOUT");
    }

    fn login(&mut self, user: &str, password: &str) {
        self.ok(&format!("LOGIN {} {}", quote(user), quote(password)));
        if self.capabilities.is_empty() {
            self.ok("CAPABILITY");
        }
    }

    fn read_greeting(&mut self) {
        let g = self
            .read_response()
            .unwrap_or_else(|e| panic!("no IMAP greeting: {e}"));
        self.greeting = lossy_line(&g);
        assert!(
            self.greeting.starts_with("* OK"),
            "unexpected greeting: {}",
            self.greeting
        );
        self.note_capabilities(&g);
    }

    /// Runs a command and panics unless it ends in tagged OK.
    fn ok(&mut self, cmd: &str) -> (Vec<Vec<u8>>, String) {
        let (untagged, tagged) = self
            .try_command(cmd)
            .unwrap_or_else(|e| panic!("`{}`: connection error: {e}", redact(cmd)));
        check_ok(cmd, &tagged, &untagged);
        (untagged, tagged)
    }

    fn command_with_literal(&mut self, cmd: &str, literal: &[u8]) -> String {
        let tagged = self
            .try_command_with_literal(cmd, literal)
            .unwrap_or_else(|e| panic!("`{cmd}`: connection error: {e}"));
        check_ok::<Vec<u8>>(cmd, &tagged, &[]);
        tagged
    }

    /// Sends `cmd` (ending in a synchronising literal announcement), waits for `+`,
    /// sends the literal; returns the tagged line.
    fn try_command_with_literal(&mut self, cmd: &str, literal: &[u8]) -> io::Result<String> {
        let tag = self.tag();
        self.stream
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())?;
        self.stream.flush()?;
        loop {
            let resp = self.read_response()?;
            if resp.starts_with(b"+") {
                break;
            }
            if resp.starts_with(format!("{tag} ").as_bytes()) {
                // Refused before the literal (e.g. too big).
                return Ok(lossy_line(&resp));
            }
        }
        self.stream.write_all(literal)?;
        self.stream.write_all(b"\r\n")?;
        self.stream.flush()?;
        let (_, tagged) = self.read_until_tagged(&tag)?;
        Ok(tagged)
    }

    fn try_command(&mut self, cmd: &str) -> io::Result<(Vec<Vec<u8>>, String)> {
        let tag = self.tag();
        self.stream
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())?;
        self.stream.flush()?;
        self.read_until_tagged(&tag)
    }

    fn read_until_tagged(&mut self, tag: &str) -> io::Result<(Vec<Vec<u8>>, String)> {
        let mut untagged = Vec::new();
        loop {
            let resp = self.read_response()?;
            if resp.starts_with(format!("{tag} ").as_bytes()) {
                self.note_capabilities(&resp);
                return Ok((untagged, lossy_line(&resp)));
            }
            self.note_capabilities(&resp);
            untagged.push(resp);
        }
    }

    fn tag(&mut self) -> String {
        let t = format!("T{:04}", self.next_tag);
        self.next_tag += 1;
        t
    }

    fn note_capabilities(&mut self, resp: &[u8]) {
        let text = lossy_line(resp);
        let caps = if let Some(rest) = text.strip_prefix("* CAPABILITY ") {
            rest.to_string()
        } else if let Some(i) = text.find("[CAPABILITY ") {
            let rest = &text[i + "[CAPABILITY ".len()..];
            rest[..rest.find(']').unwrap_or(rest.len())].to_string()
        } else {
            return;
        };
        self.capabilities = caps.split_whitespace().map(str::to_string).collect();
    }

    /// Reads one whole response: a line, plus any literals it announces and the line
    /// continuing after each, byte for byte (CRLF included).
    fn read_response(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let line = self.read_line()?;
            out.extend_from_slice(&line);
            match literal_len(&line) {
                Some(n) => {
                    let lit = self.read_exact_n(n as usize)?;
                    out.extend_from_slice(&lit);
                }
                None => return Ok(out),
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i + 1;
                return Ok(self.buf.drain(..end).collect());
            }
            scanned = self.buf.len();
            self.fill()?;
        }
    }

    fn read_exact_n(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }
}

#[derive(Default)]
struct Partial {
    uid: Option<u32>,
    flags: Option<Vec<String>>,
    internaldate: Option<String>,
    bytes: Option<Vec<u8>>,
}

fn connect_tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn tls_wrap(
    tcp: TcpStream,
    ca_file: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let conn = rustls::ClientConnection::new(
        tls::client_config(ca_file),
        ServerName::try_from("localhost").unwrap(),
    )
    .expect("TLS client connection");
    rustls::StreamOwned::new(conn, tcp)
}

fn check_ok<T: AsRef<[u8]>>(cmd: &str, tagged: &str, untagged: &[T]) {
    let status = tagged.split_whitespace().nth(1).unwrap_or("");
    if !status.eq_ignore_ascii_case("OK") {
        let context: Vec<String> = untagged
            .iter()
            .rev()
            .take(5)
            .map(|l| lossy_line(l.as_ref()))
            .collect();
        panic!(
            "IMAP command `{}` failed: {tagged}\n(last untagged responses: {context:?})",
            redact(cmd)
        );
    }
}

/// Hides the password of a LOGIN command in panic messages.
fn redact(cmd: &str) -> String {
    if cmd.len() >= 6 && cmd[..6].eq_ignore_ascii_case("LOGIN ") {
        let user = cmd[6..].split(' ').next().unwrap_or("");
        format!("LOGIN {user} ***")
    } else {
        cmd.to_string()
    }
}

fn lossy_line(resp: &[u8]) -> String {
    let s = String::from_utf8_lossy(resp);
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .unwrap_or(&s)
        .to_string()
}

/// The UID of `[APPENDUID <validity> <uid>]` in a tagged line.
fn appenduid(tagged: &str) -> Option<u32> {
    let i = tagged.find("[APPENDUID ")?;
    let rest = &tagged[i + "[APPENDUID ".len()..];
    let end = rest.find(']')?;
    rest[..end].split_whitespace().nth(1)?.parse().ok()
}
