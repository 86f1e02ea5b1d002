//! Mailbox names (RFC 3501 §5.1.3 modified UTF-7), UID sets and the quoting of
//! command arguments. Pure functions, no I/O.

use base64::alphabet::IMAP_MUTF7;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::model::Uid;

/// Modified base64: `,` instead of `/`, never padded, no stray bits.
const MUTF7: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Decodes a mailbox name as sent on the wire (modified UTF-7) for people.
/// A name that is not valid modified UTF-7 is returned unchanged: some servers
/// send raw UTF-8, and a wrong decoding must never lose the name.
pub fn decode_mailbox_name(raw: &str) -> String {
    try_decode(raw).unwrap_or_else(|| raw.to_string())
}

fn try_decode(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find('-')?;
        let b64 = &after[..end];
        if b64.is_empty() {
            out.push('&');
        } else {
            let bytes = MUTF7.decode(b64).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let decoded = String::from_utf16(&units).ok()?;
            // Printable ASCII must not be base64-encoded (RFC 3501 §5.1.3).
            if decoded.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&decoded);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Encodes a mailbox name for the wire (modified UTF-7).
pub fn encode_mailbox_name(display: &str) -> String {
    let mut out = String::with_capacity(display.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&MUTF7.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in display.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Compresses UIDs into an IMAP sequence set: `[1,2,3,4,5,7,9,10,11,12]` →
/// `"1:5,7,9:12"`. The input is sorted and deduplicated first, so any order works.
/// An empty input gives an empty string, which no command accepts: callers
/// must not send a command for no UIDs.
pub fn compress_uid_set(uids: &[Uid]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// True when `s` is a valid sequence set (`1:5,7,9:*`), so that it can be put
/// into a command as it is.
pub(crate) fn is_sequence_set(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let mut ends = part.split(':');
            let ok = |n: Option<&str>| {
                n.is_some_and(|n| {
                    n == "*" || (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
            };
            let first = ends.next();
            match (ok(first), ends.next(), ends.next()) {
                (true, None, None) => true,
                (true, Some(second), None) => ok(Some(second)),
                _ => false,
            }
        })
}

/// Whether a string can be sent as an IMAP quoted string (7-bit, no CR/LF/NUL);
/// otherwise it has to go as a literal.
pub(crate) fn quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| (1..=0x7f).contains(&b) && b != b'\r' && b != b'\n')
}

/// `"…"` with `\` and `"` escaped. Only for [`quotable`] strings.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// imap-proto hands back quoted strings with their escapes still in place.
/// Atoms cannot hold a backslash, so a backslash means a quoted string.
pub(crate) fn unescape_quoted(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutf7_round_trips_known_names() {
        for (display, wire) in [
            ("送信済み", "&kAFP4W4IMH8-"),
            ("&", "&-"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("INBOX", "INBOX"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("😀", "&2D3eAA-"),
            ("", ""),
        ] {
            assert_eq!(encode_mailbox_name(display), wire, "encode {display}");
            assert_eq!(decode_mailbox_name(wire), display, "decode {wire}");
        }
    }

    #[test]
    fn mutf7_decodes_rfc_example() {
        // RFC 3501 §5.1.3 example uses "&MAFgwQ-" style runs; check a plain one.
        assert_eq!(decode_mailbox_name("&MAFgwQ-"), "\u{3001}\u{60c1}");
        assert_eq!(encode_mailbox_name("\u{3001}\u{60c1}"), "&MAFgwQ-");
    }

    #[test]
    fn invalid_mutf7_is_kept_raw() {
        for raw in ["&", "&abc", "&A-", "&AGE-", "Caf\u{e9}", "&Jjo!-", "&2D0-"] {
            assert_eq!(decode_mailbox_name(raw), raw, "{raw}");
        }
    }

    #[test]
    fn uid_sets_are_compressed() {
        assert_eq!(
            compress_uid_set(&[1, 2, 3, 4, 5, 7, 9, 10, 11, 12]),
            "1:5,7,9:12"
        );
        assert_eq!(compress_uid_set(&[5, 3, 4, 3]), "3:5");
        assert_eq!(compress_uid_set(&[42]), "42");
        assert_eq!(compress_uid_set(&[]), "");
        assert_eq!(compress_uid_set(&[1, 3, 5]), "1,3,5");
    }

    #[test]
    fn sequence_sets_are_validated() {
        for ok in ["1", "1:5", "1:*", "1:5,7,9:12", "*"] {
            assert!(is_sequence_set(ok), "{ok}");
        }
        for bad in ["", "1:", ":5", "1:2:3", "a", "1 2", "1,,2", "1)"] {
            assert!(!is_sequence_set(bad), "{bad}");
        }
    }

    #[test]
    fn quoting_escapes_specials() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(unescape_quoted(r#"a\"b\\c"#), r#"a"b\c"#);
        assert!(quotable("plain name"));
        assert!(!quotable("送信済み"));
        assert!(!quotable("a\r\nb"));
    }
}
