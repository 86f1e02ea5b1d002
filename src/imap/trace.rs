//! The IMAP conversation as `tracing` events (target [`TARGET`], level
//! TRACE), for bug reports: `mailkeep --trace-imap` turns them on.
//!
//! What is never in them: passwords and tokens (a `LOGIN` or
//! `AUTHENTICATE` command shows only its name and mechanism, and every line
//! sent after a continuation request is `[redacted]`), message bodies and
//! headers (every literal, either way, is shown as its size), envelopes and
//! body structures (shown as their name). What is: commands and their
//! arguments otherwise, tags, statuses and response codes, mailbox names,
//! UIDs, flags, sizes and dates.

use std::sync::atomic::{AtomicU32, Ordering};

use async_imap::imap_proto::{AttributeValue, Response, Status};

/// The target of every event: filter on it to see (or hide) the trace.
pub const TARGET: &str = "mailkeep::imap::trace";

/// Numbers connections, so that parallel ones can be told apart.
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// The next connection's number.
pub fn next_id() -> u32 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Whether the trace is on (so that nothing is formatted when it is off).
pub fn on() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::TRACE)
}

/// One line of the trace: `host#id C: …` or `host#id S: …`.
pub fn line(host: &str, id: u32, dir: &str, text: &str) {
    tracing::trace!(target: TARGET, "{host}#{id} {dir}: {text}");
}

/// The text of a command as it may be shown: `LOGIN` and `AUTHENTICATE`
/// keep only their name (and mechanism).
pub fn command_text(tag: &str, text: &str) -> String {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    if first.eq_ignore_ascii_case("LOGIN") {
        return format!("{tag} LOGIN [redacted]");
    }
    if first.eq_ignore_ascii_case("AUTHENTICATE") {
        let mech = words.next().unwrap_or("");
        return format!("{tag} AUTHENTICATE {mech} [redacted]");
    }
    format!("{tag} {text}")
}

/// Whether a command's text is a login, whose every piece is redacted.
pub fn is_login(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("");
    first.eq_ignore_ascii_case("LOGIN") || first.eq_ignore_ascii_case("AUTHENTICATE")
}

fn status(s: &Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::PreAuth => "PREAUTH",
        Status::Bye => "BYE",
    }
}

fn bytes(data: &Option<std::borrow::Cow<'_, [u8]>>) -> String {
    match data {
        Some(d) => format!("[{} bytes]", d.len()),
        None => "NIL".into(),
    }
}

/// `[CODE] text` of a status response.
fn outcome_text(outcome: &async_imap::imap_proto::Outcome<'_>) -> String {
    format!(
        "{}{}",
        outcome
            .code
            .as_ref()
            .map(|c| format!("[{c:?}] "))
            .unwrap_or_default(),
        outcome.information.as_deref().unwrap_or("")
    )
}

/// A response as it may be shown.
pub fn response_text(r: &Response<'_>) -> String {
    match r {
        Response::Done {
            tag,
            status: st,
            outcome,
        } => format!("{} {} {}", tag.0, status(st), outcome_text(outcome)),
        Response::Data {
            status: st,
            outcome,
        } => format!("* {} {}", status(st), outcome_text(outcome)),
        // A server's challenge may carry a token's error: its size only.
        Response::Continue(o) => {
            format!("+ [{} bytes]", o.information.as_deref().map_or(0, str::len))
        }
        Response::Fetch(seq, attrs) => {
            let parts: Vec<String> = attrs
                .iter()
                .map(|a| match a {
                    AttributeValue::Uid(u) => format!("UID {u}"),
                    AttributeValue::Flags(f) => format!("FLAGS ({})", f.join(" ")),
                    AttributeValue::Rfc822Size(n) => format!("RFC822.SIZE {n}"),
                    AttributeValue::InternalDate(d) => format!("INTERNALDATE \"{d}\""),
                    AttributeValue::ModSeq(m) => format!("MODSEQ ({m})"),
                    AttributeValue::BodySection { data, index, .. } => format!(
                        "BODY[…]{} {}",
                        index.map(|i| format!("<{i}>")).unwrap_or_default(),
                        bytes(data)
                    ),
                    AttributeValue::Rfc822(d) => format!("RFC822 {}", bytes(d)),
                    AttributeValue::Rfc822Header(d) => format!("RFC822.HEADER {}", bytes(d)),
                    AttributeValue::Rfc822Text(d) => format!("RFC822.TEXT {}", bytes(d)),
                    AttributeValue::Envelope(_) => "ENVELOPE [redacted]".into(),
                    AttributeValue::BodyStructure(_) => "BODYSTRUCTURE [redacted]".into(),
                    AttributeValue::GmailMsgId(id) => format!("X-GM-MSGID {id}"),
                    AttributeValue::GmailThrId(id) => format!("X-GM-THRID {id}"),
                    AttributeValue::GmailLabels(l) => format!("X-GM-LABELS ({})", l.join(" ")),
                    _ => "[another attribute]".into(),
                })
                .collect();
            format!("* {seq} FETCH ({})", parts.join(" "))
        }
        Response::Expunge(n) => format!("* {n} EXPUNGE"),
        Response::Capabilities(c) => format!("* CAPABILITY {c:?}"),
        Response::MailboxData(d) => format!("* {d:?}"),
        Response::Quota(q) => format!("* QUOTA {q:?}"),
        Response::QuotaRoot(q) => format!("* QUOTAROOT {q:?}"),
        Response::Vanished { earlier, uids } => format!("* VANISHED earlier={earlier} {uids:?}"),
        other => {
            // Id, ACL responses: their kind only.
            let dbg = format!("{other:?}");
            let kind: String = dbg.chars().take_while(|c| c.is_alphanumeric()).collect();
            format!("* {kind} […]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_keep_only_their_name() {
        assert_eq!(
            command_text("M2", "LOGIN alice \"hunter2\""),
            "M2 LOGIN [redacted]"
        );
        assert_eq!(
            command_text("M2", "AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI="),
            "M2 AUTHENTICATE PLAIN [redacted]"
        );
        assert_eq!(
            command_text("M3", "UID FETCH 1:* (FLAGS)"),
            "M3 UID FETCH 1:* (FLAGS)"
        );
        assert!(is_login("authenticate XOAUTH2 dXNlcj1..."));
        assert!(!is_login("SELECT INBOX"));
    }

    #[test]
    fn bodies_are_their_size() {
        let r = Response::Fetch(
            3,
            vec![
                AttributeValue::Uid(7),
                AttributeValue::Rfc822Size(5),
                AttributeValue::BodySection {
                    section: None,
                    index: None,
                    data: Some(std::borrow::Cow::Borrowed(b"secret")),
                },
            ],
        );
        let t = response_text(&r);
        assert_eq!(t, "* 3 FETCH (UID 7 RFC822.SIZE 5 BODY[…] [6 bytes])");
        assert!(!t.contains("secret"));
    }
}
