//! A message's bytes → decoded text, with mail-parser for the structure
//! and mailkeep's own decoding for the text: headers through
//! [`header`](super::header), text parts from their raw bytes through
//! [`charset`](super::charset) (every charset mail clients read, and a
//! declared charset that is wrong read as what it is).
//!
//! Line endings are normalized for reading first (bare CR, bare LF and
//! mixed endings all end lines; see [`crate::formats::lines`]); the stored
//! bytes are never changed.
//!
//! Never fails: a message mail-parser cannot make sense of is read by a raw
//! scan of its header lines, and whatever follows them is taken as text.

use std::borrow::Cow;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use mail_parser::{Encoding, Message, MessageParser, MimeHeaders, PartType};

use super::charset::{self, transfer_decode, Decoded};
use super::fold::{index_form, normalize};
use super::header;
use crate::formats::lines;
use crate::index::SearchDoc;
use crate::search::tokens::index_text;

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
    /// What was read in another charset than declared, for `show`:
    /// `Subject (declared iso-8859-1, read as Shift_JIS)`.
    pub notes: Vec<String>,
}

impl Extracted {
    pub fn has_attachment(&self) -> bool {
        !self.attachments.is_empty()
    }

    /// The row for the search index under `key`: text in its [`index_form`]
    /// (white space, NFKC, case folding) cut into the index's tokens
    /// ([`index_text`]), the body capped at [`MAX_INDEXED_TEXT`]; the
    /// subject also as written, for the results.
    pub fn to_doc(&self, key: i64) -> SearchDoc {
        let mut body = String::new();
        for t in self.texts.iter().chain(&self.nested_text) {
            if body.len() >= MAX_INDEXED_TEXT {
                break;
            }
            if !body.is_empty() {
                body.push(' ');
            }
            let mut t = t.as_str();
            if t.len() > MAX_INDEXED_TEXT {
                t = &t[..floor_char_boundary(t, MAX_INDEXED_TEXT)];
            }
            body.push_str(&index_form(t));
        }
        truncate_at_char(&mut body, MAX_INDEXED_TEXT);
        let names: Vec<&str> = self.attachments.iter().map(|a| a.name.as_str()).collect();
        let mut shown_subject = normalize(&self.subject);
        truncate_at_char(&mut shown_subject, SHOWN_SUBJECT);
        SearchDoc {
            key,
            state: if self.parsed { 1 } else { 0 },
            header_date: self.date,
            has_attachment: self.has_attachment(),
            shown_subject,
            subject: index_text(&index_form(&self.subject)),
            from: index_text(&index_form(&self.from)),
            to: index_text(&index_form(&self.to)),
            cc: index_text(&index_form(&self.cc)),
            body: index_text(&body),
            attachments: index_text(&index_form(&names.join(" "))),
        }
    }
}

/// The subject the search index keeps as written, in bytes at most (for
/// results, and to name a message whose bytes are damaged).
const SHOWN_SUBJECT: usize = 200;

/// Decodes a message. `bytes` may be only the start of a large message.
pub fn extract(bytes: &[u8]) -> Extracted {
    let bytes = lines::normalized(bytes);
    let bytes = &bytes[header_start(&bytes)..];
    let bytes = &*header_ended(bytes);
    // Should mail-parser panic on a message (its debug build does on some
    // malformed MIME structures, "Invalid part ID, could not find
    // multipart", which the released build recovers from; Cargo.toml builds
    // it without those checks), the message is read raw.
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

/// Whether a header line is a field (`Name: value`).
fn is_field(line: &[u8]) -> bool {
    line.iter().position(|&b| b == b':').is_some_and(|c| {
        let name = line[..c].trim_ascii_end();
        !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic())
    })
}

