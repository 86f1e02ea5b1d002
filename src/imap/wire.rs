//! The command/response loop. async-imap's `Client` is used only as the framing
//! and parsing layer (its `ImapStream` + imap-proto); commands are written by us
//! through the raw stream, so that
//! - every command's tagged completion is checked here (async-imap swallows a
//!   tagged NO/BAD ending FETCH/STORE/SEARCH, upstream issue #95);
//! - untagged data is handed to the command's handler or dropped here, never
//!   queued in async-imap's bounded unsolicited channel;
//! - literals (APPEND, odd mailbox names, passwords) are sent with LITERAL+ or
//!   after the server's continuation, and literal8 when asked;
//! - every network await has the connection's timeout.
//!
//! A timeout, a lost connection or an unparseable response leaves the session
//! in an unknown state: the `Wire` is then marked broken and every later
//! command fails at once with a network error.

use std::borrow::Cow;
use std::time::Duration;

use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{Response, ResponseCode, Status};
use async_imap::Client;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::error::{BoxError, ImapError, ServerResponse};
use super::names::{quotable, quote};
use super::tls::Stream;
use super::trace;

/// What a command is about, for error messages.
pub(crate) struct Ctx<'a> {
    pub host: &'a str,
    pub command: &'static str,
    /// The mailbox concerned, decoded for people.
    pub mailbox: Option<String>,
}

impl Ctx<'_> {
    pub fn command_error(&self, source: ServerResponse) -> ImapError {
        ImapError::Command {
            host: self.host.to_string(),
            command: self.command,
            mailbox: self.mailbox.clone(),
            source: Box::new(source),
        }
    }

    pub fn parse_error(&self, source: impl Into<BoxError>) -> ImapError {
        ImapError::Parse {
            host: self.host.to_string(),
            command: self.command,
            mailbox: self.mailbox.clone(),
            source: source.into(),
        }
    }

    pub fn missing(&self, what: impl Into<String>) -> ImapError {
        ImapError::Missing {
            host: self.host.to_string(),
            command: self.command,
            mailbox: self.mailbox.clone(),
            what: what.into(),
        }
    }

    pub fn callback_error(&self, source: BoxError) -> ImapError {
        ImapError::Callback {
            host: self.host.to_string(),
            command: self.command,
            mailbox: self.mailbox.clone(),
            source,
        }
    }
}

enum Piece<'a> {
    Text(String),
    /// `{n}` / `~{n}` followed by the bytes.
    Literal {
        data: Cow<'a, [u8]>,
        binary: bool,
    },
    /// Ends the line, waits for the server's `+`, then continues with these
    /// bytes (AUTHENTICATE without SASL-IR). Never logged anywhere.
    AfterContinuation(String),
    /// A literal of `len` bytes read from `source` as it is sent (a message
    /// too big to hold in memory). See [`Cmd::literal_from`].
    Stream {
        len: u64,
        binary: bool,
        source: &'a mut (dyn AsyncRead + Unpin + Send),
    },
}

/// A command being built: text, astrings and literals.
pub(crate) struct Cmd<'a> {
    pieces: Vec<Piece<'a>>,
}

impl<'a> Cmd<'a> {
    pub fn new(text: impl Into<String>) -> Cmd<'a> {
        Cmd {
            pieces: vec![Piece::Text(text.into())],
        }
    }

    /// Appends raw protocol text.
    pub fn text(mut self, text: &str) -> Self {
        match self.pieces.last_mut() {
            Some(Piece::Text(t)) => t.push_str(text),
            _ => self.pieces.push(Piece::Text(text.to_string())),
        }
        self
    }

    /// Appends ` ` and an astring: quoted when it can be, else a literal.
    pub fn arg(self, s: &str) -> Self {
        let this = self.text(" ");
        if quotable(s) {
            this.text(&quote(s))
        } else {
            this.literal(Cow::Owned(s.as_bytes().to_vec()), false)
        }
    }

    /// Appends a literal (literal8 `~{n}` when `binary`).
    pub fn literal(mut self, data: Cow<'a, [u8]>, binary: bool) -> Self {
        self.pieces.push(Piece::Literal { data, binary });
        self
    }

    /// Appends a literal of exactly `len` bytes read from `source` while it
    /// is sent, [`WRITE_PIECE`] at a time: memory stays at one piece. The
    /// source must give `len` bytes and then its end; an error from it
    /// (even in place of its end: a store reader reports damage there), or
    /// a different length, leaves the server inside the literal, so the
    /// session is given up ([`ImapError::Source`]) and the command is never
    /// completed: the server stores nothing.
    pub fn literal_from(
        mut self,
        len: u64,
        source: &'a mut (dyn AsyncRead + Unpin + Send),
        binary: bool,
    ) -> Self {
        self.pieces.push(Piece::Stream {
            len,
            binary,
            source,
        });
        self
    }

    pub fn after_continuation(mut self, line: String) -> Self {
        self.pieces.push(Piece::AfterContinuation(line));
        self
    }
}

