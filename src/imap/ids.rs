//! The server's own id of a message, the same in every folder that shows
//! it: Gmail's `X-GM-MSGID` (X-GM-EXT-1), RFC 8474's `EMAILID` (OBJECTID),
//! Dovecot's `X-GUID`. With it a message that several folders show (Gmail's
//! labels and All Mail, a Dovecot virtual folder) is downloaded once.

use std::collections::BTreeMap;

use async_imap::imap_proto::{AttributeValue, Response, Status};

use super::commands::{ctx, tagged_text};
use super::conn::Connection;
use super::error::ImapError;
use super::names::compress_uid_set;
use super::wire::Cmd;
use crate::model::Uid;

/// Which id the server gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageIds {
    /// Gmail: `X-GM-MSGID`, one per message across all its labels.
    Gmail,
    /// RFC 8474 `EMAILID`: the same for the same message in any mailbox.
    EmailId,
    /// Dovecot's `X-GUID` (not announced; known by the greeting): kept by
    /// COPY and shown by virtual folders. Asked only where folders can show
    /// the same message twice (see [`MessageIds::worth_asking`]).
    DovecotGuid,
}

impl MessageIds {
    /// The prefix of the ids of this kind, so that ids of two kinds (a
    /// server that changed software) never meet.
    fn prefix(self) -> &'static str {
        match self {
            MessageIds::Gmail => "gm:",
            MessageIds::EmailId => "oid:",
            MessageIds::DovecotGuid => "dg:",
        }
    }

    /// Whether asking is worth a command per folder: always for Gmail and
    /// OBJECTID servers; on Dovecot only when a folder is a view over others
    /// (special use `\All` or `\Flagged`, which is how virtual folders are
    /// announced), the one case where its folders share messages.
    pub fn worth_asking(self, special_uses: &[&str]) -> bool {
        match self {
            MessageIds::Gmail | MessageIds::EmailId => true,
            MessageIds::DovecotGuid => special_uses
                .iter()
                .any(|s| s.eq_ignore_ascii_case("\\All") || s.eq_ignore_ascii_case("\\Flagged")),
        }
    }
}

impl Connection {
    /// The kind of message id this server gives, if any.
    pub fn message_ids(&self) -> Option<MessageIds> {
        if self.caps.has("X-GM-EXT-1") {
            Some(MessageIds::Gmail)
        } else if self.caps.has("OBJECTID") {
            Some(MessageIds::EmailId)
        } else if self.greeting.contains("Dovecot") {
            Some(MessageIds::DovecotGuid)
        } else {
            None
        }
    }

    /// The ids of `uids` in the selected mailbox (those the server answers
    /// for; a message without one is left out).
    pub async fn fetch_message_ids(
        &mut self,
        kind: MessageIds,
        uids: &[Uid],
    ) -> Result<BTreeMap<Uid, String>, ImapError> {
        let mut found = BTreeMap::new();
        if uids.is_empty() {
            return Ok(found);
        }
        let set = compress_uid_set(uids);
        Self::check_set("UID FETCH", &set)?;
        let c = ctx(&self.ep.host, "UID FETCH", self.selected.as_deref());
        let prefix = kind.prefix();
        match kind {
            MessageIds::Gmail | MessageIds::EmailId => {
                let item = if kind == MessageIds::Gmail {
                    "X-GM-MSGID"
                } else {
                    "EMAILID"
                };
                let cmd = Cmd::new(format!("UID FETCH {set} (UID {item})"));
                self.wire
                    .run(&c, cmd, &mut |r| {
                        if let Response::Fetch(_, attrs) = r {
                            if let Some((uid, id)) = id_of(attrs) {
                                found.insert(uid, format!("{prefix}{id}"));
                            }
                        }
                        Ok(())
                    })
                    .await?;
            }
            MessageIds::DovecotGuid => {
                // imap-proto does not keep X-GUID: read the lines raw.
                let cmd = Cmd::new(format!("UID FETCH {set} (UID X-GUID)"));
                let (done, lines) = self.wire.run_raw(&c, cmd).await?;
                let (status, sr) = tagged_text(&done);
                if status != Status::Ok {
                    return Err(c.command_error(sr));
                }
                for line in lines {
                    if let Some((uid, id)) = parse_x_guid_line(&line) {
                        found.insert(uid, format!("{prefix}{id}"));
                    }
                }
            }
        }
        Ok(found)
    }
}