/// The message with an empty line put where its header ends without one:
/// at a line that is neither a field nor a continuation, when no field
/// follows it before the first empty line (a line that lost its leading
/// white space, with fields after it, is read as part of the header, as
/// mail clients do).
fn header_ended(bytes: &[u8]) -> Cow<'_, [u8]> {
    // The header's lines, and the empty line after it.
    let mut all: Vec<(&[u8], usize)> = Vec::new();
    for l in lines::lines(bytes) {
        all.push(l);
        if l.0.is_empty() {
            break;
        }
    }
    let mut start = 0;
    let mut saw_field = false;
    for (i, (line, end)) in all.iter().enumerate() {
        if line.is_empty() {
            break;
        }
        let continuation = line[0] == b' ' || line[0] == b'\t';
        let envelope = i == 0 && line.starts_with(b"From ");
        saw_field |= is_field(line);
        if !continuation && !envelope && !is_field(line) {
            if !saw_field {
                // Not mail at all: read raw.
                break;
            }
            let field_follows = all[i + 1..]
                .iter()
                .take_while(|(l, _)| !l.is_empty())
                .any(|(l, _)| is_field(l));
            if field_follows {
                start = *end;
                continue;
            }
            let mut out = bytes[..start].to_vec();
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&bytes[start..]);
            return Cow::Owned(out);
        }
        start = *end;
    }
    Cow::Borrowed(bytes)
}

/// Where the header starts: after blank lines (empty, or white space only)
/// that come before a first header field, as some programs write them.
fn header_start(bytes: &[u8]) -> usize {
    let mut start = 0;
    for (line, end) in lines::lines(bytes) {
        if !line.iter().all(|b| b.is_ascii_whitespace()) {
            return if is_field(line) { start } else { 0 };
        }
        start = end;
    }
    0
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

/// Collects the notes of decoded pieces, each once, with what it was.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn take(&mut self, what: &str, d: Decoded) -> String {
        if let Some(n) = d.note {
            let n = format!("{what} ({n})");
            if !self.0.contains(&n) {
                self.0.push(n);
            }
        }
        d.text
    }
}

fn from_message(m: &Message<'_>, depth: usize) -> Extracted {
    let root = m.root_part();
    let charset = root
        .content_type()
        .and_then(|c| c.attribute("charset"))
        .map(str::to_string);
    let charset = charset.as_deref();
    // The raw values of the root part's fields called `name`.
    let raw_headers = |name: &str| -> Vec<&[u8]> {
        root.headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .filter_map(|h| {
                m.raw_message
                    .get(h.offset_start as usize..h.offset_end as usize)
            })
            .collect()
    };
    let mut notes = Notes::default();
    let subject = match raw_headers("Subject").first() {
        Some(raw) => notes.take("Subject", header::unstructured(raw, charset)),
        None => String::new(),
    };
    let mut address_field = |name: &str| -> String {
        let lists: Vec<String> = raw_headers(name)
            .into_iter()
            .map(|raw| notes.take(name, header::addresses(raw, charset)))
            .filter(|s| !s.is_empty())
            .collect();
        lists.join(", ")
    };
    let from = address_field("From");
    let to = address_field("To");
    let cc = address_field("Cc");
    let mut texts = Vec::new();
    for (i, id) in text_parts(m).into_iter().enumerate() {
        if let Some(d) = part_text(m, id) {
            texts.push(if i == 0 {
                notes.take("text", d)
            } else {
                d.text
            });
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
        let mut name = part.attachment_name().map(|n| repair_name(n, charset));
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
        from,
        to,
        cc,
        date_header: raw_headers("Date")
            .first()
            .map(|r| unfold(&String::from_utf8_lossy(r))),
        date: m.date().map(|d| d.to_timestamp()).filter(|t| *t > 0),
        message_id: m.message_id().map(str::to_string),
        texts,
        nested_text,
        attachments,
        notes: notes.0,
    }
}

/// The parts whose text is the message's text, in order: mail-parser's
/// text bodies, else its HTML bodies, else (a message whose only part has
/// a Content-Type without a subtype, `text`, or one that is no type at
/// all, which RFC 2045 reads as text/plain; a multipart without a
/// boundary) the first part that is text and not a named attachment.
fn text_parts(m: &Message<'_>) -> Vec<usize> {
    let is_text = |id: &u32| {
        m.parts
            .get(*id as usize)
            .is_some_and(|p| matches!(p.body, PartType::Text(_) | PartType::Html(_)))
    };
    for list in [&m.text_body, &m.html_body] {
        let ids: Vec<usize> = list
            .iter()
            .filter(|id| is_text(id))
            .map(|id| *id as usize)
            .collect();
        if !ids.is_empty() {
            return ids;
        }
    }
    let fallback = m.parts.iter().position(|p| {
        let named = p.attachment_name().is_some();
        let text = matches!(p.body, PartType::Text(_) | PartType::Html(_));
        let untyped = matches!(p.body, PartType::Binary(_) | PartType::InlineBinary(_))
            && p.content_type().is_none_or(|c| c.subtype().is_none());
        !named && (text || untyped)
    });
    fallback.into_iter().collect()
}

/// The text of part `id`, decoded from its raw bytes: transfer encoding,
/// then charset (declared, or detected when that is wrong); HTML as text.
/// mail-parser's own text when the raw bytes cannot be had.
fn part_text(m: &Message<'_>, id: usize) -> Option<Decoded> {
    let part = m.parts.get(id)?;
    let (own, html) = match &part.body {
        PartType::Text(t) => (t.as_ref(), false),
        PartType::Html(t) => (t.as_ref(), true),
        PartType::Binary(_) | PartType::InlineBinary(_) => ("", false),
        _ => return None,
    };
    let raw = m
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize);
    let mut d = match raw {
        Some(raw) => {
            // As the header says: mail-parser forgets it for a part it
            // found an encoding problem in.
            let encoding = part
                .content_transfer_encoding()
                .unwrap_or(match part.encoding {
                    Encoding::Base64 => "base64",
                    Encoding::QuotedPrintable => "quoted-printable",
                    Encoding::None => "",
                });
            let bytes = transfer_decode(raw, encoding);
            let declared = part.content_type().and_then(|c| c.attribute("charset"));
            charset::decode(&bytes, declared)
        }
        None => Decoded {
            text: own.to_string(),
            note: None,
        },
    };
    if html {
        d.text = mail_parser::decoders::html::html_to_text(&without_hidden(&d.text));
    }
    Some(d)
}

