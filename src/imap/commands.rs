//! Mailbox and message commands. Each one runs through `Wire::run`, which
//! checks the tagged completion: a NO/BAD is an error naming the command and
//! the mailbox, never an empty result.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use async_imap::imap_proto::rfc2087::QuotaResourceName;
use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, MailboxListData, NameAttribute, Response, ResponseCode, Status,
    StatusAttribute,
};

use tokio::io::AsyncRead;

use super::conn::Connection;
use super::error::{BoxError, ImapError, ServerResponse};
use super::names::{compress_uid_set, decode_mailbox_name, is_sequence_set, unescape_quoted};
use super::namespace::{parse_namespace_line, Namespace};
use super::wire::{Cmd, Ctx};
use crate::model::{Flags, Folder, InternalDate, MailboxState, MessageMeta, Uid};

/// One quota root of a mailbox (RFC 2087 GETQUOTAROOT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaRoot {
    pub name: String,
    pub resources: Vec<QuotaResource>,
}

/// A resource of a quota root. `STORAGE` is in KiB, as the server says;
/// `MESSAGE` is a count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaResource {
    pub name: String,
    pub usage: u64,
    pub limit: u64,
}

/// One message of a [`Connection::multiappend`] or
/// [`Connection::append_pipelined`] batch.
#[derive(Clone, Copy, Debug)]
pub struct AppendMessage<'a> {
    pub flags: &'a Flags,
    pub date: Option<&'a InternalDate>,
    pub bytes: &'a [u8],
}

/// What [`Connection::fetch_identity`] returns for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageIdentity {
    pub uid: Uid,
    /// RFC822.SIZE as the server counts it.
    pub size: u64,
    pub internaldate: InternalDate,
    /// `BODY[HEADER.FIELDS (MESSAGE-ID)]` exactly as served.
    pub message_id_header: Vec<u8>,
}

const SPECIAL_USE: [&str; 8] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
    "\\Important",
];

