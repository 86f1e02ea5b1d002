//! A message's bytes → decoded text, with mail-parser (`full_encoding`:
//! ISO-2022-JP, Shift_JIS, EUC-JP and the rest are decoded).
//!
//! Never fails: a message mail-parser cannot make sense of is read by a raw
//! scan of its header lines, and whatever follows them is taken as text.
//! Japanese headers sent without MIME encoding (raw ISO-2022-JP escapes or
//! 8-bit Shift_JIS/EUC-JP) are decoded too.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};

use crate::index::SearchDoc;
use crate::model::BlobId;

/// At most this much body text per message goes into the index.
pub const MAX_INDEXED_TEXT: usize = 1024 * 1024;
/// Nested messages (forwarded mail) are read this deep.
const MAX_NESTING: usize = 3;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
}

/// What a message says, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// mail-parser understood it; `false`: raw header scan only.
    pub parsed: bool,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    /// The Date: header as written.
    pub date_header: Option<String>,
    /// The Date: header, unix seconds.
    pub date: Option<i64>,
    pub message_id: Option<String>,
    /// Text bodies in order (HTML turned into text); the first is what
    /// `show` prints.
    pub texts: Vec<String>,
    /// Text of attached messages (forwarded mail), for the index.
    pub nested_text: Vec<String>,
    pub attachments: Vec<Attachment>,
}

impl Extracted {
    pub fn has_attachment(&self) -> bool {
        !self.attachments.is_empty()
    }

    /// The row for the search index: text normalized (see [`normalize`]),
    /// the body capped at [`MAX_INDEXED_TEXT`].
    pub fn to_doc(&self, blob: BlobId) -> SearchDoc {
        let mut body = String::new();
        for t in self.texts.iter().chain(&self.nested_text) {
            if body.len() >= MAX_INDEXED_TEXT {
                break;
            }
            if !body.is_empty() {
                body.push(' ');
            }
            body.push_str(&normalize(t));
        }
        truncate_at_char(&mut body, MAX_INDEXED_TEXT);
        let names: Vec<&str> = self.attachments.iter().map(|a| a.name.as_str()).collect();
        SearchDoc {
            blob,
            parsed: if self.parsed { 1 } else { 0 },
            header_date: self.date,
            message_id: self.message_id.clone(),
            has_attachment: self.has_attachment(),
            subject: normalize(&self.subject),
            from: normalize(&self.from),
            to: normalize(&self.to),
            cc: normalize(&self.cc),
            body,
            attachments: normalize(&names.join(" ")),
        }
    }
}

/// Decodes a message. `bytes` may be only the start of a large message.
pub fn extract(bytes: &[u8]) -> Extracted {
    // mail-parser 0.11 panics on some malformed MIME structures ("Invalid
    // part ID, could not find multipart"): such a message is read raw.
    quiet_panic_hook();
    PARSING.with(|p| p.set(true));
    let parsed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        match MessageParser::default().parse(bytes) {
            Some(m) if looks_like_mail(&m) => Some(from_message(&m, 0)),
            _ => None,
        }
    }));
    PARSING.with(|p| p.set(false));
    match parsed {
        Ok(Some(e)) => e,
        Ok(None) | Err(_) => raw_scan(bytes),
    }
}

thread_local! {
    /// Set while this thread runs mail-parser, whose panics are caught.
    static PARSING: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once) a panic hook that keeps quiet about panics inside
/// mail-parser, which [`extract`] catches, and hands every other panic to
/// the hook that was there before.
fn quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !PARSING.with(|p| p.get()) {
                previous(info);
            }
        }));
    });
}

/// mail-parser takes almost anything; text with no header fields it knows
/// and no body it found is better read raw.
fn looks_like_mail(m: &Message<'_>) -> bool {
    m.subject().is_some()
        || m.from().is_some()
        || m.to().is_some()
        || m.date().is_some()
        || m.message_id().is_some()
        || m.text_body_count() > 0
        || m.html_body_count() > 0
}

