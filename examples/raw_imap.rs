//! The limits `benches/compare.sh` measures tools against: the least a
//! client can do over one IMAP connection (plain std sockets + rustls, no
//! parsing beyond what the protocol needs, bytes read and dropped).
//!
//!     raw_imap fetch        --port P --user U --password-env VAR --ca CA.pem
//!     raw_imap list-status  …   connect, TLS, LOGIN, one LIST … RETURN (STATUS …), LOGOUT
//!     raw_imap append       … --source MAILDIR [--mode multi|single] [--batch 200]
//!                               [--literal plus|sync] [--folders FILE]
//!     raw_imap flags        … --every 10 --offset K
//!
//! `fetch`: LIST, then per folder EXAMINE and `UID FETCH 1:* BODY.PEEK[]`,
//! each literal read in 64 KiB pieces and discarded.
//! `append`: every message of a Maildir (flags from the file name,
//! INTERNALDATE from the mtime, bare LF sent as CRLF, the way Dovecot serves
//! it) into the same folders of the target account, created when missing.
//! `--mode multi`: MULTIAPPEND (RFC 3502) of `--batch` messages per command
//! with LITERAL+ (RFC 7888) literals, one command in flight; `--mode single`:
//! one APPEND per message, each waiting for its tagged OK (`--literal sync`
//! also waits for the `+` continuation before the literal, as a client
//! without LITERAL+ does).
//! `flags`: per folder, the messages with sequence number ≡ K mod N get
//! \Flagged toggled (set where it was clear, cleared where set).
//!
//! Prints `key=value` lines (messages, bytes, folders) on stdout. Any tagged
//! NO/BAD (but CREATE of a folder that exists) ends it with exit code 1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn die(msg: &str) -> ! {
    eprintln!("raw_imap: {msg}");
    std::process::exit(1);
}

struct Conn {
    s: Tls,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    out: Vec<u8>,
    tag: u32,
}

/// A tagged completion and what came before it.
struct Done {
    /// Untagged lines (literals left out), as text.
    lines: Vec<String>,
    literal_bytes: u64,
    literals: u64,
}

