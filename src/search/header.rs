//! Header fields decoded from their raw bytes, every charset through
//! [`charset`](super::charset): MIME encoded words (RFC 2047, in any charset
//! that module reads, a character split between two words of the same
//! charset included) and raw 8-bit text (Japanese mail often has unencoded
//! headers), tried as described there with the message's charset as the
//! declared one.

use std::borrow::Cow;

use mail_parser::MessageParser;

use super::charset::{self, base64_lenient, quoted_printable, Decoded};

/// A piece of a header value.
enum Piece<'a> {
    /// Text as it is in the header.
    Raw(&'a [u8]),
    /// An encoded word: its charset label and its decoded bytes.
    Word(&'a str, Vec<u8>),
}

/// The value unfolded: its lines (any line endings) trimmed and joined by
/// one space.
fn unfold(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (line, _) in crate::formats::lines::lines(raw) {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(line);
    }
    out
}

/// One encoded word at the start of `w` (`=?charset?B|Q?text?=`): its
/// charset label, its bytes and its length.
fn encoded_word(w: &[u8]) -> Option<(&str, Vec<u8>, usize)> {
    let body = w.strip_prefix(b"=?")?;
    let q1 = body.iter().position(|&b| b == b'?')?;
    let charset = std::str::from_utf8(&body[..q1]).ok()?;
    if charset.is_empty()
        || charset
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b >= 0x80)
    {
        return None;
    }
    let encoding = *body.get(q1 + 1)?;
    if body.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let rest = &body[text_start..];
    let end = rest.windows(2).position(|p| p == b"?=")?;
    let mut text = Cow::Borrowed(&rest[..end]);
    if text.iter().any(|b| b.is_ascii_whitespace()) {
        // A B word folded in its middle (as some encoders write it): its
        // pieces are whole base64 quanta, the folding between them is not
        // part of it.
        let chunks: Vec<&[u8]> = text
            .split(|b| b.is_ascii_whitespace())
            .filter(|c| !c.is_empty())
            .collect();
        let base64 = |c: &[u8]| {
            c.iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b))
        };
        let whole = chunks[..chunks.len().saturating_sub(1)]
            .iter()
            .all(|c| c.len() % 4 == 0);
        if !matches!(encoding, b'B' | b'b') || !whole || !chunks.iter().all(|c| base64(c)) {
            return None;
        }
        text = Cow::Owned(chunks.concat());
    }
    let bytes = match encoding {
        b'B' | b'b' => base64_lenient(&text),
        b'Q' | b'q' => quoted_printable(&text, true),
        _ => return None,
    };
    Some((charset, bytes, 2 + text_start + end + 2))
}

/// Splits a value into raw text and encoded words; white space between two
/// encoded words is dropped (RFC 2047 §6.2), and consecutive words of one
/// charset are joined before decoding (a character may be split between
/// them).
fn pieces(v: &[u8]) -> Vec<Piece<'_>> {
    let mut out: Vec<Piece<'_>> = Vec::new();
    let mut raw_start = 0;
    let mut i = 0;
    while i + 1 < v.len() {
        if &v[i..i + 2] != b"=?" {
            i += 1;
            continue;
        }
        let Some((cs, bytes, len)) = encoded_word(&v[i..]) else {
            i += 2;
            continue;
        };
        let between = &v[raw_start..i];
        let after_word = matches!(out.last(), Some(Piece::Word(..)));
        let dropped = after_word && between.iter().all(|b| b.is_ascii_whitespace());
        if !dropped && !between.is_empty() {
            out.push(Piece::Raw(between));
        }
        match out.last_mut() {
            Some(Piece::Word(last, b)) if last.eq_ignore_ascii_case(cs) => b.extend(bytes),
            _ => out.push(Piece::Word(cs, bytes)),
        }
        i += len;
        raw_start = i;
    }
    if raw_start < v.len() {
        out.push(Piece::Raw(&v[raw_start..]));
    }
    out
}

fn decode_piece(p: &Piece<'_>, fallback: Option<&str>) -> Decoded {
    match p {
        Piece::Raw(b) => charset::decode(b, fallback),
        Piece::Word(cs, b) => charset::decode(b, Some(cs)),
    }
}

/// An unstructured field (Subject) from its raw value: unfolded, encoded
/// words and raw 8-bit text decoded. `fallback`: the message's charset, for
/// raw 8-bit text. The note is the first piece's that was read otherwise
/// than declared.
pub fn unstructured(raw: &[u8], fallback: Option<&str>) -> Decoded {
    let v = unfold(raw);
    let mut out = Decoded::default();
    for p in pieces(&v) {
        let d = decode_piece(&p, fallback);
        out.text.push_str(&d.text);
        if out.note.is_none() {
            out.note = d.note;
        }
    }
    out
}