fn from_message(m: &Message<'_>, depth: usize) -> Extracted {
    let charset = m
        .root_part()
        .content_type()
        .and_then(|c| c.attribute("charset"))
        .map(str::to_string);
    let raw_header = |name: &str| -> Option<&[u8]> {
        let h = m
            .root_part()
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))?;
        m.raw_message
            .get(h.offset_start as usize..h.offset_end as usize)
    };
    let subject = match (m.subject(), raw_header("Subject")) {
        (Some(s), Some(raw)) if needs_repair(s) => decode_raw_header(raw, charset.as_deref()),
        (Some(s), _) if s.contains("=?") => decode_encoded_words(s),
        (Some(s), _) => s.to_string(),
        (None, _) => String::new(),
    };
    let mut texts = Vec::new();
    for i in 0..m.text_body_count() {
        if let Some(t) = m.body_text(i) {
            texts.push(repair_text(&t));
        }
    }
    if texts.is_empty() {
        for i in 0..m.html_body_count() {
            if let Some(t) = m.body_text(i) {
                texts.push(repair_text(&t));
            }
        }
    }
    let mut attachments = Vec::new();
    let mut nested_text = Vec::new();
    for part in m.attachments() {
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_ascii_lowercase();
        let mut name = part.attachment_name().map(repair_text);
        if let PartType::Message(inner) = &part.body {
            if depth < MAX_NESTING {
                let e = from_message(inner, depth + 1);
                if name.is_none() && !e.subject.is_empty() {
                    name = Some(format!("{}.eml", e.subject));
                }
                nested_text.push(e.subject);
                nested_text.extend(e.texts);
                nested_text.extend(e.nested_text);
            }
        }
        let disposition_attachment = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        if name.is_none() && !disposition_attachment && !part.is_message() {
            // An inline part without a name (an image in HTML mail): not an
            // attachment anyone would look for.
            continue;
        }
        attachments.push(Attachment {
            name: name.unwrap_or_else(|| "(unnamed)".into()),
            content_type,
            size: part.len() as u64,
        });
    }
    Extracted {
        parsed: true,
        subject,
        from: addresses(m.from()),
        to: addresses(m.to()),
        cc: addresses(m.cc()),
        date_header: raw_header("Date").map(|r| unfold(&String::from_utf8_lossy(r))),
        date: m.date().map(|d| d.to_timestamp()).filter(|t| *t > 0),
        message_id: m.message_id().map(str::to_string),
        texts,
        nested_text,
        attachments,
    }
}

/// `Name <addr>, …`
fn addresses(a: Option<&Address<'_>>) -> String {
    let Some(a) = a else { return String::new() };
    let list: Vec<String> = a
        .iter()
        .map(|x| {
            let name = x.name().map(repair_text);
            match (name, x.address()) {
                (Some(n), Some(ad)) if !n.is_empty() => format!("{n} <{ad}>"),
                (_, Some(ad)) => ad.to_string(),
                (Some(n), None) => n,
                (None, None) => String::new(),
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    list.join(", ")
}

/// A message mail-parser could not read: header lines until the first empty
/// line (none when the first line is not a header), the rest is text.
fn raw_scan(bytes: &[u8]) -> Extracted {
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    let mut pos = 0;
    let mut first = true;
    let mut body_start = 0;
    while pos < bytes.len() {
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(bytes.len());
        let line = trim_eol(&bytes[pos..end]);
        if first && line.starts_with(b"From ") {
            // An mbox envelope line.
            pos = end;
            first = false;
            continue;
        }
        if line.is_empty() {
            body_start = end;
            break;
        }
        if (line[0] == b' ' || line[0] == b'\t') && !fields.is_empty() {
            let last = fields.last_mut().expect("not empty");
            last.1.push(b' ');
            last.1.extend_from_slice(line.trim_ascii());
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
                break;
            }
            fields.push((
                String::from_utf8_lossy(name).to_ascii_lowercase(),
                line[colon + 1..].trim_ascii().to_vec(),
            ));
        } else {
            break;
        }
        first = false;
        pos = end;
        body_start = end;
    }
    if fields.is_empty() {
        body_start = 0;
    }
    let get = |n: &str| -> String {
        fields
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| decode_raw_header(v, None))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let date_header = fields
        .iter()
        .find(|(k, _)| k == "date")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let date = date_header.as_deref().and_then(|d| {
        chrono::DateTime::parse_from_rfc2822(d)
            .ok()
            .map(|t| t.timestamp())
    });
    let message_id = Some(get("message-id"))
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(|c| c == '<' || c == '>').to_string());
    let body = &bytes[body_start.min(bytes.len())..];
    let body = &body[..body.len().min(MAX_INDEXED_TEXT)];
    Extracted {
        parsed: false,
        subject: get("subject"),
        from: get("from"),
        to: get("to"),
        cc: get("cc"),
        date_header,
        date,
        message_id,
        texts: vec![decode_raw_header(body, None)],
        nested_text: Vec::new(),
        attachments: Vec::new(),
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\n' | b'\r'] = l {
        l = rest;
    }
    l
}

fn unfold(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes the MIME encoded words (`=?charset?B|Q?text?=`) that mail-parser
/// left as they were (it gives up on a word that does not decode cleanly,
/// e.g. ISO-2022-JP with carrier emoji); what cannot be decoded stays.
fn decode_encoded_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let Some((decoded, len)) = encoded_word(word) else {
            out.push_str(before);
            out.push_str("=?");
            rest = &word[2..];
            after_word = false;
            continue;
        };
        // White space between two encoded words is not part of the text.
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&decoded);
        rest = &word[len..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `w`: its text and its length.
fn encoded_word(w: &str) -> Option<(String, usize)> {
    let body = w.strip_prefix("=?")?;
    let mut parts = body.splitn(3, '?');
    let charset = parts.next()?;
    let encoding = parts.next()?;
    let rest = parts.next()?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if charset.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text.trim_end_matches('='))
                .ok()?
        }
        "Q" | "q" => {
            let mut v = Vec::new();
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => v.push(b' '),
                    b'=' => {
                        let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                        v.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    c => v.push(c),
                }
                i += 1;
            }
            v
        }
        _ => return None,
    };
    let len = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    // RFC 2231 language suffix: `charset*lang`.
    let charset = charset.split('*').next().unwrap_or(charset);
    let decoded = match charset_decoder(charset.as_bytes()) {
        Some(dec) => dec(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    };
    Some((decoded, len))
}