impl Conn {
    fn connect(port: u16, ca: &Path) -> Conn {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca)
            .unwrap_or_else(|e| die(&format!("cannot read {}: {e}", ca.display())));
        for c in rustls_pemfile::certs(&mut pem.as_slice()) {
            let c = c.unwrap_or_else(|e| die(&format!("bad PEM in {}: {e}", ca.display())));
            roots
                .add(c)
                .unwrap_or_else(|e| die(&format!("bad CA: {e}")));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| die(&format!("cannot connect to 127.0.0.1:{port}: {e}")));
        tcp.set_nodelay(true).expect("nodelay");
        let tls = rustls::ClientConnection::new(Arc::new(cfg), name).expect("tls");
        let mut c = Conn {
            s: rustls::StreamOwned::new(tls, tcp),
            buf: vec![0; 256 * 1024],
            pos: 0,
            end: 0,
            out: Vec::with_capacity(128 * 1024),
            tag: 0,
        };
        let greeting = c.line();
        if !greeting.starts_with(b"* OK") {
            die(&format!(
                "unexpected greeting {:?}",
                String::from_utf8_lossy(&greeting)
            ));
        }
        c
    }

    fn fill(&mut self) {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        let n = self
            .s
            .read(&mut self.buf[self.end..])
            .unwrap_or_else(|e| die(&format!("read: {e}")));
        if n == 0 {
            die("the server closed the connection");
        }
        self.end += n;
    }

    /// One line up to and including CRLF.
    fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        loop {
            if let Some(i) = self.buf[self.pos..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                line.extend_from_slice(&self.buf[self.pos..self.pos + i + 1]);
                self.pos += i + 1;
                return line;
            }
            line.extend_from_slice(&self.buf[self.pos..self.end]);
            self.pos = self.end;
            if self.end == self.buf.len() {
                self.pos = 0;
                self.end = 0;
            }
            self.fill();
        }
    }

    /// Reads and drops `n` bytes.
    fn skip(&mut self, mut n: u64) {
        while n > 0 {
            if self.pos == self.end {
                self.fill();
            }
            let take = ((self.end - self.pos) as u64).min(n) as usize;
            self.pos += take;
            n -= take as u64;
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        if self.out.len() >= 64 * 1024 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            self.s
                .write_all(&self.out)
                .unwrap_or_else(|e| die(&format!("write: {e}")));
            self.out.clear();
        }
        self.s
            .flush()
            .unwrap_or_else(|e| die(&format!("write: {e}")));
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("a{}", self.tag)
    }

    /// Reads responses up to the tagged completion of `tag`; literals are
    /// counted and dropped. Returns the completion line and what came before.
    fn until(&mut self, tag: &str) -> (String, Done) {
        let mut done = Done {
            lines: Vec::new(),
            literal_bytes: 0,
            literals: 0,
        };
        let prefix = format!("{tag} ");
        loop {
            let mut text = String::new();
            loop {
                let l = self.line();
                let s = String::from_utf8_lossy(&l).into_owned();
                let trimmed = s.trim_end_matches(['\r', '\n']);
                if let Some(n) = literal_len(trimmed) {
                    text.push_str(trimmed);
                    self.skip(n);
                    done.literal_bytes += n;
                    done.literals += 1;
                    continue;
                }
                text.push_str(trimmed);
                break;
            }
            if let Some(rest) = text.strip_prefix(&prefix) {
                return (rest.to_string(), done);
            }
            done.lines.push(text);
        }
    }

    /// Sends a command and waits for its completion; NO/BAD ends the program.
    fn cmd(&mut self, command: &str) -> Done {
        let (status, done) = self.cmd_status(command);
        if !status.starts_with("OK") {
            die(&format!("`{command}` failed: {status}"));
        }
        done
    }

    fn cmd_status(&mut self, command: &str) -> (String, Done) {
        let tag = self.next_tag();
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.flush();
        self.until(&tag)
    }

    fn login(&mut self, user: &str, password: &str) {
        self.cmd(&format!("LOGIN {} {}", quote(user), quote(password)));
    }
}

/// `{123}` or `{123+}` at the end of a line.
fn literal_len(line: &str) -> Option<u64> {
    let open = line.rfind('{')?;
    let inner = line[open + 1..].strip_suffix('}')?;
    inner.trim_end_matches('+').parse().ok()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The mailbox names of `* LIST (…) "/" name` lines (quoted or atom).
fn list_names(done: &Done) -> Vec<String> {
    let mut names = Vec::new();
    for l in &done.lines {
        let Some(rest) = l.strip_prefix("* LIST ") else {
            continue;
        };
        if rest.contains("\\Noselect") || rest.contains("\\NonExistent") {
            continue;
        }
        let Some(close) = rest.find(')') else {
            continue;
        };
        let rest = rest[close + 1..].trim_start();
        // The delimiter: a quoted character or NIL.
        let rest = if let Some(r) = rest.strip_prefix("NIL") {
            r
        } else if rest.starts_with("\"\\") {
            &rest[4..]
        } else {
            &rest[3..]
        };
        let rest = rest.trim_start();
        let name = if let Some(q) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut esc = false;
            for c in q.chars() {
                if esc {
                    out.push(c);
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    break;
                } else {
                    out.push(c);
                }
            }
            out
        } else {
            rest.to_string()
        };
        names.push(name);
    }
    names
}

fn exists(done: &Done) -> u64 {
    done.lines
        .iter()
        .filter_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
        .next_back()
        .unwrap_or(0)
}

struct Opts {
    port: u16,
    user: String,
    password: String,
    ca: PathBuf,
    source: Option<PathBuf>,
    mode: String,
    batch: usize,
    literal_sync: bool,
    folders: Option<PathBuf>,
    every: u64,
    offset: u64,
}