/// Turns a tagged or untagged NO/BAD/BYE into our error source.
pub(crate) fn server_response(
    status: &Status,
    code: Option<&ResponseCode<'_>>,
    info: Option<&str>,
) -> ServerResponse {
    let status = match status {
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::Bye => "BYE",
        Status::Ok => "OK",
        Status::PreAuth => "PREAUTH",
    };
    let info = info.unwrap_or("").trim();
    // imap-proto knows only some codes; unknown ones stay in the text.
    let (code, text) = match code {
        Some(c) => {
            let name = code_name(c);
            (Some(name.to_string()), format!("[{name}] {info}"))
        }
        None => {
            let code = info.strip_prefix('[').and_then(|rest| {
                let end = rest.find([']', ' '])?;
                Some(rest[..end].to_ascii_uppercase())
            });
            (code, info.to_string())
        }
    };
    ServerResponse {
        status,
        code,
        text: text.trim_end().to_string(),
    }
}

fn code_name(code: &ResponseCode<'_>) -> &'static str {
    match code {
        ResponseCode::Alert => "ALERT",
        ResponseCode::BadCharset(_) => "BADCHARSET",
        ResponseCode::Capabilities(_) => "CAPABILITY",
        ResponseCode::HighestModSeq(_) => "HIGHESTMODSEQ",
        ResponseCode::Parse => "PARSE",
        ResponseCode::PermanentFlags(_) => "PERMANENTFLAGS",
        ResponseCode::ReadOnly => "READ-ONLY",
        ResponseCode::ReadWrite => "READ-WRITE",
        ResponseCode::TryCreate => "TRYCREATE",
        ResponseCode::UidNext(_) => "UIDNEXT",
        ResponseCode::UidValidity(_) => "UIDVALIDITY",
        ResponseCode::Unseen(_) => "UNSEEN",
        ResponseCode::AppendUid(..) => "APPENDUID",
        ResponseCode::CopyUid(..) => "COPYUID",
        ResponseCode::UidNotSticky => "UIDNOTSTICKY",
        _ => "METADATA",
    }
}

/// What the tagged OK of a command said that callers need.
#[derive(Debug, Default)]
pub(crate) struct TaggedOk {
    /// `[APPENDUID validity uid-set]` (RFC 4315): the new UIDs in the order
    /// the messages were given (one for APPEND, one per message for
    /// MULTIAPPEND); empty without UIDPLUS.
    pub append_uids: Vec<u32>,
    /// `[COPYUID validity source-set dest-set]` (RFC 4315): each copied
    /// message's UID and its copy's, pairs in the server's order; empty
    /// without UIDPLUS.
    pub copy_uids: Vec<(u32, u32)>,
}

impl TaggedOk {
    pub fn append_uid(&self) -> Option<u32> {
        self.append_uids.first().copied()
    }
}

/// The UIDs of an APPENDUID set, ranges expanded in order (`3:5` is 3, 4, 5;
/// `5:3` the same set), at most `limit` of them: a server cannot make us
/// hold more UIDs than messages were sent.
fn expand_uid_set(set: &[UidSetMember], limit: usize) -> Vec<u32> {
    let mut out = Vec::new();
    for m in set {
        match m {
            UidSetMember::Uid(u) => out.push(*u),
            UidSetMember::UidRange(r) => {
                let (a, b) = (*r.start().min(r.end()), *r.start().max(r.end()));
                let mut u = a;
                while out.len() < limit {
                    out.push(u);
                    if u == b {
                        break;
                    }
                    u += 1;
                }
            }
        }
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    out
}

enum Step {
    /// The command at this index of those waited for completed.
    Finished(usize, Result<TaggedOk, ServerResponse>),
    /// `None`: continuation received; `Some`: tagged NO/BAD.
    Done(Option<ServerResponse>),
    Bye(ServerResponse),
    /// A `+` with this (decoded) text, during AUTHENTICATE.
    Challenge(String),
    Other,
}

/// Writes go out in pieces of this size, each with its own timeout, so that
/// the timeout measures a stall, not the time a big APPEND takes.
const WRITE_PIECE: usize = 64 * 1024;

pub(crate) struct Wire {
    client: Client<Stream>,
    timeout: Duration,
    next_tag: u32,
    pub literal_plus: bool,
    pub literal_minus: bool,
    broken: bool,
    bye: Option<ServerResponse>,
    /// This connection's number in the IMAP trace.
    trace_id: u32,
}

impl Wire {
    pub fn new(stream: Stream, timeout: Duration) -> Wire {
        Wire {
            client: Client::new(stream),
            timeout,
            next_tag: 0,
            literal_plus: false,
            literal_minus: false,
            broken: false,
            bye: None,
            trace_id: trace::next_id(),
        }
    }

    /// The raw stream, for STARTTLS. Bytes the server sent after its answer to
    /// STARTTLS and before the handshake are dropped with the buffer, as they
    /// must be (they could be injected).
    pub fn into_stream(self) -> Stream {
        self.client.into_inner()
    }

    fn timeout_error(&mut self, ctx: &Ctx<'_>, waiting_for: String) -> ImapError {
        self.broken = true;
        ImapError::Timeout {
            host: ctx.host.to_string(),
            waiting_for,
            secs: self.timeout.as_secs(),
        }
    }

    fn lost(&mut self, ctx: &Ctx<'_>, source: Option<BoxError>) -> ImapError {
        self.broken = true;
        let source = source.or_else(|| self.bye.clone().map(|b| Box::new(b) as BoxError));
        ImapError::Disconnected {
            host: ctx.host.to_string(),
            during: ctx.command.to_string(),
            source,
        }
    }

    fn check_usable(&mut self, ctx: &Ctx<'_>) -> Result<(), ImapError> {
        if self.broken {
            return Err(ImapError::Disconnected {
                host: ctx.host.to_string(),
                during: format!("{} (the session had already failed)", ctx.command),
                source: None,
            });
        }
        Ok(())
    }

    /// Reads the next response and hands it to `f` (the parsed response
    /// borrows async-imap's buffer, so it is looked at in place).
    pub async fn read<R>(
        &mut self,
        ctx: &Ctx<'_>,
        f: impl FnOnce(&Response<'_>) -> R,
    ) -> Result<R, ImapError> {
        self.check_usable(ctx)?;
        match tokio::time::timeout(self.timeout, self.client.read_response()).await {
            Err(_) => Err(self.timeout_error(ctx, format!("the response to {}", ctx.command))),
            Ok(Ok(Some(r))) => {
                if trace::on() {
                    trace::line(
                        ctx.host,
                        self.trace_id,
                        "S",
                        &trace::response_text(r.parsed()),
                    );
                }
                Ok(f(r.parsed()))
            }
            Ok(Ok(None)) => Err(self.lost(ctx, None)),
            Ok(Err(e)) => {
                self.broken = true;
                let text = e.to_string();
                if text.contains("during parsing of") || text.contains("incoming data too large") {
                    // async-imap puts the whole unparsed buffer (maybe a message)
                    // into the text: keep only its start.
                    let short: String = text.chars().take(300).collect();
                    Err(ctx.parse_error(short))
                } else {
                    Err(self.lost(ctx, Some(e.into())))
                }
            }
        }
    }

    async fn write(&mut self, ctx: &Ctx<'_>, bytes: &[u8]) -> Result<(), ImapError> {
        for piece in bytes.chunks(WRITE_PIECE) {
            let stream = self.client.get_mut();
            match tokio::time::timeout(self.timeout, stream.write_all(piece)).await {
                Err(_) => return Err(self.timeout_error(ctx, format!("sending {}", ctx.command))),
                Ok(Err(e)) => return Err(self.lost(ctx, Some(e.into()))),
                Ok(Ok(())) => {}
            }
        }
        Ok(())
    }

    /// Sends exactly `len` bytes read from `source`, then makes sure the
    /// source ends there (and so vouches for what it gave). Reads from the
    /// source have no timeout (it is local); each write has the usual one.
    async fn write_from(
        &mut self,
        ctx: &Ctx<'_>,
        len: u64,
        source: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<(), ImapError> {
        let mut buf = vec![0u8; WRITE_PIECE];
        let mut sent = 0u64;
        while sent < len {
            let want = (len - sent).min(WRITE_PIECE as u64) as usize;
            let n = match source.read(&mut buf[..want]).await {
                Ok(0) => {
                    return Err(self.source_failed(
                        ctx,
                        format!("the data ended after {sent} of {len} bytes").into(),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.source_failed(ctx, e.into())),
            };
            self.write(ctx, &buf[..n]).await?;
            sent += n as u64;
        }
        let mut one = [0u8; 1];
        loop {
            return match source.read(&mut one).await {
                Ok(0) => Ok(()),
                Ok(_) => Err(self.source_failed(
                    ctx,
                    format!("the data is longer than the {len} bytes announced").into(),
                )),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(self.source_failed(ctx, e.into())),
            };
        }
    }

    /// The source of a streamed literal failed: the server is left inside
    /// the literal (or past it, before the end of the command), so the
    /// session cannot go on.
    fn source_failed(&mut self, ctx: &Ctx<'_>, source: BoxError) -> ImapError {
        self.broken = true;
        ImapError::Source {
            host: ctx.host.to_string(),
            command: ctx.command,
            mailbox: ctx.mailbox.clone(),
            source,
        }
    }

    /// Whether the session can still be used (no timeout, no lost
    /// connection, no failed streamed literal so far).
    pub fn usable(&self) -> bool {
        !self.broken
    }

    async fn flush(&mut self, ctx: &Ctx<'_>) -> Result<(), ImapError> {
        let stream = self.client.get_mut();
        match tokio::time::timeout(self.timeout, stream.flush()).await {
            Err(_) => Err(self.timeout_error(ctx, format!("sending {}", ctx.command))),
            Ok(Err(e)) => Err(self.lost(ctx, Some(e.into()))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Waits for `+` after a synchronising literal. A tagged answer instead is
    /// the server refusing the command (e.g. APPEND too big).
    async fn wait_continuation(&mut self, ctx: &Ctx<'_>, tag: &str) -> Result<(), ImapError> {
        loop {
            let step = self
                .read(ctx, |r| match r {
                    Response::Continue(_) => Step::Done(None),
                    Response::Done {
                        tag: t,
                        status,
                        outcome,
                    } if t.0 == tag => Step::Done(Some(server_response(
                        status,
                        outcome.code.as_ref(),
                        outcome.information.as_deref(),
                    ))),
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => Step::Bye(server_response(
                        &Status::Bye,
                        outcome.code.as_ref(),
                        outcome.information.as_deref(),
                    )),
                    _ => Step::Other,
                })
                .await?;
            match step {
                Step::Done(None) => return Ok(()),
                Step::Done(Some(sr)) => return Err(ctx.command_error(sr)),
                Step::Bye(sr) => self.bye = Some(sr),
                Step::Finished(..) | Step::Challenge(_) | Step::Other => {}
            }
        }
    }

    /// Sends a command; returns its tag.
    pub async fn send(&mut self, ctx: &Ctx<'_>, cmd: &mut Cmd<'_>) -> Result<String, ImapError> {
        self.check_usable(ctx)?;
        self.next_tag += 1;
        let tag = format!("M{}", self.next_tag);
        if trace::on() {
            // What the trace may show: text, and literals as their size.
            let mut shown = String::new();
            for piece in &cmd.pieces {
                match piece {
                    Piece::Text(t) => shown.push_str(t),
                    Piece::Literal { data, .. } => {
                        shown.push_str(&format!("{{{}}} [{} bytes]", data.len(), data.len()))
                    }
                    Piece::Stream { len, .. } => {
                        shown.push_str(&format!("{{{len}}} [{len} bytes]"))
                    }
                    Piece::AfterContinuation(_) => shown.push_str(" [redacted]"),
                }
            }
            trace::line(
                ctx.host,
                self.trace_id,
                "C",
                &trace::command_text(&tag, &shown),
            );
        }
        let mut line: Vec<u8> = format!("{tag} ").into_bytes();
        for piece in &mut cmd.pieces {
            match piece {
                Piece::Text(t) => line.extend_from_slice(t.as_bytes()),
                Piece::Literal { data, binary } => {
                    let non_sync = self.literal_plus || (self.literal_minus && data.len() <= 4096);
                    line.extend_from_slice(
                        format!(
                            "{}{{{}{}}}\r\n",
                            if *binary { "~" } else { "" },
                            data.len(),
                            if non_sync { "+" } else { "" }
                        )
                        .as_bytes(),
                    );
                    self.write(ctx, &line).await?;
                    line.clear();
                    if !non_sync {
                        self.flush(ctx).await?;
                        self.wait_continuation(ctx, &tag).await?;
                    }
                    self.write(ctx, data).await?;
                }
                Piece::Stream {
                    len,
                    binary,
                    source,
                } => {
                    let non_sync = self.literal_plus || (self.literal_minus && *len <= 4096);
                    line.extend_from_slice(
                        format!(
                            "{}{{{}{}}}\r\n",
                            if *binary { "~" } else { "" },
                            len,
                            if non_sync { "+" } else { "" }
                        )
                        .as_bytes(),
                    );
                    self.write(ctx, &line).await?;
                    line.clear();
                    if !non_sync {
                        self.flush(ctx).await?;
                        self.wait_continuation(ctx, &tag).await?;
                    }
                    self.write_from(ctx, *len, &mut **source).await?;
                }
                Piece::AfterContinuation(text) => {
                    line.extend_from_slice(b"\r\n");
                    self.write(ctx, &line).await?;
                    self.flush(ctx).await?;
                    self.wait_continuation(ctx, &tag).await?;
                    line = text.as_bytes().to_vec();
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        self.write(ctx, &line).await?;
        self.flush(ctx).await?;
        Ok(tag)
    }

    /// Runs a command to its tagged completion. Untagged responses go to
    /// `handler`; if it fails, the rest of the command's responses are still
    /// read (so the session stays usable) and its first error is returned.
    /// A tagged NO/BAD is a [`ImapError::Command`].
    pub async fn run(
        &mut self,
        ctx: &Ctx<'_>,
        cmd: Cmd<'_>,
        handler: &mut (dyn FnMut(&Response<'_>) -> Result<(), ImapError> + Send),
    ) -> Result<TaggedOk, ImapError> {
        let mut cmd = cmd;
        let tag = self.send(ctx, &mut cmd).await?;
        drop(cmd);
        let (_, done) = self.finish_one_of(ctx, &[tag], usize::MAX, handler).await?;
        done.map_err(|sr| ctx.command_error(sr))
    }

    /// Whether every literal of `cmd` goes without waiting for the server's
    /// `+` (LITERAL+, or LITERAL- for small ones): only such commands can be
    /// sent while others are still in flight.
    pub fn sends_without_waiting(&self, cmd: &Cmd<'_>) -> bool {
        cmd.pieces.iter().all(|p| match p {
            Piece::Text(_) => true,
            Piece::Literal { data, .. } => {
                self.literal_plus || (self.literal_minus && data.len() <= 4096)
            }
            Piece::Stream { len, .. } => self.literal_plus || (self.literal_minus && *len <= 4096),
            Piece::AfterContinuation(_) => false,
        })
    }

    /// Reads responses until one of the commands tagged `tags` completes,
    /// and says which (its index in `tags`) and how: the tagged OK, or the
    /// server's NO/BAD. Untagged responses go to `handler` as in
    /// [`run`](Self::run). `uid_limit` caps the UIDs taken from an
    /// APPENDUID (the number of messages that command sent).
    pub async fn finish_one_of(
        &mut self,
        ctx: &Ctx<'_>,
        tags: &[String],
        uid_limit: usize,
        handler: &mut (dyn FnMut(&Response<'_>) -> Result<(), ImapError> + Send),
    ) -> Result<(usize, Result<TaggedOk, ServerResponse>), ImapError> {
        let mut deferred: Option<ImapError> = None;
        loop {
            let step = self
                .read(ctx, |r| match r {
                    Response::Done {
                        tag: t,
                        status,
                        outcome,
                    } => match tags.iter().position(|x| *x == t.0) {
                        None => Step::Other,
                        Some(i) => match status {
                            Status::Ok => Step::Finished(
                                i,
                                Ok(TaggedOk {
                                    append_uids: match &outcome.code {
                                        Some(ResponseCode::AppendUid(_, set)) => {
                                            expand_uid_set(set, uid_limit)
                                        }
                                        _ => Vec::new(),
                                    },
                                    copy_uids: match &outcome.code {
                                        Some(ResponseCode::CopyUid(_, from, to)) => {
                                            let from = expand_uid_set(from, uid_limit);
                                            let to = expand_uid_set(to, uid_limit);
                                            if from.len() == to.len() {
                                                from.into_iter().zip(to).collect()
                                            } else {
                                                Vec::new()
                                            }
                                        }
                                        _ => Vec::new(),
                                    },
                                }),
                            ),
                            _ => Step::Finished(
                                i,
                                Err(server_response(
                                    status,
                                    outcome.code.as_ref(),
                                    outcome.information.as_deref(),
                                )),
                            ),
                        },
                    },
                    // A stale completion of an earlier command (after a timeout
                    // the session is never reused, so this should not happen).
                    Response::Continue(_) => Step::Other,
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => Step::Bye(server_response(
                        &Status::Bye,
                        outcome.code.as_ref(),
                        outcome.information.as_deref(),
                    )),
                    other => {
                        if deferred.is_none() {
                            if let Err(e) = handler(other) {
                                deferred = Some(e);
                            }
                        }
                        Step::Other
                    }
                })
                .await?;
            match step {
                Step::Finished(i, Ok(ok)) => {
                    return match deferred {
                        Some(e) => Err(e),
                        None => Ok((i, Ok(ok))),
                    }
                }
                Step::Finished(i, Err(sr)) => return Ok((i, Err(sr))),
                Step::Bye(sr) => self.bye = Some(sr),
                Step::Done(_) | Step::Challenge(_) | Step::Other => {}
            }
        }
    }

    /// Runs AUTHENTICATE to its tagged completion. The initial response is
    /// in `cmd` (SASL-IR, or after the first `+`). A `+` after that is the
    /// server's error challenge (XOAUTH2, OAUTHBEARER): it is answered with
    /// `error_reply` (an empty line, or `AQ==`), since a client that does
    /// not answer waits for ever, and its text (base64 decoded) is returned
    /// with the error.
    pub async fn run_sasl(
        &mut self,
        ctx: &Ctx<'_>,
        cmd: Cmd<'_>,
        error_reply: &str,
    ) -> Result<(), (ImapError, Option<String>)> {
        let mut cmd = cmd;
        let tag = self.send(ctx, &mut cmd).await.map_err(|e| (e, None))?;
        drop(cmd);
        let mut challenge: Option<String> = None;
        loop {
            let step = self
                .read(ctx, |r| match r {
                    Response::Done {
                        tag: t,
                        status,
                        outcome,
                    } if t.0 == tag => match status {
                        Status::Ok => Step::Finished(0, Ok(TaggedOk::default())),
                        _ => Step::Done(Some(server_response(
                            status,
                            outcome.code.as_ref(),
                            outcome.information.as_deref(),
                        ))),
                    },
                    Response::Continue(outcome) => {
                        let text = outcome.information.as_deref().unwrap_or("").trim();
                        use base64::Engine as _;
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(text)
                            .ok()
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_else(|| text.to_string());
                        Step::Challenge(decoded)
                    }
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => Step::Bye(server_response(
                        &Status::Bye,
                        outcome.code.as_ref(),
                        outcome.information.as_deref(),
                    )),
                    _ => Step::Other,
                })
                .await
                .map_err(|e| (e, challenge.clone()))?;
            match step {
                Step::Finished(_, Ok(_)) => return Ok(()),
                Step::Finished(_, Err(sr)) | Step::Done(Some(sr)) => {
                    return Err((ctx.command_error(sr), challenge))
                }
                Step::Challenge(text) => {
                    challenge = Some(text);
                    let line = format!("{error_reply}\r\n");
                    self.write(ctx, line.as_bytes())
                        .await
                        .map_err(|e| (e, challenge.clone()))?;
                    self.flush(ctx).await.map_err(|e| (e, challenge.clone()))?;
                }
                Step::Bye(sr) => self.bye = Some(sr),
                Step::Done(None) | Step::Other => {}
            }
        }
    }

    /// Sends a command whose answer imap-proto cannot parse (NAMESPACE) and
    /// reads the answer as raw lines up to and including the tagged line. Safe
    /// because the framing buffer is empty between commands (the server sends
    /// nothing unasked outside a command), and bytes are read one at a time so
    /// nothing after the tagged line is taken from the framing layer.
    pub async fn run_raw(
        &mut self,
        ctx: &Ctx<'_>,
        cmd: Cmd<'_>,
    ) -> Result<(String, Vec<Vec<u8>>), ImapError> {
        let mut cmd = cmd;
        let tag = self.send(ctx, &mut cmd).await?;
        let mut lines = Vec::new();
        loop {
            let line = self.read_raw_line(ctx).await?;
            if trace::on() {
                let text: String = String::from_utf8_lossy(&line).chars().take(300).collect();
                trace::line(ctx.host, self.trace_id, "S", &text);
            }
            if line.starts_with(format!("{tag} ").as_bytes()) {
                return Ok((
                    String::from_utf8_lossy(&line[tag.len() + 1..]).into_owned(),
                    lines,
                ));
            }
            lines.push(line);
        }
    }

    /// One response line, with any literals inside it, without the final CRLF.
    async fn read_raw_line(&mut self, ctx: &Ctx<'_>) -> Result<Vec<u8>, ImapError> {
        const MAX: usize = 1 << 20;
        let mut line = Vec::new();
        loop {
            let b = self.read_raw_byte(ctx).await?;
            line.push(b);
            if line.len() > MAX {
                self.broken = true;
                return Err(ctx.parse_error("response line longer than 1 MiB"));
            }
            if line.ends_with(b"\r\n") {
                line.truncate(line.len() - 2);
                // A literal `{n}` at the end of the line: its bytes follow.
                if let Some(n) = literal_len(&line) {
                    if n > MAX {
                        self.broken = true;
                        return Err(ctx.parse_error("literal longer than 1 MiB"));
                    }
                    line.extend_from_slice(b"\r\n");
                    for _ in 0..n {
                        let b = self.read_raw_byte(ctx).await?;
                        line.push(b);
                    }
                    continue;
                }
                return Ok(line);
            }
        }
    }

    async fn read_raw_byte(&mut self, ctx: &Ctx<'_>) -> Result<u8, ImapError> {
        let mut b = [0u8; 1];
        let stream = self.client.get_mut();
        match tokio::time::timeout(self.timeout, stream.read(&mut b)).await {
            Err(_) => Err(self.timeout_error(ctx, format!("the response to {}", ctx.command))),
            Ok(Err(e)) => Err(self.lost(ctx, Some(e.into()))),
            Ok(Ok(0)) => Err(self.lost(ctx, None)),
            Ok(Ok(_)) => Ok(b[0]),
        }
    }
}

/// `… {12}` / `… {12+}` / `… ~{12}` at the end of a line → 12.
fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_length_at_end_of_line() {
        assert_eq!(literal_len(b"* NAMESPACE (({5}"), Some(5));
        assert_eq!(literal_len(b"* X ~{12+}"), Some(12));
        assert_eq!(literal_len(b"* OK {no}"), None);
        assert_eq!(literal_len(b"* OK done"), None);
    }

    #[test]
    fn unknown_codes_are_taken_from_the_text() {
        let sr = server_response(
            &Status::No,
            None,
            Some("[UNAVAILABLE] Temporary authentication failure."),
        );
        assert_eq!(sr.code.as_deref(), Some("UNAVAILABLE"));
        assert!(sr.is_temporary());
        assert_eq!(sr.text, "[UNAVAILABLE] Temporary authentication failure.");
        let sr = server_response(
            &Status::No,
            Some(&ResponseCode::TryCreate),
            Some("no such mailbox"),
        );
        assert_eq!(sr.code.as_deref(), Some("TRYCREATE"));
        assert_eq!(sr.text, "[TRYCREATE] no such mailbox");
        let sr = server_response(&Status::Bad, None, Some("Error in IMAP command"));
        assert_eq!(sr.code, None);
        assert_eq!(sr.status, "BAD");
    }
}