/// Text that still holds ISO-2022-JP escapes or replacement characters was
/// not decoded right.
fn needs_repair(s: &str) -> bool {
    s.contains('\u{1b}') || s.contains('\u{fffd}')
}

/// Text (a part declared without a charset, say) that still holds raw
/// ISO-2022-JP escape sequences is decoded as ISO-2022-JP.
fn repair_text(s: &str) -> String {
    if s.contains("\u{1b}$B") || s.contains("\u{1b}$@") || s.contains("\u{1b}(J") {
        if let Some(dec) = charset_decoder(b"iso-2022-jp") {
            return dec(s.as_bytes());
        }
    }
    s.to_string()
}

/// A header value as raw bytes (unfolded or not): MIME encoded words are
/// decoded; raw 8-bit text is tried as UTF-8, then as the message's charset,
/// then as Shift_JIS and EUC-JP (Japanese mail often has unencoded headers),
/// and the first decoding without replacement characters wins.
fn decode_raw_header(raw: &[u8], charset: Option<&str>) -> String {
    let unfolded = unfold(&String::from_utf8_lossy(raw));
    if raw.windows(2).any(|w| w == b"=?") {
        // Let mail-parser decode the encoded words of an unstructured field.
        let mut msg = b"Subject: ".to_vec();
        msg.extend_from_slice(raw);
        msg.extend_from_slice(b"\r\n\r\n");
        if let Some(s) = MessageParser::default()
            .parse(&msg)
            .and_then(|m| m.subject().map(str::to_string))
        {
            if !needs_repair(&s) {
                return s;
            }
        }
        let words = decode_encoded_words(&unfolded);
        if words != unfolded {
            return words;
        }
    }
    if raw.contains(&0x1b) {
        if let Some(dec) = charset_decoder(b"iso-2022-jp") {
            return unfold(&dec(raw));
        }
    }
    if let Ok(s) = std::str::from_utf8(raw) {
        return unfold(s);
    }
    let mut candidates: Vec<&[u8]> = Vec::new();
    if let Some(c) = charset {
        candidates.push(c.as_bytes());
    }
    candidates.extend([&b"shift_jis"[..], b"euc-jp", b"windows-1252"]);
    for c in candidates {
        if let Some(dec) = charset_decoder(c) {
            let s = dec(raw);
            if !s.contains('\u{fffd}') {
                return unfold(&s);
            }
        }
    }
    unfolded
}

/// Text as the index keeps it: line breaks and runs of white space become
/// one space, except that a line break between two CJK characters is
/// dropped (Japanese text is wrapped anywhere, and `見積\n書` is `見積書`);
/// control characters become spaces.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    let mut pending_newline = false;
    let mut prev: Option<char> = None;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = true;
            if c == '\n' || c == '\r' {
                pending_newline = true;
            }
            continue;
        }
        if pending_space && prev.is_some() {
            let join = pending_newline && prev.is_some_and(is_cjk) && is_cjk(c);
            if !join {
                out.push(' ');
            }
        }
        pending_space = false;
        pending_newline = false;
        out.push(c);
        prev = Some(c);
    }
    out
}