/// HTML without what a mail client does not show: its `<style>`,
/// `<script>` and `<title>` elements (mail-parser's `html_to_text` knows
/// the first two only without attributes, the title only in a `<head>`).
fn without_hidden(html: &str) -> Cow<'_, str> {
    const HIDDEN: [&str; 3] = ["<style", "<script", "<title"];
    let lower = html.to_ascii_lowercase();
    if !HIDDEN.iter().any(|t| lower.contains(t)) {
        return Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut pos = 0;
    while pos < html.len() {
        let next = HIDDEN
            .iter()
            .filter_map(|t| lower[pos..].find(t).map(|i| (pos + i, *t)))
            .min();
        let Some((start, tag)) = next else {
            break;
        };
        out.push_str(&html[pos..start]);
        let close = format!("</{}", &tag[1..]);
        pos = match lower[start..].find(&close) {
            Some(i) => lower[start + i..]
                .find('>')
                .map_or(html.len(), |j| start + i + j + 1),
            None => html.len(),
        };
    }
    out.push_str(&html[pos.min(html.len())..]);
    Cow::Owned(out)
}

/// An attachment name as mail-parser read it, with what it left undecoded
/// decoded: encoded words (in a charset it does not know) and raw
/// ISO-2022-JP.
fn repair_name(name: &str, charset: Option<&str>) -> String {
    if name.contains("=?") || name.contains('\u{1b}') {
        return header::unstructured(name.as_bytes(), charset).text;
    }
    name.to_string()
}