fn fetch(o: &Opts) {
    let mut c = Conn::connect(o.port, &o.ca);
    c.login(&o.user, &o.password);
    let names = list_names(&c.cmd(r#"LIST "" "*""#));
    let (mut messages, mut bytes) = (0u64, 0u64);
    for name in &names {
        let ex = exists(&c.cmd(&format!("EXAMINE {}", quote(name))));
        if ex == 0 {
            continue;
        }
        let d = c.cmd("UID FETCH 1:* BODY.PEEK[]");
        messages += d.literals;
        bytes += d.literal_bytes;
    }
    c.cmd("LOGOUT");
    println!(
        "messages={messages}\nbytes={bytes}\nfolders={}",
        names.len()
    );
}

fn list_status(o: &Opts) {
    let mut c = Conn::connect(o.port, &o.ca);
    c.login(&o.user, &o.password);
    let d = c.cmd(r#"LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))"#);
    let statuses = d
        .lines
        .iter()
        .filter(|l| l.starts_with("* STATUS "))
        .count();
    let (s, _) = c.cmd_status("LOGOUT");
    let _ = s;
    println!("folders={}\nstatuses={statuses}", list_names(&d).len());
}

/// A Maildir++ tree: (wire name, message files), INBOX first.
fn maildir_folders(root: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    let mut dirs = vec![("INBOX".to_string(), root.to_path_buf())];
    let mut subs: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|e| die(&format!("cannot read {}: {e}", root.display())))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let wire = n.strip_prefix('.')?.replace('.', "/");
            (!wire.is_empty() && e.path().join("cur").is_dir()).then(|| (wire, e.path()))
        })
        .collect();
    subs.sort();
    dirs.extend(subs);
    for (wire, dir) in dirs {
        let mut files = Vec::new();
        for sub in ["cur", "new"] {
            if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
                files.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        }
        files.sort();
        out.push((wire, files));
    }
    out
}

/// IMAP flags of a Maildir file name (`…:2,FRS`).
fn maildir_flags(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some((_, f)) = name.rsplit_once(":2,") else {
        return String::new();
    };
    let mut flags = Vec::new();
    for c in f.chars() {
        match c {
            'S' => flags.push("\\Seen"),
            'R' => flags.push("\\Answered"),
            'F' => flags.push("\\Flagged"),
            'D' => flags.push("\\Draft"),
            'T' => flags.push("\\Deleted"),
            _ => {}
        }
    }
    flags.join(" ")
}

fn internaldate(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m =
        std::fs::metadata(path).unwrap_or_else(|e| die(&format!("stat {}: {e}", path.display())));
    chrono::DateTime::from_timestamp(m.mtime(), 0)
        .expect("date")
        .format("%d-%b-%Y %H:%M:%S +0000")
        .to_string()
}

/// The message with every bare LF made CRLF.
fn crlf(bytes: Vec<u8>) -> Vec<u8> {
    let bare = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
    if !bare {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 30);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn append(o: &Opts) {
    let root = o
        .source
        .as_ref()
        .unwrap_or_else(|| die("`append` needs `--source MAILDIR`"));
    let only: Option<Vec<String>> = o.folders.as_ref().map(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_else(|e| die(&format!("cannot read {}: {e}", f.display())))
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    });
    let mut c = Conn::connect(o.port, &o.ca);
    c.login(&o.user, &o.password);
    let (mut messages, mut bytes, mut folders) = (0u64, 0u64, 0u64);
    for (wire, files) in maildir_folders(root) {
        if let Some(only) = &only {
            if !only.contains(&wire) {
                continue;
            }
        }
        folders += 1;
        if wire != "INBOX" {
            let (status, _) = c.cmd_status(&format!("CREATE {}", quote(&wire)));
            if !status.starts_with("OK") && !status.contains("ALREADYEXISTS") {
                die(&format!("CREATE {wire} failed: {status}"));
            }
        }
        let mailbox = quote(&wire);
        let batch = if o.mode == "multi" { o.batch.max(1) } else { 1 };
        for chunk in files.chunks(batch) {
            let tag = c.next_tag();
            c.send(format!("{tag} APPEND {mailbox}").as_bytes());
            for path in chunk {
                let msg = crlf(
                    std::fs::read(path)
                        .unwrap_or_else(|e| die(&format!("read {}: {e}", path.display()))),
                );
                let head = format!(
                    " ({}) \"{}\" {{{}{}}}\r\n",
                    maildir_flags(path),
                    internaldate(path),
                    msg.len(),
                    if o.literal_sync { "" } else { "+" }
                );
                c.send(head.as_bytes());
                if o.literal_sync {
                    c.flush();
                    let l = c.line();
                    if !l.starts_with(b"+") {
                        die(&format!(
                            "APPEND: no continuation: {}",
                            String::from_utf8_lossy(&l)
                        ));
                    }
                }
                c.send(&msg);
                messages += 1;
                bytes += msg.len() as u64;
            }
            c.send(b"\r\n");
            c.flush();
            let (status, _) = c.until(&tag);
            if !status.starts_with("OK") {
                die(&format!("APPEND to {wire} failed: {status}"));
            }
        }
    }
    c.cmd("LOGOUT");
    println!("messages={messages}\nbytes={bytes}\nfolders={folders}");
}