fn attribute_name(a: &NameAttribute<'_>) -> Cow<'static, str> {
    Cow::Borrowed(match a {
        NameAttribute::NoInferiors => "\\Noinferiors",
        NameAttribute::NoSelect => "\\Noselect",
        NameAttribute::Marked => "\\Marked",
        NameAttribute::Unmarked => "\\Unmarked",
        NameAttribute::All => "\\All",
        NameAttribute::Archive => "\\Archive",
        NameAttribute::Drafts => "\\Drafts",
        NameAttribute::Flagged => "\\Flagged",
        NameAttribute::Junk => "\\Junk",
        NameAttribute::Sent => "\\Sent",
        NameAttribute::Trash => "\\Trash",
        NameAttribute::Extension(s) => return Cow::Owned(s.to_string()),
        _ => "\\Unknown",
    })
}

fn folder_from(l: &MailboxListData<'_>) -> Folder {
    let raw = unescape_quoted(&l.name);
    let attrs: Vec<Cow<'static, str>> = l.name_attributes.iter().map(attribute_name).collect();
    let special_use = attrs
        .iter()
        .find_map(|a| SPECIAL_USE.iter().find(|s| s.eq_ignore_ascii_case(a)))
        .map(|s| s.to_string());
    let selectable = !attrs
        .iter()
        .any(|a| a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"));
    Folder {
        display: decode_mailbox_name(&raw),
        delimiter: l
            .delimiter
            .as_deref()
            .and_then(|d| unescape_quoted(d).chars().next()),
        raw,
        special_use,
        selectable,
    }
}

/// A flag as IMAP writes it: a keyword atom, or `\` and an atom.
fn is_flag(f: &str) -> bool {
    let atom = f.strip_prefix('\\').unwrap_or(f);
    !atom.is_empty()
        && atom
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

/// Parses the text of a tagged line read raw (`NO [CODE] text`).
pub(super) fn tagged_text(line: &str) -> (Status, ServerResponse) {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (status, name) = match word.to_ascii_uppercase().as_str() {
        "OK" => (Status::Ok, "OK"),
        "NO" => (Status::No, "NO"),
        _ => (Status::Bad, "BAD"),
    };
    let code = rest.strip_prefix('[').and_then(|r| {
        let end = r.find([']', ' '])?;
        Some(r[..end].to_ascii_uppercase())
    });
    (
        status,
        ServerResponse {
            status: name,
            code,
            text: rest.trim().to_string(),
        },
    )
}

pub(super) fn ctx<'a>(host: &'a str, command: &'static str, mailbox: Option<&str>) -> Ctx<'a> {
    Ctx {
        host,
        command,
        mailbox: mailbox.map(decode_mailbox_name),
    }
}

impl Connection {
    pub(super) fn check_set(command: &'static str, set: &str) -> Result<(), ImapError> {
        if is_sequence_set(set) {
            Ok(())
        } else {
            Err(ImapError::InvalidArgument {
                command,
                what: format!("`{set}` is not a UID set"),
            })
        }
    }

    fn require(&self, cap: &str, what: &str) -> Result<(), ImapError> {
        if self.caps.has(cap) {
            Ok(())
        } else {
            Err(ImapError::Unsupported {
                host: self.ep.host.clone(),
                what: what.to_string(),
            })
        }
    }

    /// All folders (`LIST "" "*"`, with `RETURN (SPECIAL-USE)` when offered).
    pub async fn list(&mut self) -> Result<Vec<Folder>, ImapError> {
        let cmd = if self.caps.has("SPECIAL-USE") {
            Cmd::new(r#"LIST "" "*" RETURN (SPECIAL-USE)"#)
        } else {
            Cmd::new(r#"LIST "" "*""#)
        };
        let c = Ctx {
            host: &self.ep.host,
            command: "LIST",
            mailbox: None,
        };
        let mut folders = Vec::new();
        self.wire
            .run(&c, cmd, &mut |r| {
                if let Response::MailboxData(MailboxDatum::List(l)) = r {
                    folders.push(folder_from(l));
                }
                Ok(())
            })
            .await?;
        Ok(folders)
    }

    /// All folders with their state, in one round trip: `LIST "" "*" RETURN
    /// (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))` (RFC 5819, with
    /// HIGHESTMODSEQ when CONDSTORE is offered); `None` when the server does
    /// not offer LIST-STATUS. A folder the server sends no STATUS for (one
    /// that cannot be selected) has none.
    pub async fn list_with_status(
        &mut self,
    ) -> Result<Option<Vec<(Folder, Option<MailboxState>)>>, ImapError> {
        if !self.caps.has("LIST-STATUS") {
            return Ok(None);
        }
        let mut ret = String::from(" RETURN (");
        if self.caps.has("SPECIAL-USE") {
            ret.push_str("SPECIAL-USE ");
        }
        ret.push_str("STATUS (MESSAGES UIDNEXT UIDVALIDITY");
        if self.caps.has("CONDSTORE") {
            ret.push_str(" HIGHESTMODSEQ");
        }
        ret.push_str("))");
        let cmd = Cmd::new(r#"LIST "" "*""#).text(&ret);
        let c = Ctx {
            host: &self.ep.host,
            command: "LIST",
            mailbox: None,
        };
        let mut folders = Vec::new();
        let mut states: std::collections::HashMap<String, MailboxState> =
            std::collections::HashMap::new();
        self.wire
            .run(&c, cmd, &mut |r| {
                match r {
                    Response::MailboxData(MailboxDatum::List(l)) => folders.push(folder_from(l)),
                    Response::MailboxData(MailboxDatum::Status { mailbox, status }) => {
                        let mut st = MailboxState::default();
                        let mut uidvalidity = None;
                        for a in status {
                            match a {
                                StatusAttribute::Messages(n) => st.exists = *n,
                                StatusAttribute::UidNext(n) => st.uidnext = Some(*n),
                                StatusAttribute::UidValidity(v) => uidvalidity = Some(*v),
                                StatusAttribute::HighestModSeq(m) => st.highestmodseq = Some(*m),
                                _ => {}
                            }
                        }
                        if let Some(v) = uidvalidity {
                            st.uidvalidity = v;
                            states.insert(unescape_quoted(mailbox), st);
                        }
                    }
                    _ => {}
                }
                Ok(())
            })
            .await?;
        Ok(Some(
            folders
                .into_iter()
                .map(|f| {
                    let st = states.remove(&f.raw);
                    (f, st)
                })
                .collect(),
        ))
    }

    /// The personal namespace (NAMESPACE, or `LIST "" ""` for the delimiter
    /// when the server has no NAMESPACE).
    pub async fn namespace(&mut self) -> Result<Namespace, ImapError> {
        if self.caps.has("NAMESPACE") {
            let c = Ctx {
                host: &self.ep.host,
                command: "NAMESPACE",
                mailbox: None,
            };
            let (tagged, lines) = self.wire.run_raw(&c, Cmd::new("NAMESPACE")).await?;
            let (status, sr) = tagged_text(&tagged);
            if status != Status::Ok {
                return Err(c.command_error(sr));
            }
            for line in &lines {
                if let Some(ns) = parse_namespace_line(line).map_err(|e| c.parse_error(e))? {
                    return Ok(ns);
                }
            }
        }
        let c = Ctx {
            host: &self.ep.host,
            command: "LIST",
            mailbox: None,
        };
        let mut delimiter = None;
        self.wire
            .run(&c, Cmd::new(r#"LIST "" """#), &mut |r| {
                if let Response::MailboxData(MailboxDatum::List(l)) = r {
                    delimiter = l
                        .delimiter
                        .as_deref()
                        .and_then(|d| unescape_quoted(d).chars().next());
                }
                Ok(())
            })
            .await?;
        Ok(Namespace {
            prefix: String::new(),
            delimiter,
        })
    }

    async fn open(&mut self, command: &'static str, raw: &str) -> Result<MailboxState, ImapError> {
        let mut cmd = Cmd::new(command).arg(raw);
        if self.caps.has("CONDSTORE") {
            cmd = cmd.text(" (CONDSTORE)");
        }
        // A failed SELECT/EXAMINE leaves no mailbox selected.
        self.selected = None;
        let c = Ctx {
            host: &self.ep.host,
            command,
            mailbox: Some(decode_mailbox_name(raw)),
        };
        let mut state = MailboxState::default();
        let mut uidvalidity = None;
        self.wire
            .run(&c, cmd, &mut |r| {
                match r {
                    Response::MailboxData(MailboxDatum::Exists(n)) => state.exists = *n,
                    Response::Data {
                        status: Status::Ok,
                        outcome,
                    } => match outcome.code {
                        Some(ResponseCode::UidValidity(v)) => uidvalidity = Some(v),
                        Some(ResponseCode::UidNext(n)) => state.uidnext = Some(n),
                        Some(ResponseCode::HighestModSeq(m)) => state.highestmodseq = Some(m),
                        _ => {}
                    },
                    _ => {}
                }
                Ok(())
            })
            .await?;
        state.uidvalidity =
            uidvalidity.ok_or_else(|| c.missing("no UIDVALIDITY in the response"))?;
        self.selected = Some(raw.to_string());
        self.writable = command == "SELECT";
        Ok(state)
    }

    /// EXAMINE (read-only), with `(CONDSTORE)` when offered.
    pub async fn examine(&mut self, raw: &str) -> Result<MailboxState, ImapError> {
        self.open("EXAMINE", raw).await
    }

    /// SELECT (read-write), with `(CONDSTORE)` when offered.
    pub async fn select(&mut self, raw: &str) -> Result<MailboxState, ImapError> {
        self.open("SELECT", raw).await
    }

    /// `UID SEARCH ALL`, sorted.
    pub async fn uid_search_all(&mut self) -> Result<Vec<Uid>, ImapError> {
        let c = ctx(&self.ep.host, "UID SEARCH", self.selected.as_deref());
        let mut uids = Vec::new();
        self.wire
            .run(&c, Cmd::new("UID SEARCH ALL"), &mut |r| {
                if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                    uids.extend_from_slice(found);
                }
                Ok(())
            })
            .await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    fn fetch_cmd(
        &self,
        set: &str,
        items: &str,
        changed_since: Option<u64>,
    ) -> Result<Cmd<'static>, ImapError> {
        Self::check_set("UID FETCH", set)?;
        let condstore = self.caps.has("CONDSTORE");
        let mut text = format!(
            "UID FETCH {set} ({items}{})",
            if condstore { " MODSEQ" } else { "" }
        );
        if let Some(n) = changed_since {
            self.require("CONDSTORE", "CONDSTORE (FETCH CHANGEDSINCE)")?;
            text.push_str(&format!(" (CHANGEDSINCE {n})"));
        }
        Ok(Cmd::new(text))
    }

    /// `UID FETCH <set> (UID FLAGS INTERNALDATE RFC822.SIZE [MODSEQ]) [(CHANGEDSINCE n)]`,
    /// sorted by UID. Unsolicited FETCH responses (flag changes of other
    /// messages) lack some items and are ignored.
    pub async fn fetch_meta(
        &mut self,
        uid_set: &str,
        changed_since: Option<u64>,
    ) -> Result<Vec<MessageMeta>, ImapError> {
        let cmd = self.fetch_cmd(uid_set, "UID FLAGS INTERNALDATE RFC822.SIZE", changed_since)?;
        let c = ctx(&self.ep.host, "UID FETCH", self.selected.as_deref());
        let mut found = BTreeMap::new();
        self.wire
            .run(&c, cmd, &mut |r| {
                let Response::Fetch(_, attrs) = r else {
                    return Ok(());
                };
                let f = FetchItems::of(attrs);
                if let (Some(uid), Some(flags), Some(date), Some(size)) =
                    (f.uid, f.flags, f.internaldate, f.size)
                {
                    let internaldate = parse_date(&c, date, uid)?;
                    found.insert(
                        uid,
                        MessageMeta {
                            uid,
                            flags,
                            internaldate,
                            size,
                            modseq: f.modseq,
                        },
                    );
                }
                Ok(())
            })
            .await?;
        Ok(found.into_values().collect())
    }

    /// `UID FETCH <set> (UID FLAGS [MODSEQ]) [(CHANGEDSINCE n)]`, sorted by UID.
    pub async fn fetch_flags(
        &mut self,
        uid_set: &str,
        changed_since: Option<u64>,
    ) -> Result<Vec<(Uid, Flags, Option<u64>)>, ImapError> {
        let cmd = self.fetch_cmd(uid_set, "UID FLAGS", changed_since)?;
        let c = ctx(&self.ep.host, "UID FETCH", self.selected.as_deref());
        let mut found = BTreeMap::new();
        self.wire
            .run(&c, cmd, &mut |r| {
                let Response::Fetch(_, attrs) = r else {
                    return Ok(());
                };
                let f = FetchItems::of(attrs);
                if let (Some(uid), Some(flags)) = (f.uid, f.flags) {
                    found.insert(uid, (flags, f.modseq));
                }
                Ok(())
            })
            .await?;
        Ok(found.into_iter().map(|(u, (f, m))| (u, f, m)).collect())
    }

    /// One `UID FETCH <uids> (UID BODY.PEEK[])`; `on_message` gets each
    /// message as soon as its response is parsed. A UID the server does not
    /// return is not reported here: the caller compares. If `on_message`
    /// fails, the rest of the response is read and dropped (the session stays
    /// usable) and its error is returned as [`ImapError::Callback`].
    pub async fn fetch_bodies(
        &mut self,
        uids: &[Uid],
        on_message: &mut (dyn FnMut(Uid, Vec<u8>) -> Result<(), BoxError> + Send),
    ) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let wanted: HashSet<Uid> = uids.iter().copied().collect();
        let mut delivered: HashSet<Uid> = HashSet::new();
        let cmd = Cmd::new(format!(
            "UID FETCH {} (UID BODY.PEEK[])",
            compress_uid_set(uids)
        ));
        let c = ctx(&self.ep.host, "UID FETCH", self.selected.as_deref());
        self.wire
            .run(&c, cmd, &mut |r| {
                let Response::Fetch(_, attrs) = r else {
                    return Ok(());
                };
                let uid = attrs.iter().find_map(|a| match a {
                    AttributeValue::Uid(u) => Some(*u),
                    _ => None,
                });
                let body = attrs.iter().find_map(|a| match a {
                    AttributeValue::BodySection {
                        section: None,
                        index: None,
                        data: Some(d),
                    } => Some(d),
                    _ => None,
                });
                if let (Some(uid), Some(body)) = (uid, body) {
                    if wanted.contains(&uid) && delivered.insert(uid) {
                        on_message(uid, body.to_vec()).map_err(|e| c.callback_error(e))?;
                    }
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Fetches one message in `BODY.PEEK[]<offset.chunk>` pieces until a short
    /// piece, handing each to `on_chunk`: memory stays at one chunk whatever
    /// the message size. `size` (RFC822.SIZE) is only a hint for messages; the
    /// end is where the server's data ends. A message the server does not
    /// return at all is an error.
    pub async fn fetch_body_chunked(
        &mut self,
        uid: Uid,
        size: u64,
        chunk: u32,
        on_chunk: &mut (dyn FnMut(&[u8]) -> Result<(), BoxError> + Send),
    ) -> Result<(), ImapError> {
        if chunk == 0 {
            return Err(ImapError::InvalidArgument {
                command: "UID FETCH",
                what: "chunk size 0".into(),
            });
        }
        let mut offset: u64 = 0;
        loop {
            let cmd = Cmd::new(format!(
                "UID FETCH {uid} (UID BODY.PEEK[]<{offset}.{chunk}>)"
            ));
            let c = ctx(&self.ep.host, "UID FETCH", self.selected.as_deref());
            let mut got: Option<usize> = None;
            self.wire
                .run(&c, cmd, &mut |r| {
                    let Response::Fetch(_, attrs) = r else {
                        return Ok(());
                    };
                    if !attrs
                        .iter()
                        .any(|a| matches!(a, AttributeValue::Uid(u) if *u == uid))
                    {
                        return Ok(());
                    }
                    for a in attrs {
                        if let AttributeValue::BodySection {
                            section: None,
                            data,
                            ..
                        } = a
                        {
                            if got.is_none() {
                                let data: &[u8] = data.as_deref().unwrap_or(&[]);
                                got = Some(data.len());
                                on_chunk(data).map_err(|e| c.callback_error(e))?;
                            }
                        }
                    }
                    Ok(())
                })
                .await?;
            let Some(n) = got else {
                return Err(c.missing(format!(
                    "message UID {uid} was not returned at offset {offset} (expected {size} bytes)"
                )));
            };
            offset += n as u64;
            if n < chunk as usize {
                return Ok(());
            }
        }
    }

    /// `UID FETCH <set> (UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS
    /// (MESSAGE-ID)])`, sorted by UID: what it takes to recognise a message
    /// that is already in a mailbox without downloading it. The header field
    /// comes back raw, as the server sent it (`Message-ID: <…>` CRLF CRLF, or
    /// just CRLF when there is none).
    pub async fn fetch_identity(
        &mut self,
        uid_set: &str,
    ) -> Result<Vec<MessageIdentity>, ImapError> {
        Self::check_set("UID FETCH", uid_set)?;
        let cmd = Cmd::new(format!(
            "UID FETCH {uid_set} (UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        ));
        let c = ctx(&self.ep.host, "UID FETCH", self.selected.as_deref());
        let mut found = BTreeMap::new();
        self.wire
            .run(&c, cmd, &mut |r| {
                let Response::Fetch(_, attrs) = r else {
                    return Ok(());
                };
                let f = FetchItems::of(attrs);
                if let (Some(uid), Some(date), Some(size)) = (f.uid, f.internaldate, f.size) {
                    let internaldate = parse_date(&c, date, uid)?;
                    found.insert(
                        uid,
                        MessageIdentity {
                            uid,
                            size,
                            internaldate,
                            message_id_header: f.section.unwrap_or_default(),
                        },
                    );
                }
                Ok(())
            })
            .await?;
        Ok(found.into_values().collect())
    }

    /// CREATE.
    pub async fn create(&mut self, raw: &str) -> Result<(), ImapError> {
        let c = ctx(&self.ep.host, "CREATE", Some(raw));
        self.wire
            .run(&c, Cmd::new("CREATE").arg(raw), &mut |_| Ok(()))
            .await?;
        Ok(())
    }

    /// APPEND with the given flags and INTERNALDATE; returns the new UID when
    /// the server says it (APPENDUID, RFC 4315). Bytes with a NUL go as
    /// literal8 when the server has BINARY. A refusal (e.g. bare LF, NUL) is
    /// an [`ImapError::Command`] with the server's text; the caller decides
    /// whether to retry with CRLF line endings.
    pub async fn append(
        &mut self,
        raw_mailbox: &str,
        flags: &Flags,
        date: Option<&InternalDate>,
        bytes: &[u8],
    ) -> Result<Option<Uid>, ImapError> {
        self.leave_if_selected(raw_mailbox).await?;
        let binary = bytes.contains(&0) && self.caps.has("BINARY");
        let cmd = Self::append_args(Cmd::new("APPEND").arg(raw_mailbox), flags, date)
            .literal(Cow::Borrowed(bytes), binary);
        let c = ctx(&self.ep.host, "APPEND", Some(raw_mailbox));
        let done = self.wire.run(&c, cmd, &mut |_| Ok(())).await?;
        Ok(done.append_uid())
    }

    /// Leaves the selected mailbox without expunging anything: UNSELECT
    /// (RFC 3691) when offered; else CLOSE, which expunges only a mailbox
    /// opened read-write, so one opened with SELECT is first opened again
    /// with EXAMINE. Nothing to do when no mailbox is selected.
    pub async fn unselect(&mut self) -> Result<(), ImapError> {
        let Some(raw) = self.selected.clone() else {
            return Ok(());
        };
        if self.caps.has("UNSELECT") {
            let c = ctx(&self.ep.host, "UNSELECT", Some(&raw));
            self.wire
                .run(&c, Cmd::new("UNSELECT"), &mut |_| Ok(()))
                .await?;
        } else {
            if self.writable {
                self.examine(&raw).await?;
            }
            let c = ctx(&self.ep.host, "CLOSE", Some(&raw));
            self.wire
                .run(&c, Cmd::new("CLOSE"), &mut |_| Ok(()))
                .await?;
        }
        self.selected = None;
        self.writable = false;
        Ok(())
    }

    /// Some servers (Courier) refuse an APPEND into the mailbox the session
    /// has open, and RFC 3501 leaves it to them: an APPEND never goes to the
    /// selected mailbox.
    async fn leave_if_selected(&mut self, raw_mailbox: &str) -> Result<(), ImapError> {
        if self.selected.as_deref() == Some(raw_mailbox) {
            self.unselect().await?;
        }
        Ok(())
    }

    fn append_args<'a>(cmd: Cmd<'a>, flags: &Flags, date: Option<&InternalDate>) -> Cmd<'a> {
        let mut cmd = cmd.text(&format!(
            " ({})",
            flags.iter().collect::<Vec<_>>().join(" ")
        ));
        if let Some(d) = date {
            cmd = cmd.text(&format!(" \"{}\"", d.to_imap()));
        }
        cmd.text(" ")
    }

    /// MULTIAPPEND (RFC 3502): every message of `batch` in one APPEND
    /// command, which the server takes whole or not at all. The UIDs it gave
    /// them, in order, when it says (APPENDUID); else an empty list. A
    /// refusal is an [`ImapError::Command`] for the whole batch.
    pub async fn multiappend(
        &mut self,
        raw_mailbox: &str,
        batch: &[AppendMessage<'_>],
    ) -> Result<Vec<Uid>, ImapError> {
        self.require("MULTIAPPEND", "MULTIAPPEND (RFC 3502)")?;
        self.leave_if_selected(raw_mailbox).await?;
        let binary_ok = self.caps.has("BINARY");
        let mut cmd = Cmd::new("APPEND").arg(raw_mailbox);
        for m in batch {
            cmd = Self::append_args(cmd, m.flags, m.date)
                .literal(Cow::Borrowed(m.bytes), binary_ok && m.bytes.contains(&0));
        }
        let c = ctx(&self.ep.host, "APPEND", Some(raw_mailbox));
        let tag = self.wire.send(&c, &mut cmd).await?;
        drop(cmd);
        let (_, done) = self
            .wire
            .finish_one_of(&c, &[tag], batch.len(), &mut |_| Ok(()))
            .await?;
        let done = done.map_err(|sr| c.command_error(sr))?;
        Ok(if done.append_uids.len() == batch.len() {
            done.append_uids
        } else {
            Vec::new()
        })
    }

    /// One APPEND per message, sent one after another without waiting for
    /// each answer (all literals LITERAL+), with at most `window` bytes of
    /// messages whose answer has not come yet. Each message's own answer:
    /// its UID (APPENDUID) or the server's refusal. `Err` only for the
    /// session (network, timeout): what was in flight is then unknown, and
    /// the caller checks the target before sending it again.
    pub async fn append_pipelined(
        &mut self,
        raw_mailbox: &str,
        batch: &[AppendMessage<'_>],
        window: u64,
    ) -> Result<Vec<Result<Option<Uid>, ImapError>>, ImapError> {
        self.leave_if_selected(raw_mailbox).await?;
        let binary_ok = self.caps.has("BINARY");
        let c = ctx(&self.ep.host, "APPEND", Some(raw_mailbox));
        let mut results: Vec<Option<Result<Option<Uid>, ImapError>>> =
            (0..batch.len()).map(|_| None).collect();
        // (tag, index in batch, bytes)
        let mut in_flight: Vec<(String, usize, u64)> = Vec::new();
        let mut bytes_in_flight = 0u64;
        let mut next = 0;
        while next < batch.len() || !in_flight.is_empty() {
            let can_send = next < batch.len()
                && (in_flight.is_empty()
                    || bytes_in_flight + batch[next].bytes.len() as u64 <= window);
            if can_send {
                let m = &batch[next];
                let mut cmd =
                    Self::append_args(Cmd::new("APPEND").arg(raw_mailbox), m.flags, m.date)
                        .literal(Cow::Borrowed(m.bytes), binary_ok && m.bytes.contains(&0));
                if !in_flight.is_empty() && !self.wire.sends_without_waiting(&cmd) {
                    // A synchronising literal waits for `+`: only alone.
                } else {
                    let tag = self.wire.send(&c, &mut cmd).await?;
                    in_flight.push((tag, next, m.bytes.len() as u64));
                    bytes_in_flight += m.bytes.len() as u64;
                    next += 1;
                    continue;
                }
            }
            let tags: Vec<String> = in_flight.iter().map(|t| t.0.clone()).collect();
            let (i, done) = self
                .wire
                .finish_one_of(&c, &tags, 1, &mut |_| Ok(()))
                .await?;
            let (_, at, len) = in_flight.remove(i);
            bytes_in_flight -= len;
            results[at] = Some(match done {
                Ok(ok) => Ok(ok.append_uid()),
                Err(sr) => Err(c.command_error(sr)),
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every APPEND was answered"))
            .collect())
    }

    /// [`append`](Self::append) for a message too big to hold in memory:
    /// the literal's `len` bytes are read from `source` while they are sent
    /// (LITERAL+, LITERAL- and literal8 as `append` does; `contains_nul`
    /// asks for literal8 when the server has BINARY). APPENDUID and a
    /// tagged NO/BAD come back as from `append`, and the session stays
    /// usable after them. If `source` fails or does not give exactly `len`
    /// bytes and then its end, the APPEND is left unfinished (the server
    /// stores nothing), the error is [`ImapError::Source`] and the session
    /// is given up ([`usable`](Self::usable) turns false).
    pub async fn append_from(
        &mut self,
        raw_mailbox: &str,
        flags: &Flags,
        date: Option<&InternalDate>,
        len: u64,
        contains_nul: bool,
        source: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<Option<Uid>, ImapError> {
        self.leave_if_selected(raw_mailbox).await?;
        let binary = contains_nul && self.caps.has("BINARY");
        let cmd = Self::append_args(Cmd::new("APPEND").arg(raw_mailbox), flags, date)
            .literal_from(len, source, binary);
        let c = ctx(&self.ep.host, "APPEND", Some(raw_mailbox));
        let done = self.wire.run(&c, cmd, &mut |_| Ok(())).await?;
        Ok(done.append_uid())
    }

    /// Whether the session can still be used: false after a timeout, a
    /// lost connection or a failed [`append_from`](Self::append_from).
    pub fn usable(&self) -> bool {
        self.wire.usable()
    }

    /// `UID STORE <set> +FLAGS.SILENT (…)` when `add`, else `-FLAGS.SILENT`:
    /// adds or removes just these flags, leaving the others as they are.
    pub async fn uid_store_flags(
        &mut self,
        uid_set: &str,
        add: bool,
        flags: &[&str],
    ) -> Result<(), ImapError> {
        Self::check_set("UID STORE", uid_set)?;
        if !flags.iter().all(|f| is_flag(f)) {
            return Err(ImapError::InvalidArgument {
                command: "UID STORE",
                what: format!("`{}` is not a flag list", flags.join(" ")),
            });
        }
        let c = ctx(&self.ep.host, "UID STORE", self.selected.as_deref());
        let cmd = Cmd::new(format!(
            "UID STORE {uid_set} {}FLAGS.SILENT ({})",
            if add { "+" } else { "-" },
            flags.join(" ")
        ));
        self.wire.run(&c, cmd, &mut |_| Ok(())).await?;
        Ok(())
    }

    /// `UID COPY <set> <mailbox>` from the open mailbox (read-only is
    /// enough): the (UID here, UID of the copy there) pairs when the server
    /// says (COPYUID, RFC 4315), else an empty list. The copies keep the
    /// originals' bytes, flags and INTERNALDATE; on Gmail a copy is the same
    /// message with one more label.
    pub async fn uid_copy(
        &mut self,
        uid_set: &str,
        dest_raw: &str,
    ) -> Result<Vec<(Uid, Uid)>, ImapError> {
        Self::check_set("UID COPY", uid_set)?;
        let c = ctx(&self.ep.host, "UID COPY", Some(dest_raw));
        let cmd = Cmd::new(format!("UID COPY {uid_set}")).arg(dest_raw);
        let done = self.wire.run(&c, cmd, &mut |_| Ok(())).await?;
        Ok(done.copy_uids)
    }

    /// `UID STORE <set> +FLAGS.SILENT (\Deleted)`.
    pub async fn uid_store_add_deleted(&mut self, uid_set: &str) -> Result<(), ImapError> {
        Self::check_set("UID STORE", uid_set)?;
        let c = ctx(&self.ep.host, "UID STORE", self.selected.as_deref());
        let cmd = Cmd::new(format!("UID STORE {uid_set} +FLAGS.SILENT (\\Deleted)"));
        self.wire.run(&c, cmd, &mut |_| Ok(())).await?;
        Ok(())
    }

    /// `UID EXPUNGE <set>` (UIDPLUS): removes exactly those UIDs, never other
    /// messages marked `\Deleted`. Without UIDPLUS this refuses.
    pub async fn uid_expunge(&mut self, uid_set: &str) -> Result<(), ImapError> {
        Self::check_set("UID EXPUNGE", uid_set)?;
        self.require(
            "UIDPLUS",
            "UIDPLUS (UID EXPUNGE), needed to expunge only chosen messages",
        )?;
        let c = ctx(&self.ep.host, "UID EXPUNGE", self.selected.as_deref());
        self.wire
            .run(&c, Cmd::new(format!("UID EXPUNGE {uid_set}")), &mut |_| {
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// GETQUOTAROOT (RFC 2087): the quota roots of a mailbox and their
    /// resources.
    pub async fn quota_root(&mut self, raw: &str) -> Result<Vec<QuotaRoot>, ImapError> {
        self.require("QUOTA", "QUOTA (GETQUOTAROOT)")?;
        let c = ctx(&self.ep.host, "GETQUOTAROOT", Some(raw));
        let mut names: Vec<String> = Vec::new();
        let mut quotas: Vec<QuotaRoot> = Vec::new();
        self.wire
            .run(&c, Cmd::new("GETQUOTAROOT").arg(raw), &mut |r| {
                match r {
                    Response::QuotaRoot(qr) => {
                        names.extend(qr.quota_root_names.iter().map(|n| unescape_quoted(n)));
                    }
                    Response::Quota(q) => quotas.push(QuotaRoot {
                        name: unescape_quoted(&q.root_name),
                        resources: q
                            .resources
                            .iter()
                            .map(|r| QuotaResource {
                                name: match &r.name {
                                    QuotaResourceName::Storage => "STORAGE".to_string(),
                                    QuotaResourceName::Message => "MESSAGE".to_string(),
                                    QuotaResourceName::Atom(a) => a.to_ascii_uppercase(),
                                },
                                usage: r.usage,
                                limit: r.limit,
                            })
                            .collect(),
                    }),
                    _ => {}
                }
                Ok(())
            })
            .await?;
        // In QUOTAROOT order; a root without a QUOTA response has no limits.
        let mut out: Vec<QuotaRoot> = names
            .iter()
            .map(|n| {
                quotas
                    .iter()
                    .find(|q| &q.name == n)
                    .cloned()
                    .unwrap_or(QuotaRoot {
                        name: n.clone(),
                        resources: Vec::new(),
                    })
            })
            .collect();
        out.extend(quotas.into_iter().filter(|q| !names.contains(&q.name)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_entries_become_folders() {
        let l = MailboxListData {
            name_attributes: vec![
                NameAttribute::Extension(Cow::Borrowed("\\HasNoChildren")),
                NameAttribute::Sent,
            ],
            delimiter: Some(Cow::Borrowed("/")),
            name: Cow::Borrowed("&kAFP4W4IMH8-"),
        };
        let f = folder_from(&l);
        assert_eq!(f.raw, "&kAFP4W4IMH8-");
        assert_eq!(f.display, "送信済み");
        assert_eq!(f.delimiter, Some('/'));
        assert_eq!(f.special_use.as_deref(), Some("\\Sent"));
        assert!(f.selectable);

        let node = MailboxListData {
            name_attributes: vec![NameAttribute::NoSelect],
            delimiter: None,
            name: Cow::Borrowed(r#"a\"b"#),
        };
        let f = folder_from(&node);
        assert!(!f.selectable);
        assert_eq!(f.raw, r#"a"b"#);
        assert_eq!(f.delimiter, None);
        assert_eq!(f.special_use, None);
    }

    #[test]
    fn raw_tagged_lines() {
        let (s, sr) = tagged_text("NO [UNAVAILABLE] try later");
        assert_eq!(s, Status::No);
        assert_eq!(sr.code.as_deref(), Some("UNAVAILABLE"));
        assert_eq!(sr.text, "[UNAVAILABLE] try later");
        assert_eq!(tagged_text("OK Namespace completed").0, Status::Ok);
        assert_eq!(tagged_text("BAD").0, Status::Bad);
    }
}

/// The items of one FETCH response that the metadata commands read.
#[derive(Default)]
struct FetchItems<'a> {
    uid: Option<Uid>,
    flags: Option<Flags>,
    internaldate: Option<&'a str>,
    size: Option<u64>,
    modseq: Option<u64>,
    /// The data of a `BODY[section]` item (e.g. HEADER.FIELDS).
    section: Option<Vec<u8>>,
}

impl<'a> FetchItems<'a> {
    fn of(attrs: &'a [AttributeValue<'a>]) -> FetchItems<'a> {
        let mut f = FetchItems::default();
        for a in attrs {
            match a {
                AttributeValue::Uid(u) => f.uid = Some(*u),
                AttributeValue::Flags(fl) => {
                    f.flags = Some(Flags::new(fl.iter().map(|s| s.to_string())))
                }
                AttributeValue::InternalDate(d) => f.internaldate = Some(d),
                AttributeValue::Rfc822Size(s) => f.size = Some(u64::from(*s)),
                AttributeValue::ModSeq(m) => f.modseq = Some(*m),
                AttributeValue::BodySection {
                    section: Some(_),
                    data,
                    ..
                } => f.section = Some(data.as_deref().unwrap_or(&[]).to_vec()),
                _ => {}
            }
        }
        f
    }
}

/// An INTERNALDATE item, or a parse error naming the UID.
fn parse_date(c: &Ctx<'_>, date: &str, uid: Uid) -> Result<InternalDate, ImapError> {
    InternalDate::parse_imap(date)
        .ok_or_else(|| c.parse_error(format!("bad INTERNALDATE `{date}` for UID {uid}")))
}