/// A message mail-parser could not read: header lines until the first empty
/// line (none when the first line is not a header), the rest is text.
fn raw_scan(bytes: &[u8]) -> Extracted {
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    let mut first = true;
    let mut body_start = 0;
    for (line, end) in lines::lines(bytes) {
        if first && line.starts_with(b"From ") {
            // An mbox envelope line.
            first = false;
            body_start = end;
            continue;
        }
        if line.is_empty() {
            body_start = end;
            break;
        }
        if (line[0] == b' ' || line[0] == b'\t') && !fields.is_empty() {
            let last = fields.last_mut().expect("not empty");
            last.1.extend_from_slice(b"\r\n");
            last.1.extend_from_slice(line);
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
        body_start = end;
    }
    if fields.is_empty() {
        body_start = 0;
    }
    let mut notes = Notes::default();
    let values = |n: &str| -> Vec<&[u8]> {
        fields
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_slice())
            .collect()
    };
    let mut text_of = |n: &str, what: &str, addresses: bool| -> String {
        let parts: Vec<String> = values(n)
            .into_iter()
            .map(|v| {
                let d = if addresses {
                    header::addresses(v, None)
                } else {
                    header::unstructured(v, None)
                };
                notes.take(what, d)
            })
            .filter(|s| !s.is_empty())
            .collect();
        parts.join(", ")
    };
    let subject = text_of("subject", "Subject", false);
    let from = text_of("from", "From", true);
    let to = text_of("to", "To", true);
    let cc = text_of("cc", "Cc", true);
    let message_id = Some(text_of("message-id", "Message-ID", false))
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(|c| c == '<' || c == '>').to_string());
    let date_header = values("date")
        .first()
        .map(|v| unfold(&String::from_utf8_lossy(v)));
    let date = date_header.as_deref().and_then(|d| {
        chrono::DateTime::parse_from_rfc2822(d)
            .ok()
            .map(|t| t.timestamp())
    });
    let body = &bytes[body_start.min(bytes.len())..];
    let body = &body[..body.len().min(MAX_INDEXED_TEXT)];
    let text = notes.take("text", charset::decode(body, None));
    Extracted {
        parsed: false,
        subject,
        from,
        to,
        cc,
        date_header,
        date,
        message_id,
        texts: vec![text],
        nested_text: Vec::new(),
        attachments: Vec::new(),
        notes: notes.0,
    }
}

