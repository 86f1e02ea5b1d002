//! Recognising mail that is already on the target, and the one change a
//! restore may make to a message (line endings). Pure functions.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::imap::MessageIdentity;
use crate::model::Uid;

/// The Message-ID of a message or of a header block: the `<…>` part of the
/// first `Message-ID:` field (unfolded), or its trimmed value when it has no
/// angle brackets. `None` when there is none or it is empty. Looks only at
/// the header block (up to the first empty line), whatever its line endings.
pub fn message_id(bytes: &[u8]) -> Option<String> {
    clean_id(&crate::formats::lines::first_value(bytes, "message-id")?)
}

/// The `<…>` part of a Message-ID field's value (or all of it), without
/// white space; `None` when empty.
fn clean_id(v: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(v);
    let text = text.trim();
    let id = match (text.find('<'), text.rfind('>')) {
        (Some(a), Some(b)) if a < b => &text[a..=b],
        _ => text,
    };
    let id: String = id.chars().filter(|c| !c.is_whitespace()).collect();
    (!id.is_empty()).then_some(id)
}

/// The Message-ID of a stored message as an IMAP server sees it: lines end
/// at LF only, a bare CR is part of its line (Dovecot reads a message whose
/// lines end in CR alone as one long header line, and finds no Message-ID in
/// it). The target's answer to `HEADER.FIELDS (MESSAGE-ID)` is computed so,
/// so this is what it is compared with first; [`message_id`], which reads
/// any line ending, is tried besides, for a target that made them CRLF.
pub fn served_message_id(bytes: &[u8]) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for raw_line in bytes.split(|&b| b == b'\n') {
        let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        if line.is_empty() {
            break;
        }
        let folded = line[0] == b' ' || line[0] == b'\t';
        match (&mut value, folded) {
            (Some(v), true) => {
                v.push(b' ');
                v.extend_from_slice(line);
                continue;
            }
            (Some(_), false) => break,
            (None, true) => continue,
            (None, false) => {}
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            if line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"message-id")
            {
                value = Some(line[colon + 1..].to_vec());
            }
        }
    }
    clean_id(&value?)
}

/// The message with every bare LF and bare CR made CRLF and a final CRLF
/// added: the only change a restore makes, and only for a server that refused
/// the exact bytes. Borrowed when nothing changes.
pub fn crlf_form(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut needs = !bytes.is_empty() && !bytes.ends_with(b"\r\n");
    let mut i = 0;
    while !needs && i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => needs = true,
            b'\r' => i += 1,
            b'\n' => needs = true,
            _ => {}
        }
        i += 1;
    }
    if !needs {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32 + 2);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    Cow::Owned(out)
}

/// How far a target's size may be from ours and still count: Dovecot, for
/// one, drops a bare CR at the very end of a message it is given.
pub const SIZE_SLACK: u64 = 2;

fn size_matches(target: u64, ours: &[u64]) -> bool {
    ours.iter().any(|s| target.abs_diff(*s) <= SIZE_SLACK)
}

/// The same message, as far as a server's handling of the last line ending
/// goes: equal once trailing CR and LF bytes are dropped from both.
pub fn same_bytes(served: &[u8], ours: &[u8]) -> bool {
    fn trim(b: &[u8]) -> &[u8] {
        let end = b
            .iter()
            .rposition(|&c| c != b'\r' && c != b'\n')
            .map_or(0, |i| i + 1);
        &b[..end]
    }
    served == ours || trim(served) == trim(ours)
}

/// What a target folder holds, indexed for the duplicate check. Each target
/// message can stand for one stored message only (claimed once).
#[derive(Debug, Default)]
pub struct TargetIndex {
    uids: HashSet<Uid>,
    by_id: HashMap<(String, i64), Vec<(Uid, u64)>>,
    without_id: HashMap<(u64, i64), Vec<Uid>>,
    claimed: HashSet<Uid>,
}

impl TargetIndex {
    pub fn new(listing: &[MessageIdentity]) -> TargetIndex {
        let mut ix = TargetIndex::default();
        for m in listing {
            ix.uids.insert(m.uid);
            match message_id(&m.message_id_header) {
                Some(id) => ix
                    .by_id
                    .entry((id, m.internaldate.unix))
                    .or_default()
                    .push((m.uid, m.size)),
                None => ix
                    .without_id
                    .entry((m.size, m.internaldate.unix))
                    .or_default()
                    .push(m.uid),
            }
        }
        ix
    }