fn flags(o: &Opts) {
    let mut c = Conn::connect(o.port, &o.ca);
    c.login(&o.user, &o.password);
    let names = list_names(&c.cmd(r#"LIST "" "*""#));
    let mut changed = 0u64;
    for name in &names {
        let n = exists(&c.cmd(&format!("SELECT {}", quote(name))));
        let seqs: Vec<u64> = (1..=n)
            .filter(|s| s % o.every == o.offset % o.every)
            .collect();
        for chunk in seqs.chunks(1000) {
            let set = chunk
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let d = c.cmd(&format!("FETCH {set} (FLAGS)"));
            let (mut on, mut off) = (Vec::new(), Vec::new());
            for l in &d.lines {
                let Some(rest) = l.strip_prefix("* ") else {
                    continue;
                };
                let Some((seq, rest)) = rest.split_once(' ') else {
                    continue;
                };
                if !rest.starts_with("FETCH") {
                    continue;
                }
                if rest.contains("\\Flagged") {
                    off.push(seq.to_string());
                } else {
                    on.push(seq.to_string());
                }
            }
            if !on.is_empty() {
                c.cmd(&format!("STORE {} +FLAGS.SILENT (\\Flagged)", on.join(",")));
            }
            if !off.is_empty() {
                c.cmd(&format!(
                    "STORE {} -FLAGS.SILENT (\\Flagged)",
                    off.join(",")
                ));
            }
            changed += (on.len() + off.len()) as u64;
        }
    }
    c.cmd("LOGOUT");
    println!("messages={changed}\nfolders={}", names.len());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args
        .next()
        .unwrap_or_else(|| die("give a command: fetch, list-status, append or flags"));
    let mut o = Opts {
        port: 0,
        user: String::new(),
        password: String::new(),
        ca: PathBuf::new(),
        source: None,
        mode: "multi".into(),
        batch: 200,
        literal_sync: false,
        folders: None,
        every: 10,
        offset: 0,
    };
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("`{a}` needs a value")))
        };
        match a.as_str() {
            "--port" => o.port = val().parse().unwrap_or_else(|_| die("bad --port")),
            "--user" => o.user = val(),
            "--password-env" => {
                let var = val();
                o.password =
                    std::env::var(&var).unwrap_or_else(|_| die(&format!("${var} is not set")));
            }
            "--ca" => o.ca = PathBuf::from(val()),
            "--source" => o.source = Some(PathBuf::from(val())),
            "--mode" => o.mode = val(),
            "--batch" => o.batch = val().parse().unwrap_or_else(|_| die("bad --batch")),
            "--literal" => o.literal_sync = val() == "sync",
            "--folders" => o.folders = Some(PathBuf::from(val())),
            "--every" => o.every = val().parse().unwrap_or_else(|_| die("bad --every")),
            "--offset" => o.offset = val().parse().unwrap_or_else(|_| die("bad --offset")),
            _ => die(&format!("unknown argument `{a}`")),
        }
    }
    if o.port == 0 || o.user.is_empty() {
        die("`--port` and `--user` are required");
    }
    match command.as_str() {
        "fetch" => fetch(&o),
        "list-status" => list_status(&o),
        "append" => append(&o),
        "flags" => flags(&o),
        _ => die(&format!("unknown command `{command}`")),
    }
}