fn unfold(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The largest char boundary at or below `max`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut cut = max.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let cut = floor_char_boundary(s, max);
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
    }

    /// テスト, and エンコードテスト in UTF-7.
    const SJIS: &[u8] = b"\x83\x65\x83\x58\x83\x67";

    #[test]
    fn cr_only_and_mixed_line_endings_are_read_as_lines() {
        // A carrier's bounce as old gateways write it: CR alone, ISO-2022-JP.
        let m = b"From: no-reply@example.jp\rTo: a@example.jp\rSubject: =?ISO-2022-JP?B?GyRCJWEhPCVrJSglaSE8RExDThsoQg==?=\rMIME-Version: 1.0\rContent-Type: text/plain; charset=ISO-2022-JP\r\r\x1b$B%F%9%H\x1b(B\rsecond line\r";
        let e = extract(m);
        assert!(e.parsed, "{e:?}");
        assert_eq!(e.subject, "メールエラー通知");
        assert_eq!(e.from, "no-reply@example.jp");
        assert_eq!(
            e.texts[0].lines().collect::<Vec<_>>(),
            ["テスト", "second line"]
        );
        // Headers in CRLF, a multipart body in bare LF, a part in CR alone.
        let m = b"Subject: mixed\r\nFrom: a@b\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\nContent-Type: text/plain\n\nfirst part\n--b\rContent-Type: text/plain\r\rsecond part\r--b--\n";
        let e = extract(m);
        assert_eq!(e.subject, "mixed");
        assert_eq!(
            e.texts.iter().map(|t| t.trim()).collect::<Vec<_>>(),
            ["first part", "second part"]
        );
        // A message mail-parser does not take is scanned with any line endings too.
        let e = extract(b"Subject: raw\rFrom: a@b\r\rbody\r");
        assert_eq!(e.subject, "raw");
    }

    #[test]
    fn text_is_found_where_mail_parser_finds_none() {
        // A Content-Type without a subtype, or none that parses: text/plain.
        for ct in ["text", "text plain", "binary"] {
            let m = format!("From: a@b\nSubject: s\nContent-Type: {ct}\n\nhello there\n");
            assert_eq!(extract(m.as_bytes()).texts[0].trim(), "hello there", "{ct}");
        }
        // The text alternative is only an image: the HTML one is the text.
        let m = b"From: a@b\nSubject: s\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>the <b>html</b></p>\n--b\nContent-Type: multipart/related; boundary=c\n\n--c\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--c--\n--b--\n";
        assert_eq!(extract(m).texts[0].trim(), "the html");
        // No CSS in the text, whatever attributes its element has.
        let m = b"From: a@b\nSubject: s\nContent-Type: text/html\n\n<html><body><STYLE type=\"text/css\">body { width: 100% }</style><p>Hello</p><script src=x>var a;</script></body></html>\n";
        assert_eq!(extract(m).texts[0].trim(), "Hello");
    }

    #[test]
    fn a_header_that_ends_without_an_empty_line() {
        let e = extract(b"From: a@b\nSubject: s\nthis line is text\nand so is this\n");
        assert_eq!(e.subject, "s");
        assert_eq!(e.texts[0].trim(), "this line is text\nand so is this");
        // A line that lost its leading space, with fields after it, is header.
        let e = extract(
            b"Received: from x\nby y; 1 Jan 2020 00:00:00 +0000\nid z\nSubject: s\n\ntext\n",
        );
        assert_eq!(e.subject, "s");
        assert_eq!(e.texts[0].trim(), "text");
    }

    #[test]
    fn blank_lines_before_the_header_are_skipped() {
        let e = extract(b"      \nSubject: after spaces\nFrom: a@b\n\ntext\n");
        assert_eq!(e.subject, "after spaces");
        assert_eq!(e.texts[0].trim(), "text");
        assert_eq!(
            extract(b"\r\nSubject: after a blank line\r\n\r\nx").subject,
            "after a blank line"
        );
        // Text that is not a header stays text.
        let e = extract(b"\n  \nnot a header\nSubject: x\n");
        assert_eq!(e.subject, "");
    }

    #[test]
    fn utf7_headers_and_text() {
        let m = b"From: =?UNICODE-1-1-UTF-7?Q?+MKgw8zCzMPwwyTDGMLkwyA-?= <u@example.com>\r\nSubject: =?UNICODE-1-1-UTF-7?Q?+MKgw8zCzMPwwyTDGMLkwyA-?=\r\nContent-Type: text/plain; charset=unicode-1-1-utf-7\r\n\r\nHi Mom -+Jjo--! +MKgw8zCzMPwwyTDGMLkwyA-\r\n";
        let e = extract(m);
        assert_eq!(e.subject, "エンコードテスト");
        assert_eq!(e.from, "エンコードテスト <u@example.com>");
        assert_eq!(e.texts[0].trim(), "Hi Mom -\u{263a}-! エンコードテスト");
        assert!(e.notes.is_empty(), "{:?}", e.notes);
    }

    #[test]
    fn japanese_bodies_in_each_charset_and_alias() {
        for (label, body) in [
            ("Shift_JIS", SJIS),
            ("x-sjis", SJIS),
            ("windows-31j", SJIS),
            ("CP932", SJIS),
            ("EUC-JP", &b"\xa5\xc6\xa5\xb9\xa5\xc8"[..]),
            ("x-euc-jp", b"\xa5\xc6\xa5\xb9\xa5\xc8"),
            ("csISO2022JP", b"\x1b$B%F%9%H\x1b(B"),
            ("ISO-2022-JP-2", b"\x1b$B%F%9%H\x1b(B"),
        ] {
            for cte in ["8bit", "base64", "quoted-printable"] {
                let encoded: Vec<u8> = match cte {
                    "base64" => {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD
                            .encode(body)
                            .into_bytes()
                    }
                    "quoted-printable" => body
                        .iter()
                        .flat_map(|b| format!("={b:02X}").into_bytes())
                        .collect(),
                    _ => body.to_vec(),
                };
                let mut m = format!("From: a@b\r\nSubject: s\r\nContent-Type: text/plain; charset=\"{label}\"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").into_bytes();
                m.extend_from_slice(&encoded);
                m.extend_from_slice(b"\r\n");
                let e = extract(&m);
                assert_eq!(e.texts[0].trim(), "テスト", "{label} {cte}");
                assert!(e.notes.is_empty(), "{label} {cte}: {:?}", e.notes);
            }
        }
    }

    #[test]
    fn a_wrong_declared_charset_is_read_right_and_noted() {
        let mut m = b"From: a@b\r\nSubject: =?iso-8859-1?B?g2WDWINn?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n".to_vec();
        m.extend_from_slice(SJIS);
        m.extend_from_slice(b"\r\n");
        let e = extract(&m);
        assert_eq!(e.subject, "テスト");
        assert_eq!(e.texts[0].trim(), "テスト");
        assert_eq!(
            e.notes,
            [
                "Subject (declared iso-8859-1, read as Shift_JIS)",
                "text (declared iso-8859-1, read as Shift_JIS)"
            ]
        );
        // Undeclared ISO-2022-JP text.
        let e = extract(b"From: a@b\r\nSubject: s\r\n\r\n\x1b$B%F%9%H\x1b(B\r\n");
        assert_eq!(e.texts[0].trim(), "テスト");
        assert_eq!(e.notes, ["text (no charset declared, read as ISO-2022-JP)"]);
    }

    #[test]
    fn the_index_holds_folded_text_and_the_results_the_text_as_written() {
        let m = "From: ﾀﾅｶ <t@example.jp>\r\nSubject: ＡＢＣ ｶﾀｶﾅ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nStraße\r\n";
        let e = extract(m.as_bytes());
        assert_eq!(e.subject, "ＡＢＣ ｶﾀｶﾅ");
        let d = e.to_doc(1);
        // Folded, and cut into words and CJK pairs.
        assert_eq!(d.subject, "abc カタ タカ カナ");
        assert_eq!(d.from, "タナ ナカ t example jp");
        assert_eq!(d.body, "strasse");
        assert_eq!(d.shown_subject, "ＡＢＣ ｶﾀｶﾅ");
    }

    #[test]
    fn not_mail_is_text() {
        let e = extract(b"// Not an RFC-822 Document");
        assert!(!e.parsed);
        assert_eq!(e.subject, "");
        assert_eq!(e.texts[0], "// Not an RFC-822 Document");
        let e = extract(b"");
        assert_eq!(e.to_doc(1).body, "");
    }

    #[test]
    fn a_forward_right_inside_a_forward_is_read_through() {
        // A message/rfc822 directly inside a message/rfc822 holding a
        // multipart (as in SpamAssassin's `nice/mime9`): mail-parser built
        // with its debug assertions panics on it (the tests build it
        // without them, as the released binary is).
        let m = b"From: a@b\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=\"B1\"\r\n\r\n--B1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B1\r\nContent-Type: message/rfc822\r\n\r\nSubject: mid\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=--X\r\n\r\n----X\r\nContent-Type: text/plain\r\n\r\ninner text\r\n----X--\r\n\r\n--B1--\r\n";
        let e = extract(m);
        assert!(e.parsed);
        assert_eq!(e.subject, "outer");
        assert_eq!(e.from, "a@b");
        assert_eq!(e.texts, ["hi"]);
        let names: Vec<&str> = e.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["mid.eml"]);
        assert!(e.to_doc(1).body.contains("inner text"), "{e:?}");
    }

    #[test]
    fn bad_input_never_panics() {
        // Pieces of everything decoded here, put together at random.
        const PIECES: &[&[u8]] = &[
            b"Subject: ",
            b"From: ",
            b"=?",
            b"?=",
            b"?B?",
            b"?Q?",
            b"utf-7",
            b"iso-2022-jp-2",
            b"x-sjis",
            b"\x1b$B",
            b"\x1b$(D",
            b"\x1b(I",
            b"\x1bN",
            b"\x1b.A",
            b"+",
            b"-",
            b"&",
            b"\r",
            b"\n",
            b"\r\n",
            b" ",
            b"\t",
            b":",
            b"\x83",
            b"\xff",
            b"\xa4",
            b"=3D",
            b"=\r\n",
            b"Content-Type: text/plain; charset=",
            b"Content-Transfer-Encoding: base64\r\n",
            b"Content-Type: multipart/mixed; boundary=b\r\n",
            b"--b\r\n",
            b"<style>",
            b"</",
            b"\xef\xbd\xb6",
            b"\xe3\x81",
            b"\0",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            let mut m = Vec::new();
            let n = (state >> 59) as usize + 1;
            for _ in 0..n * 4 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                m.extend_from_slice(PIECES[(state >> 33) as usize % PIECES.len()]);
            }
            let e = extract(&m);
            let _ = e.to_doc(1);
            let _ = charset::decode(&m, Some("utf-7"));
            let _ = charset::decode(&m, Some("iso-2022-jp"));
            let _ = header::addresses(&m, Some("shift_jis"));
        }
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
        let d = e.to_doc(1);
        assert!(d.has_attachment);
        assert_eq!(d.attachments, "invoice pdf");
        assert_eq!(d.body, "see attached");
    }
}