    pub fn len(&self) -> usize {
        self.uids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    /// Claims a UID the restore map names, if the target still has it.
    pub fn claim_uid(&mut self, uid: Uid) -> bool {
        self.uids.contains(&uid) && self.claimed.insert(uid)
    }

    /// A message with this Message-ID and INTERNALDATE and one of `sizes`
    /// (the exact size, or the size in CRLF form, as servers that convert
    /// count it; give or take [`SIZE_SLACK`]), not claimed yet: claims and
    /// returns it.
    pub fn claim_by_id(&mut self, id: &str, unix: i64, sizes: &[u64]) -> Option<Uid> {
        let list = self.by_id.get(&(id.to_string(), unix))?;
        let uid = list
            .iter()
            .find(|(u, s)| size_matches(*s, sizes) && !self.claimed.contains(u))
            .map(|(u, _)| *u)?;
        self.claimed.insert(uid);
        Some(uid)
    }

    /// Unclaimed messages without a Message-ID with this INTERNALDATE and one
    /// of `sizes` (give or take [`SIZE_SLACK`]): candidates whose bytes must
    /// be compared.
    pub fn candidates_without_id(&self, unix: i64, sizes: &[u64]) -> Vec<Uid> {
        let mut out = Vec::new();
        for s in sizes {
            for t in s.saturating_sub(SIZE_SLACK)..=s + SIZE_SLACK {
                if let Some(list) = self.without_id.get(&(t, unix)) {
                    out.extend(list.iter().filter(|u| !self.claimed.contains(u)));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    pub fn claim(&mut self, uid: Uid) {
        self.claimed.insert(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InternalDate;

    #[test]
    fn message_ids_are_found_unfolded_and_normalised() {
        assert_eq!(
            message_id(b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nMessage-ID: <body@x>\r\n"),
            Some("<a@b>".into())
        );
        assert_eq!(
            message_id(b"message-id:\r\n   <folded@x>\r\nX: y\r\n\r\n"),
            Some("<folded@x>".into())
        );
        assert_eq!(
            message_id(b"Message-Id: bare-id\n\nbody"),
            Some("bare-id".into())
        );
        assert_eq!(
            message_id(b"Subject: none\r\n\r\nMessage-ID: <no@x>\r\n"),
            None
        );
        assert_eq!(
            message_id(b"Subject: old Mac\rMessage-ID:\r <cr@x>\r\rbody\r").as_deref(),
            Some("<cr@x>"),
            "CR-only line endings"
        );
        // As a server sees it, that message is one long line.
        assert_eq!(
            served_message_id(b"Subject: old Mac\rMessage-ID:\r <cr@x>\r\rbody\r"),
            None
        );
        assert_eq!(
            served_message_id(b"Subject: x\r\nMessage-ID:\r\n <a@b>\r\n\r\n").as_deref(),
            Some("<a@b>")
        );
        assert_eq!(message_id(b"Message-ID:   \r\n\r\n"), None);
        assert_eq!(message_id(b"\r\n"), None);
        assert_eq!(message_id(b""), None);
    }

    #[test]
    fn crlf_form_changes_only_line_endings() {
        assert!(matches!(crlf_form(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(crlf_form(b""), Cow::Borrowed(_)));
        assert_eq!(&*crlf_form(b"a\nb\n"), b"a\r\nb\r\n");
        assert_eq!(&*crlf_form(b"a\rb\r"), b"a\r\nb\r\n");
        assert_eq!(&*crlf_form(b"a\r\nb"), b"a\r\nb\r\n");
        assert_eq!(&*crlf_form(b"a\n\r\nb\r\r\n"), b"a\r\n\r\nb\r\n\r\n");
        let nul = b"a\0b\r\n";
        assert_eq!(&*crlf_form(nul), nul, "NUL is not a line ending");
    }

    #[test]
    fn bytes_compare_up_to_the_final_line_ending() {
        assert!(same_bytes(b"a\r\nb", b"a\r\nb\r"));
        assert!(same_bytes(b"a\r\nb\r\n", b"a\r\nb\r\n"));
        assert!(!same_bytes(b"a\r\nb", b"a\r\nc"));
        assert!(!same_bytes(b"a\nb", b"a\r\nb"));
    }

    fn ident(uid: Uid, size: u64, unix: i64, header: &str) -> MessageIdentity {
        MessageIdentity {
            uid,
            size,
            internaldate: InternalDate {
                unix,
                offset_min: 0,
            },
            message_id_header: header.as_bytes().to_vec(),
        }
    }

    #[test]
    fn each_target_message_is_claimed_once() {
        let mut ix = TargetIndex::new(&[
            ident(1, 100, 5, "Message-ID: <a@x>\r\n\r\n"),
            ident(2, 100, 5, "Message-ID: <a@x>\r\n\r\n"),
            ident(3, 50, 5, "\r\n"),
        ]);
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.claim_by_id("<a@x>", 5, &[97]), None, "size differs");
        assert_eq!(ix.claim_by_id("<a@x>", 6, &[100]), None, "date differs");
        assert_eq!(ix.claim_by_id("<a@x>", 5, &[100]), Some(1));
        assert_eq!(ix.claim_by_id("<a@x>", 5, &[98, 100]), Some(2));
        assert_eq!(ix.claim_by_id("<a@x>", 5, &[100]), None);
        assert_eq!(ix.candidates_without_id(5, &[50, 48]), vec![3]);
        assert!(ix.claim_uid(3));
        assert!(!ix.claim_uid(3));
        assert!(ix.candidates_without_id(5, &[50]).is_empty());
        assert!(!ix.claim_uid(9), "not on the target");
    }
}