/// Characters of scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x30FF      // CJK punctuation, hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // compatibility ideographs
        | 0xFF00..=0xFFEF    // full- and half-width forms
        | 0x20000..=0x3FFFF) // extensions B and later
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_words_and_bodies() {
        let m = "Subject: =?UTF-8?B?6KaL56mN5pu444Gu5Lu2?=\r\nFrom: =?UTF-8?B?55Sw5Lit?= <tanaka@example.jp>\r\nTo: a@example.com, B <b@example.com>\r\nDate: Mon, 4 Jan 2021 10:00:00 +0900\r\nMessage-ID: <x@y>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n本文です\r\n";
        let e = extract(m.as_bytes());
        assert!(e.parsed);
        assert_eq!(e.subject, "見積書の件");
        assert_eq!(e.from, "田中 <tanaka@example.jp>");
        assert_eq!(e.to, "a@example.com, B <b@example.com>");
        assert_eq!(e.date, Some(1609722000));
        assert_eq!(e.message_id.as_deref(), Some("x@y"));
        assert_eq!(e.texts[0].trim(), "本文です");
    }

    #[test]
    fn raw_iso_2022_jp_and_shift_jis_headers_are_decoded() {
        // テスト in ISO-2022-JP, unencoded in the header.
        let mut m = b"Subject: \x1b$B%F%9%H\x1b(B\r\nFrom: a@b\r\n\r\nx\r\n".to_vec();
        assert_eq!(extract(&m).subject, "テスト");
        // テスト in Shift_JIS, 8-bit in the header.
        m = b"Subject: \x83\x65\x83\x58\x83\x67\r\nFrom: a@b\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\r\n\x83\x65\r\n".to_vec();
        let e = extract(&m);
        assert_eq!(e.subject, "テスト");
        assert_eq!(e.texts[0].trim(), "テ");
    }

    #[test]
    fn encoded_words_mail_parser_leaves_alone_are_decoded() {
        // 題名 and an au emoji outside JIS X 0208, in ISO-2022-JP.
        let m = b"Subject: =?iso-2022-jp?B?GyRCQmpMPnZeGyhC?=\r\nFrom: a@b\r\n\r\nx\r\n";
        assert!(
            extract(m).subject.starts_with("題名"),
            "{}",
            extract(m).subject
        );
        assert_eq!(
            decode_encoded_words("=?utf-8?Q?caf=C3=A9_au?= =?utf-8?B?5LiA?= x =?bad"),
            "café au一 x =?bad"
        );
    }

    #[test]
    fn not_mail_is_text() {
        let e = extract(b"// Not an RFC-822 Document");
        assert!(!e.parsed);
        assert_eq!(e.subject, "");
        assert_eq!(e.texts[0], "// Not an RFC-822 Document");
        let e = extract(b"");
        assert_eq!(e.to_doc(BlobId::of(b"")).body, "");
    }

    #[test]
    fn a_message_mail_parser_panics_on_is_read_raw() {
        // A message/rfc822 directly inside a message/rfc822 holding a
        // multipart (as in SpamAssassin's `nice/mime9`).
        let m = b"From: a@b\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=\"B1\"\r\n\r\n--B1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B1\r\nContent-Type: message/rfc822\r\n\r\nSubject: mid\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=--X\r\n\r\n----X\r\nContent-Type: text/plain\r\n\r\ninner text\r\n----X--\r\n\r\n--B1--\r\n";
        let e = extract(m);
        assert!(!e.parsed);
        assert_eq!(e.subject, "outer");
        assert_eq!(e.from, "a@b");
        assert!(e.texts[0].contains("inner text"));
    }

    #[test]
    fn attachments_are_listed() {
        let m = "From: a@b\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n";
        let e = extract(m.as_bytes());
        assert_eq!(
            e.attachments,
            vec![Attachment {
                name: "invoice.pdf".into(),
                content_type: "application/pdf".into(),
                size: 9,
            }]
        );
        let d = e.to_doc(BlobId::of(m.as_bytes()));
        assert!(d.has_attachment);
        assert_eq!(d.attachments, "invoice.pdf");
        assert_eq!(d.body, "see attached");
    }

    #[test]
    fn normalize_joins_wrapped_japanese_only() {
        assert_eq!(
            normalize("見積\r\n書を  送ります\nnext\tline"),
            "見積書を 送ります next line"
        );
        assert_eq!(normalize("  a\u{0}b "), "a b");
    }
}