/// An address field (From, To, Cc) from its raw value, as `Name <addr>, …`.
/// Encoded words and raw 8-bit text are decoded first (a decoded name is
/// quoted, so that a comma in it does not split the list), then the list is
/// parsed by mail-parser.
pub fn addresses(raw: &[u8], fallback: Option<&str>) -> Decoded {
    let v = unfold(raw);
    let mut text = String::new();
    let mut note = None;
    // Whether the text so far ends inside a quoted string or a comment.
    let mut quoted = false;
    let mut comment = 0usize;
    for p in pieces(&v) {
        let d = decode_piece(&p, fallback);
        if note.is_none() {
            note = d.note;
        }
        match p {
            Piece::Raw(_) => {
                let mut escaped = false;
                for c in d.text.chars() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' if comment == 0 => quoted = !quoted,
                        '(' if !quoted => comment += 1,
                        ')' if !quoted => comment = comment.saturating_sub(1),
                        _ => {}
                    }
                }
                text.push_str(&d.text);
            }
            Piece::Word(..) => {
                let specials: &[char] = if comment > 0 {
                    &['\\', '(', ')']
                } else {
                    &['\\', '"']
                };
                let mut esc = String::with_capacity(d.text.len());
                for c in d.text.chars() {
                    if specials.contains(&c) {
                        esc.push('\\');
                    }
                    // A line break would end the header.
                    esc.push(if c == '\r' || c == '\n' { ' ' } else { c });
                }
                if quoted || comment > 0 {
                    text.push_str(&esc);
                } else {
                    text.push('"');
                    text.push_str(&esc);
                    text.push('"');
                }
            }
        }
    }
    let header = format!("To: {text}\r\n\r\n");
    let list = MessageParser::default()
        .parse_headers(header.as_bytes())
        .and_then(|m| m.to().map(address_list));
    Decoded {
        text: list.unwrap_or(text),
        note,
    }
}

/// `Name <addr>, …`
fn address_list(a: &mail_parser::Address<'_>) -> String {
    let list: Vec<String> = a
        .iter()
        .map(|x| match (x.name().map(str::trim), x.address()) {
            (Some(n), Some(ad)) if !n.is_empty() => format!("{n} <{ad}>"),
            (_, Some(ad)) => ad.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(raw: &[u8]) -> String {
        unstructured(raw, None).text
    }

    #[test]
    fn encoded_words_in_every_charset() {
        assert_eq!(subject(b"=?UTF-8?B?6KaL56mN5pu444Gu5Lu2?="), "見積書の件");
        assert_eq!(
            subject(b"=?UNICODE-1-1-UTF-7?Q?+MKgw8zCzMPwwyTDGMLkwyA-?="),
            "エンコードテスト"
        );
        assert_eq!(
            subject(b"=?iso-2022-jp?B?GyRCJUYlOSVIGyhC?= =?x-sjis?B?g2WDWINn?="),
            "テストテスト"
        );
        assert_eq!(
            subject(b"=?utf-8?Q?caf=C3=A9_au?= =?utf-8?B?5LiA?= x =?bad"),
            "café au一 x =?bad"
        );
        // A character split between two words of one charset; folded.
        assert_eq!(
            subject(b"=?utf-8?B?44OG44K544OI?=\r\n =?utf-8?B?44OG?=\r\n\t=?utf-8?B?44K5?="),
            "テストテス"
        );
        assert_eq!(subject(b"=?UTF-8*ja?Q?=E3=81=82?= end"), "あ end");
        // A word folded in its middle.
        assert_eq!(
            subject(b"=?ISO-2022-JP?B?GyRCJUYlOSVI\r\n JWEhPCVrGyhC?="),
            "テストメール"
        );
        assert_eq!(
            subject(b"=?utf-8?B?not base64 at all?="),
            "=?utf-8?B?not base64 at all?="
        );
        // Old Mac mail: folded with CR alone.
        assert_eq!(subject(b"one\r two\r\tthree"), "one two three");
    }

    #[test]
    fn raw_8_bit_headers_and_wrong_charsets() {
        // テスト in Shift_JIS, unencoded; and in a word that says Latin-1.
        assert_eq!(subject(b"\x83\x65\x83\x58\x83\x67"), "テスト");
        let d = unstructured(b"=?iso-8859-1?B?g2WDWINn?=", None);
        assert_eq!(d.text, "テスト");
        assert_eq!(
            d.note.as_deref(),
            Some("declared iso-8859-1, read as Shift_JIS")
        );
        // Unencoded ISO-2022-JP.
        assert_eq!(subject(b"\x1b$B%F%9%H\x1b(B 2"), "テスト 2");
        // Raw text in the message's charset.
        assert_eq!(
            unstructured(b"Fr\xf6sche", Some("iso-8859-1")).text,
            "Frösche"
        );
    }

    #[test]
    fn address_lists_are_decoded_before_they_are_parsed() {
        let d = addresses(
            b"=?UTF-8?B?55Sw5Lit?= <tanaka@example.jp>, b@example.com,\r\n \"=?utf-8?Q?Doe=2C_J?=\" <j@x>",
            None,
        );
        assert_eq!(
            d.text,
            "田中 <tanaka@example.jp>, b@example.com, Doe, J <j@x>"
        );
        // A name with a comma, in a word outside quotes, stays one name.
        assert_eq!(
            addresses(b"=?utf-8?Q?Doe=2C_John?= <j@x>, k@y", None).text,
            "Doe, John <j@x>, k@y"
        );
        // Raw Shift_JIS in a name.
        assert_eq!(
            addresses(b"\x83\x65\x83\x58\x83\x67 <t@x>", Some("shift_jis")).text,
            "テスト <t@x>"
        );
        assert_eq!(
            addresses(
                b"=?unicode-1-1-utf-7?Q?+MKgw8zCzMPwwyTDGMLkwyA-?= <u@x>",
                None
            )
            .text,
            "エンコードテスト <u@x>"
        );
        assert_eq!(addresses(b"", None).text, "");
    }
}