fn id_of(attrs: &[AttributeValue<'_>]) -> Option<(Uid, String)> {
    let mut uid = None;
    let mut id = None;
    for a in attrs {
        match a {
            AttributeValue::Uid(u) => uid = Some(*u),
            AttributeValue::GmailMsgId(m) => id = Some(m.to_string()),
            AttributeValue::EmailId(e) => id = Some(e.to_string()),
            _ => {}
        }
    }
    Some((uid?, id?))
}

/// `* 3 FETCH (UID 7 X-GUID 1796144663.M411010P12222.vm,S=1246,W=1269)` →
/// (7, the GUID); the items may come in any order.
fn parse_x_guid_line(line: &[u8]) -> Option<(Uid, String)> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix("* ")?;
    let (_, rest) = rest.split_once(' ')?;
    let items = rest.strip_prefix("FETCH (")?.strip_suffix(')')?;
    let mut words = items.split(' ');
    let (mut uid, mut guid) = (None, None);
    while let Some(w) = words.next() {
        if w.eq_ignore_ascii_case("UID") {
            uid = words.next()?.parse::<Uid>().ok();
        } else if w.eq_ignore_ascii_case("X-GUID") {
            let g = words.next()?.trim_matches('"');
            if !g.is_empty() && !g.eq_ignore_ascii_case("NIL") {
                guid = Some(g.to_string());
            }
        }
    }
    Some((uid?, guid?))
}

#[cfg(test)]
mod tests {
    use async_imap::imap_proto::Response;

    use super::*;

    #[test]
    fn x_guid_lines_in_any_order() {
        assert_eq!(
            parse_x_guid_line(b"* 3 FETCH (UID 7 X-GUID 1796.M41P1.vm,S=1246,W=1269)"),
            Some((7, "1796.M41P1.vm,S=1246,W=1269".into()))
        );
        assert_eq!(
            parse_x_guid_line(b"* 3 FETCH (X-GUID \"0c6f2d\" UID 9)"),
            Some((9, "0c6f2d".into()))
        );
        assert_eq!(parse_x_guid_line(b"* 3 FETCH (UID 9 X-GUID NIL)"), None);
        assert_eq!(parse_x_guid_line(b"* 3 FETCH (FLAGS (\\Seen) UID 9)"), None);
        assert_eq!(parse_x_guid_line(b"* 3 EXPUNGE"), None);
    }

    #[test]
    fn dovecot_asks_only_where_folders_share_messages() {
        assert!(MessageIds::Gmail.worth_asking(&[]));
        assert!(MessageIds::EmailId.worth_asking(&["\\Sent"]));
        assert!(!MessageIds::DovecotGuid.worth_asking(&["\\Sent", "\\Trash"]));
        assert!(MessageIds::DovecotGuid.worth_asking(&["\\Sent", "\\all"]));
    }

    fn fetch(line: &[u8]) -> Option<(u32, String)> {
        let (_, r) = Response::parse(line).expect("parses");
        match r {
            Response::Fetch(_, attrs) => id_of(&attrs),
            _ => None,
        }
    }

    #[test]
    fn gmail_and_objectid_ids_are_read_from_fetch_responses() {
        assert_eq!(
            fetch(b"* 1 FETCH (X-GM-MSGID 1278455344230334865 UID 7)\r\n"),
            Some((7, "1278455344230334865".into()))
        );
        assert_eq!(
            fetch(b"* 2 FETCH (UID 9 EMAILID (M6d952b5c6f82bfd8))\r\n"),
            Some((9, "M6d952b5c6f82bfd8".into()))
        );
        assert_eq!(fetch(b"* 3 FETCH (UID 9 FLAGS (\\Seen))\r\n"), None);
    }
}
