//! Text in the charsets mail is written in, decoded the way mail clients
//! decode it, and a declared charset that is wrong read as what it is.
//!
//! - Labels: every name the WHATWG Encoding Standard knows (through
//!   encoding_rs: UTF-8, Shift_JIS = CP932 = Windows-31J, EUC-JP, GBK, Big5,
//!   EUC-KR, windows-125x, ISO-8859-x, KOI8, UTF-16, …), the vendor and `X-`
//!   aliases real mail carries (`x-sjis`, `cp932`, `ms932`, `x-euc-jp`,
//!   `csISO2022JP`, …), the rest mail-parser knows (IBM 850, …), and two
//!   families decoded here: the UTF-7 family (RFC 2152: `UTF-7`,
//!   `UNICODE-1-1-UTF-7`, RFC 1642; IMAP's modified UTF-7 is not a mail
//!   charset and is not one of them) and the ISO-2022-JP family (RFC 1468
//!   and its `-1`, `-2`, `-3`/`-2004` extensions).
//! - A declared charset is used when the text is valid in it. When it is
//!   not (or none is declared, or it is unknown), the text is tried as valid
//!   UTF-8, then as ISO-2022-JP (7-bit text with its escapes), Shift_JIS and
//!   EUC-JP, and the reading that looks most like Japanese wins. A text that
//!   is valid in a declared single-byte charset (ISO-8859-1, say, where every
//!   byte is valid) is read otherwise only on strong evidence: valid UTF-8,
//!   ISO-2022-JP escapes, or a Japanese reading with kana and nothing
//!   foreign. Whenever the text is read as something other than what was
//!   declared, [`Decoded::note`] says so: `declared iso-8859-1, read as
//!   Shift_JIS`.

use std::borrow::Cow;

use encoding_rs::Encoding;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::charsets::DecoderFnc;

/// A charset that can be decoded.
#[derive(Clone, Copy)]
pub enum Charset {
    /// Any encoding of the WHATWG Encoding Standard (UTF-8 included).
    Web(&'static Encoding),
    /// UTF-7 (RFC 2152) and UNICODE-1-1-UTF-7 (RFC 1642).
    Utf7,
    /// ISO-2022-JP and its extensions (-1, -2, -3, -2004).
    Iso2022Jp,
    /// What mail-parser knows beyond the others (IBM 850, …): lossy only.
    Other(&'static str, DecoderFnc),
}

impl std::fmt::Debug for Charset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for Charset {
    fn eq(&self, other: &Charset) -> bool {
        self.name() == other.name()
    }
}

/// Labels encoding_rs does not know, as the charsets they stand for.
const ALIASES: &[(&str, &str)] = &[
    // Shift_JIS in its Microsoft form (CP932), which is what WHATWG's
    // Shift_JIS decodes.
    ("cp932", "shift_jis"),
    ("ibm-943", "shift_jis"),
    ("ms_kanji", "shift_jis"),
    ("shift-jis", "shift_jis"),
    ("shiftjis", "shift_jis"),
    ("sjis-open", "shift_jis"),
    ("sjis-win", "shift_jis"),
    ("x-ms-cp932", "shift_jis"),
    ("x-shift-jis", "shift_jis"),
    ("x-shift_jis", "shift_jis"),
    ("shift_jisx0213", "shift_jis"),
    ("shift_jis-2004", "shift_jis"),
    ("cswindows31j", "shift_jis"),
    ("windows-932", "shift_jis"),
    // EUC-JP and its vendor forms.
    ("eucjp", "euc-jp"),
    ("euc_jp", "euc-jp"),
    ("x-euc", "euc-jp"),
    ("x-eucjp", "euc-jp"),
    ("euc-jp-ms", "euc-jp"),
    ("eucjp-ms", "euc-jp"),
    ("eucjp-win", "euc-jp"),
    ("euc-jisx0213", "euc-jp"),
    ("euc-jis-2004", "euc-jp"),
    ("ujis", "euc-jp"),
    ("cseucjp", "euc-jp"),
    // UTF-8 as some programs spell it.
    ("utf8", "utf-8"),
    ("x-utf-8", "utf-8"),
    ("x-utf8", "utf-8"),
];

/// Labels of the UTF-7 family (not IMAP's modified UTF-7).
const UTF7: &[&str] = &[
    "utf-7",
    "utf7",
    "unicode-1-1-utf-7",
    "unicode-2-0-utf-7",
    "x-unicode-2-0-utf-7",
    "csunicode11utf7",
    "csutf7",
];

/// Labels of the ISO-2022-JP family.
const ISO2022JP: &[&str] = &[
    "iso-2022-jp",
    "iso2022jp",
    "csiso2022jp",
    "iso-2022-jp-1",
    "iso-2022-jp-2",
    "csiso2022jp2",
    "iso-2022-jp-3",
    "iso-2022-jp-2004",
    "iso-2022-jp-ms",
    "x-windows-iso2022jp",
    "cp50220",
    "cp50221",
    "cp50222",
    "jis",
    "x-iso-2022-jp",
];

/// A charset label as it is compared: trimmed, unquoted, lower case, without
/// an RFC 2231 language (`utf-8*en`).
pub fn clean_label(label: &str) -> String {
    let l = label.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    let l = l.split('*').next().unwrap_or(l);
    l.to_ascii_lowercase()
}

impl Charset {
    /// The charset a label names, if it is one that can be decoded.
    pub fn lookup(label: &str) -> Option<Charset> {
        let l = clean_label(label);
        if l.is_empty() {
            return None;
        }
        if UTF7.contains(&l.as_str()) {
            return Some(Charset::Utf7);
        }
        if ISO2022JP.contains(&l.as_str()) {
            return Some(Charset::Iso2022Jp);
        }
        let l = ALIASES
            .iter()
            .find(|(a, _)| *a == l)
            .map(|(_, to)| to.to_string())
            .unwrap_or(l);
        if let Some(enc) = Encoding::for_label(l.as_bytes()) {
            // `replacement` (ISO-2022-KR, HZ, …) decodes to nothing, and
            // x-user-defined is not a charset a sender meant.
            if enc == encoding_rs::REPLACEMENT || enc == encoding_rs::X_USER_DEFINED {
                return None;
            }
            return Some(Charset::Web(enc));
        }
        charset_decoder(l.as_bytes()).map(|d| Charset::Other(other_name(&l), d))
    }

    /// Its name as `show` prints it.
    pub fn name(&self) -> &'static str {
        match self {
            Charset::Web(enc) => enc.name(),
            Charset::Utf7 => "UTF-7",
            Charset::Iso2022Jp => "ISO-2022-JP",
            Charset::Other(name, _) => name,
        }
    }

    /// Whether every byte is a character of its own (ISO-8859-x,
    /// windows-125x, KOI8): then any text is valid in it.
    fn single_byte(&self) -> bool {
        match self {
            Charset::Web(enc) => enc.is_single_byte(),
            Charset::Other(..) => true,
            Charset::Utf7 | Charset::Iso2022Jp => false,
        }
    }

    /// Whether ASCII bytes are ASCII characters in it.
    fn ascii_compatible(&self) -> bool {
        match self {
            Charset::Web(enc) => enc.is_ascii_compatible(),
            Charset::Other(..) => true,
            Charset::Utf7 | Charset::Iso2022Jp => false,
        }
    }

    /// The text and whether anything in it was not valid (each such piece
    /// becoming U+FFFD).
    pub fn decode(&self, bytes: &[u8]) -> (String, bool) {
        match self {
            Charset::Web(enc) => {
                let (enc, body) = match Encoding::for_bom(bytes) {
                    // A byte-order mark says which UTF it is.
                    Some((bom, len)) if *enc == encoding_rs::UTF_8 || is_utf16(enc) => {
                        (bom, &bytes[len..])
                    }
                    _ => (*enc, bytes),
                };
                let (text, errors) = enc.decode_without_bom_handling(body);
                (text.into_owned(), errors)
            }
            Charset::Utf7 => utf7(bytes),
            Charset::Iso2022Jp => iso2022jp(bytes),
            Charset::Other(_, dec) => {
                let text = dec(bytes);
                let errors = text.contains('\u{fffd}');
                (text, errors)
            }
        }
    }
}

fn is_utf16(enc: &Encoding) -> bool {
    enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE
}

fn other_name(label: &str) -> &'static str {
    match label {
        "850" | "cp850" | "ibm850" | "cspc850multilingual" => "IBM850",
        _ => "a legacy charset",
    }
}

/// Decoded text, and what was read otherwise than declared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    /// `declared iso-8859-1, read as Shift_JIS`, when the text was not read
    /// in the charset it declared.
    pub note: Option<String>,
}

impl Decoded {
    fn plain(text: String) -> Decoded {
        Decoded { text, note: None }
    }
}

/// Decodes `bytes` declared (or not) to be in `declared`; see the module
/// documentation for how a wrong or missing declaration is handled.
pub fn decode(bytes: &[u8], declared: Option<&str>) -> Decoded {
    let label = declared.map(clean_label).filter(|l| !l.is_empty());
    let charset = label.as_deref().and_then(Charset::lookup);
    let note = |read_as: &str| match &label {
        Some(l) if charset.is_some() => format!("declared {l}, read as {read_as}"),
        Some(l) => format!("unknown charset {l}, read as {read_as}"),
        None => format!("no charset declared, read as {read_as}"),
    };
    if let Some(cs) = charset {
        let (text, errors) = cs.decode(bytes);
        if !errors {
            // Valid as declared. A single-byte charset takes any bytes, and
            // an ASCII one takes ISO-2022-JP's escapes: there, look further.
            let doubtful = cs.ascii_compatible()
                && ((cs.single_byte() && !bytes.is_ascii()) || has_jis_escape(bytes));
            if !doubtful {
                return Decoded::plain(text);
            }
            return match detect(bytes, true, Some(cs)) {
                Some((other, better)) => Decoded {
                    text: better,
                    note: Some(note(other.name())),
                },
                None => Decoded::plain(text),
            };
        }
        return match detect(bytes, false, Some(cs)) {
            Some((other, better)) => Decoded {
                text: better,
                note: Some(note(other.name())),
            },
            None => Decoded::plain(text),
        };
    }
    if bytes.is_ascii() && !has_jis_escape(bytes) {
        return Decoded::plain(String::from_utf8_lossy(bytes).into_owned());
    }
    match detect(bytes, false, None) {
        Some((cs, text)) => Decoded {
            note: (cs != Charset::Web(encoding_rs::UTF_8) || label.is_some())
                .then(|| note(cs.name())),
            text,
        },
        None => {
            // Nothing reads right: Windows-1252 (every byte is a character;
            // what mail clients fall back on) for undeclared text.
            let (text, _) = Charset::Web(encoding_rs::WINDOWS_1252).decode(bytes);
            Decoded {
                text,
                note: Some(note("windows-1252")),
            }
        }
    }
}

/// The best reading of `bytes` other than `declared`: valid UTF-8, then
/// ISO-2022-JP (7-bit with its escapes), then Shift_JIS or EUC-JP, whichever
/// looks more like Japanese. `strong`: the text was valid as declared, so
/// only strong evidence counts (a Japanese reading must hold kana and
/// nothing foreign).
fn detect(bytes: &[u8], strong: bool, declared: Option<Charset>) -> Option<(Charset, String)> {
    let not_declared = |cs: &Charset| declared.as_ref() != Some(cs);
    let utf8 = Charset::Web(encoding_rs::UTF_8);
    if !bytes.is_ascii() && not_declared(&utf8) {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Some((utf8, s.to_string()));
        }
    }
    if bytes.is_ascii() {
        if has_jis_escape(bytes) && not_declared(&Charset::Iso2022Jp) {
            if let (text, false) = iso2022jp(bytes) {
                return Some((Charset::Iso2022Jp, text));
            }
        }
        return None;
    }
    let mut best: Option<(i64, Charset, String)> = None;
    for enc in [encoding_rs::SHIFT_JIS, encoding_rs::EUC_JP] {
        let cs = Charset::Web(enc);
        if !not_declared(&cs) {
            continue;
        }
        let (text, errors) = cs.decode(bytes);
        if errors {
            continue;
        }
        let s = japanese_score(&text);
        let acceptable = if strong {
            s.kana > 0 && s.foreign == 0 && s.score() >= 2
        } else {
            // Nothing else reads it: anything Japanese or neutral (①②③).
            s.score() > 0 || (s.foreign == 0 && s.score() >= 0)
        };
        if acceptable && best.as_ref().is_none_or(|(b, _, _)| s.score() > *b) {
            best = Some((s.score(), cs, text));
        }
    }
    best.map(|(_, cs, text)| (cs, text))
}

/// How Japanese a text looks.
#[derive(Debug, Default)]
struct Score {
    /// Full-width hiragana and katakana.
    kana: i64,
    /// Kanji, CJK punctuation, full-width forms.
    cjk: i64,
    /// Half-width katakana: old Japanese mail has them, but so has Latin
    /// text read as Shift_JIS.
    halfwidth: i64,
    /// Anything else beyond ASCII but symbols: Latin letters with accents,
    /// Cyrillic, Hangul, private use.
    foreign: i64,
}

impl Score {
    fn score(&self) -> i64 {
        2 * self.kana + self.cjk - self.halfwidth - 3 * self.foreign
    }
}

fn japanese_score(text: &str) -> Score {
    let mut s = Score::default();
    for c in text.chars() {
        match c as u32 {
            0..=0x7F => {}
            0x3041..=0x30FF => s.kana += 1,
            0x3000..=0x303F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF => s.cjk += 1,
            0xFF01..=0xFF60 | 0xFFE0..=0xFFEF => s.cjk += 1,
            0xFF61..=0xFF9F => s.halfwidth += 1,
            // Symbols, arrows, box drawing, circled digits: in Japanese
            // text as much as anywhere.
            0x2000..=0x2BFF | 0x00A0..=0x00BF | 0x00D7 | 0x00F7 => {}
            _ => s.foreign += 1,
        }
    }
    s
}

/// Whether `bytes` holds an ISO-2022 escape that designates a Japanese (or
/// ISO-2022-JP-2) character set.
fn has_jis_escape(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| {
        matches!(
            w,
            [0x1b, b'$', b'@' | b'B' | b'A' | b'(']
                | [0x1b, b'(', b'J' | b'I']
                | [0x1b, b'&', b'@']
        )
    })
}

/// RFC 2152 UTF-7 (RFC 1642's UNICODE-1-1-UTF-7 is the same for decoding):
/// `+` starts base64 of UTF-16, ended by any other character (a `-` ending
/// it is dropped); `+-` is `+`.
fn utf7(bytes: &[u8]) -> (String, bool) {
    fn sextet(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = String::with_capacity(bytes.len());
    let mut errors = false;
    let mut i = 0;
    let mut units: Vec<u16> = Vec::new();
    while i < bytes.len() {
        let b = bytes[i];
        if b >= 0x80 {
            out.push('\u{fffd}');
            errors = true;
            i += 1;
            continue;
        }
        if b != b'+' {
            out.push(b as char);
            i += 1;
            continue;
        }
        i += 1;
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let (mut acc, mut bits) = (0u32, 0u32);
        units.clear();
        while let Some(v) = bytes.get(i).and_then(|&c| sextet(c)) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                units.push((acc >> bits) as u16);
                acc &= (1 << bits) - 1;
            }
            i += 1;
        }
        // Left-over bits must be zero padding of less than a sextet.
        if bits >= 6 || acc != 0 {
            errors = true;
        }
        for r in char::decode_utf16(units.iter().copied()) {
            out.push(r.unwrap_or_else(|_| {
                errors = true;
                '\u{fffd}'
            }));
        }
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    (out, errors)
}

/// The character sets an ISO-2022-JP text switches between.
#[derive(Clone, Copy, PartialEq, Eq)]
enum G0 {
    Ascii,
    /// JIS X 0201 Roman: ASCII with ¥ and ‾.
    Roman,
    /// JIS X 0201 katakana (half-width).
    Katakana,
    /// JIS X 0208 (and JIS X 0213 plane 1, its superset, as far as it
    /// goes), read through EUC-JP.
    Jis0208,
    /// JIS X 0212 (ISO-2022-JP-1), through EUC-JP's 0x8F prefix.
    Jis0212,
    /// GB 2312 (ISO-2022-JP-2), through GBK.
    Gb2312,
    /// KS C 5601 (ISO-2022-JP-2), through EUC-KR.
    Ksc5601,
    /// JIS X 0213 plane 2: not decodable here.
    Unknown,
}

/// ISO-2022-JP, -1, -2 and -3: escapes switch the set of the following
/// bytes; ISO-2022-JP-2's single shift (`ESC N`) takes one character from
/// ISO-8859-1 or -7. A line ending returns to ASCII (each line starts in
/// ASCII). 8-bit bytes and unknown codes are errors.
fn iso2022jp(bytes: &[u8]) -> (String, bool) {
    let mut out = String::with_capacity(bytes.len());
    let mut errors = false;
    let mut g0 = G0::Ascii;
    let mut shifted_out = false;
    let mut g2: Option<&'static Encoding> = None;
    let mut run: Vec<u8> = Vec::new();
    let mut i = 0;
    fn flush(run: &mut Vec<u8>, g0: G0, out: &mut String, errors: &mut bool) {
        if run.is_empty() {
            return;
        }
        let enc = match g0 {
            G0::Gb2312 => encoding_rs::GBK,
            G0::Ksc5601 => encoding_rs::EUC_KR,
            _ => encoding_rs::EUC_JP,
        };
        let (text, bad) = enc.decode_without_bom_handling(run);
        out.push_str(&text);
        *errors |= bad;
        run.clear();
    }
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1b {
            let designation = match (bytes.get(i + 1), bytes.get(i + 2), bytes.get(i + 3)) {
                (Some(b'('), Some(b'B'), _) => Some((G0::Ascii, 3)),
                (Some(b'('), Some(b'J'), _) => Some((G0::Roman, 3)),
                (Some(b'('), Some(b'I'), _) => Some((G0::Katakana, 3)),
                (Some(b'$'), Some(b'@' | b'B'), _) => Some((G0::Jis0208, 3)),
                (Some(b'$'), Some(b'A'), _) => Some((G0::Gb2312, 3)),
                (Some(b'$'), Some(b'('), Some(b'D')) => Some((G0::Jis0212, 4)),
                (Some(b'$'), Some(b'('), Some(b'C')) => Some((G0::Ksc5601, 4)),
                (Some(b'$'), Some(b'('), Some(b'O' | b'Q')) => Some((G0::Jis0208, 4)),
                (Some(b'$'), Some(b'('), Some(b'P')) => Some((G0::Unknown, 4)),
                // JIS X 0208-1990's announcer before `ESC $ B`.
                (Some(b'&'), Some(b'@'), _) => {
                    i += 3;
                    continue;
                }
                (Some(b'.'), Some(b'A'), _) => {
                    g2 = Some(encoding_rs::WINDOWS_1252);
                    i += 3;
                    continue;
                }
                (Some(b'.'), Some(b'F'), _) => {
                    g2 = Some(encoding_rs::ISO_8859_7);
                    i += 3;
                    continue;
                }
                (Some(b'N'), Some(&c), _) if g2.is_some() && (0x20..0x80).contains(&c) => {
                    flush(&mut run, g0, &mut out, &mut errors);
                    let enc = g2.expect("checked");
                    let high = [c | 0x80];
                    let (text, bad) = enc.decode_without_bom_handling(&high);
                    out.push_str(&text);
                    errors |= bad;
                    i += 3;
                    continue;
                }
                _ => None,
            };
            match designation {
                Some((set, len)) => {
                    flush(&mut run, g0, &mut out, &mut errors);
                    g0 = set;
                    i += len;
                }
                None => {
                    flush(&mut run, g0, &mut out, &mut errors);
                    out.push('\u{fffd}');
                    errors = true;
                    i += 1;
                }
            }
            continue;
        }
        if b >= 0x80 {
            flush(&mut run, g0, &mut out, &mut errors);
            out.push('\u{fffd}');
            errors = true;
            i += 1;
            continue;
        }
        match b {
            0x0e => {
                shifted_out = true;
                i += 1;
                continue;
            }
            0x0f => {
                shifted_out = false;
                i += 1;
                continue;
            }
            b'\n' | b'\r' => {
                flush(&mut run, g0, &mut out, &mut errors);
                g0 = G0::Ascii;
                shifted_out = false;
                out.push(b as char);
                i += 1;
                continue;
            }
            _ => {}
        }
        if shifted_out && (0x21..=0x5f).contains(&b) {
            out.push(char::from_u32(0xff61 + u32::from(b - 0x21)).expect("half-width kana"));
            i += 1;
            continue;
        }
        match g0 {
            G0::Ascii => out.push(b as char),
            G0::Roman => out.push(match b {
                0x5c => '\u{a5}',
                0x7e => '\u{203e}',
                _ => b as char,
            }),
            G0::Katakana => {
                if (0x21..=0x5f).contains(&b) {
                    out.push(
                        char::from_u32(0xff61 + u32::from(b - 0x21)).expect("half-width kana"),
                    );
                } else {
                    out.push(b as char);
                }
            }
            G0::Jis0208 | G0::Jis0212 | G0::Gb2312 | G0::Ksc5601 | G0::Unknown => {
                let pair = bytes.get(i + 1).filter(|c| (0x21..=0x7e).contains(*c));
                let Some(&b2) = pair.filter(|_| (0x21..=0x7e).contains(&b)) else {
                    // A lone byte (a space, often) inside a double-byte run.
                    flush(&mut run, g0, &mut out, &mut errors);
                    if b == b' ' || b == b'\t' {
                        out.push(b as char);
                    } else {
                        out.push('\u{fffd}');
                        errors = true;
                    }
                    i += 1;
                    continue;
                };
                match g0 {
                    G0::Jis0212 => run.extend_from_slice(&[0x8f, b | 0x80, b2 | 0x80]),
                    G0::Unknown => {
                        flush(&mut run, g0, &mut out, &mut errors);
                        out.push('\u{fffd}');
                        errors = true;
                    }
                    _ => run.extend_from_slice(&[b | 0x80, b2 | 0x80]),
                }
                i += 2;
                continue;
            }
        }
        i += 1;
    }
    flush(&mut run, g0, &mut out, &mut errors);
    (out, errors)
}

/// The text of a part: `bytes` decoded from its transfer encoding
/// (`base64`, `quoted-printable`, anything else as it is) — leniently, as
/// mail clients do: characters outside base64's alphabet are skipped, and a
/// `=` that starts no escape stays as it is.
pub fn transfer_decode<'a>(bytes: &'a [u8], encoding: &str) -> Cow<'a, [u8]> {
    let e = encoding.trim().to_ascii_lowercase();
    match e.as_str() {
        "base64" => Cow::Owned(base64_lenient(bytes)),
        "quoted-printable" => Cow::Owned(quoted_printable(bytes, false)),
        _ => Cow::Borrowed(bytes),
    }
}

/// base64, skipping what is not in its alphabet and stopping at the padding.
pub fn base64_lenient(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                // Padding ends a run; a new run may follow (concatenated
                // base64, as some encoders write it).
                acc = 0;
                bits = 0;
                continue;
            }
            _ => continue,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable (RFC 2045), or the Q encoding of encoded words
/// (RFC 2047, `_` for a space) when `q`.
pub fn quoted_printable(bytes: &[u8], q: bool) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                let h = bytes.get(i + 1).copied().and_then(hex);
                let l = bytes.get(i + 2).copied().and_then(hex);
                if let (Some(h), Some(l)) = (h, l) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                // A soft line break: `=`, maybe white space, a line ending.
                let mut j = i + 1;
                while matches!(bytes.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                match (bytes.get(j), bytes.get(j + 1)) {
                    (Some(b'\r'), Some(b'\n')) => i = j + 2,
                    (Some(b'\r' | b'\n'), _) => i = j + 1,
                    (None, _) => i = j,
                    _ => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'_' if q => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], declared: Option<&str>) -> (String, Option<String>) {
        let d = decode(bytes, declared);
        (d.text, d.note)
    }

    /// テスト in Shift_JIS, EUC-JP and ISO-2022-JP.
    const SJIS: &[u8] = b"\x83\x65\x83\x58\x83\x67";
    const EUC: &[u8] = b"\xa5\xc6\xa5\xb9\xa5\xc8";
    const JIS: &[u8] = b"\x1b$B%F%9%H\x1b(B";

    #[test]
    fn utf7_as_rfc_2152_and_1642_write_it() {
        // エンコードテスト, as an encoded word of a real bounce carries it.
        assert_eq!(
            read(b"+MKgw8zCzMPwwyTDGMLkwyA-", Some("UNICODE-1-1-UTF-7")),
            ("エンコードテスト".into(), None)
        );
        assert_eq!(
            read(b"Hi Mom -+Jjo--!", Some("utf-7")).0,
            "Hi Mom -\u{263a}-!"
        );
        assert_eq!(read(b"A+ImIDkQ.", Some("utf-7")).0, "A\u{2262}\u{391}.");
        assert_eq!(read(b"1 +- 1", Some("csUnicode11UTF7")).0, "1 + 1");
        // A surrogate pair (U+1F600).
        assert_eq!(read(b"+2D3eAA-", Some("utf-7")).0, "\u{1f600}");
        // IMAP's modified UTF-7 is no mail charset: read as the ASCII it is.
        assert_eq!(
            read(b"&MKgw8w-", Some("x-imap4-modified-utf7")),
            ("&MKgw8w-".into(), None)
        );
        // Bad input never panics.
        let (t, errors) = utf7(b"+\xff\x80+AAA+/");
        assert!(errors, "{t}");
    }

    #[test]
    fn japanese_charsets_and_their_aliases() {
        for label in [
            "Shift_JIS",
            "shift-jis",
            "x-sjis",
            "SJIS",
            "cp932",
            "CP932",
            "ms932",
            "windows-31j",
            "csShiftJIS",
            "MS_Kanji",
            "x-ms-cp932",
        ] {
            assert_eq!(read(SJIS, Some(label)), ("テスト".into(), None), "{label}");
        }
        for label in [
            "EUC-JP",
            "x-euc-jp",
            "eucJP",
            "cseucpkdfmtjapanese",
            "euc-jp-ms",
        ] {
            assert_eq!(read(EUC, Some(label)), ("テスト".into(), None), "{label}");
        }
        for label in [
            "ISO-2022-JP",
            "csISO2022JP",
            "iso-2022-jp-1",
            "ISO-2022-JP-2",
            "iso-2022-jp-3",
            "iso-2022-jp-2004",
            "CP50220",
        ] {
            assert_eq!(read(JIS, Some(label)), ("テスト".into(), None), "{label}");
        }
        // Only symbols, in Shift_JIS without a declaration.
        assert_eq!(read(b"\x87\x40\x87\x41 \x87\x42", None).0, "①② ③");
        // CP932's NEC and IBM extensions: ①, ㈱, 髙.
        assert_eq!(read(b"\x87\x40\x87\x8a\xfb\xfc", Some("cp932")).0, "①㈱髙");
    }

    #[test]
    fn iso_2022_jp_extensions() {
        // JIS X 0201 katakana and Roman; JIS X 0212 (-1): 丂 is 0x3021.
        assert_eq!(
            iso2022jp(b"\x1b(I6\x1b(J\\~\x1b$(D0!\x1b(B"),
            ("ｶ¥‾丂".into(), false)
        );
        // -2: GB 2312 中文 and KS C 5601 한, Latin-1 by single shift (é).
        assert_eq!(
            iso2022jp(b"\x1b$AVPND\x1b$(CGQ\x1b(B caf\x1b.A\x1bNi"),
            ("中文한 café".into(), false)
        );
        // -3: JIS X 0213 plane 1 as far as JIS X 0208 goes.
        assert_eq!(iso2022jp(b"\x1b$(Q%F\x1b(B"), ("テ".into(), false));
        // A line ending returns to ASCII; 8-bit bytes are errors.
        assert_eq!(iso2022jp(b"\x1b$B%F\nabc"), ("テ\nabc".into(), false));
        assert!(iso2022jp(b"\x1b$B\x83\x65\x1b(B").1);
        assert!(iso2022jp(b"\x1b$(P!!\x1b(B").1);
        assert!(iso2022jp(b"\x1b$").1);
        assert!(iso2022jp(b"\x1b$B%").1);
    }

    #[test]
    fn a_wrong_declared_charset_is_read_as_what_it_is() {
        assert_eq!(
            read(SJIS, Some("iso-8859-1")),
            (
                "テスト".into(),
                Some("declared iso-8859-1, read as Shift_JIS".into())
            )
        );
        assert_eq!(
            read(EUC, Some("us-ascii")),
            (
                "テスト".into(),
                Some("declared us-ascii, read as EUC-JP".into())
            )
        );
        assert_eq!(
            read(JIS, Some("us-ascii")),
            (
                "テスト".into(),
                Some("declared us-ascii, read as ISO-2022-JP".into())
            )
        );
        assert_eq!(
            read("見積もり".as_bytes(), Some("iso-8859-1")),
            (
                "見積もり".into(),
                Some("declared iso-8859-1, read as UTF-8".into())
            )
        );
        // Shift_JIS declared as ISO-2022-JP, as some phones send it.
        assert_eq!(
            read(SJIS, Some("iso-2022-jp")),
            (
                "テスト".into(),
                Some("declared iso-2022-jp, read as Shift_JIS".into())
            )
        );
        assert_eq!(
            read(SJIS, None),
            (
                "テスト".into(),
                Some("no charset declared, read as Shift_JIS".into())
            )
        );
        assert_eq!(
            read(b"caf\xc3\xa9", Some("uft-8")),
            (
                "café".into(),
                Some("unknown charset uft-8, read as UTF-8".into())
            )
        );
        assert_eq!(read("café".as_bytes(), None), ("café".into(), None));
    }

    #[test]
    fn right_declarations_are_kept() {
        // Latin text that happens to be valid Shift_JIS stays Latin.
        for (bytes, label, want) in [
            (&b"P\xe9rez"[..], "iso-8859-1", "Pérez"),
            (b"\xc4pfel und M\xfcller", "iso-8859-1", "Äpfel und Müller"),
            (b"\xcf\xf0\xe8\xe2\xe5\xf2", "windows-1251", "Привет"),
            (b"\xf0\xd2\xc9\xd7\xc5\xd4", "koi8-r", "Привет"),
            (b"\xa4\xa4 caf\xe9", "iso-8859-15", "€€ café"),
        ] {
            assert_eq!(read(bytes, Some(label)), (want.into(), None), "{label}");
        }
        // ASCII is ASCII whatever the label says (or if it says nothing).
        assert_eq!(read(b"plain", Some("x-unknown")), ("plain".into(), None));
        assert_eq!(read(b"plain", None), ("plain".into(), None));
        // Undeclared 8-bit text that is nothing else: Windows-1252.
        assert_eq!(
            read(b"Fr\xf6sche", None),
            (
                "Frösche".into(),
                Some("no charset declared, read as windows-1252".into())
            )
        );
        // Broken as declared and nothing better: as declared, with U+FFFD.
        assert_eq!(read(b"a\xffb", Some("utf-8")), ("a\u{fffd}b".into(), None));
    }

    #[test]
    fn transfer_encodings_are_undone_leniently() {
        assert_eq!(
            &*transfer_decode(b"5pel5pys\r\n6Kqe\r\n", "base64"),
            "日本語".as_bytes()
        );
        assert_eq!(&*transfer_decode(b"YWJj!!ZGVm", " Base64 "), b"abcdef");
        assert_eq!(&*transfer_decode(b"YQ==YmM=", "base64"), b"abc");
        assert_eq!(
            &*transfer_decode(
                b"caf=C3=A9 =\r\nau lait=3d 100%=\nx = y=",
                "quoted-printable"
            ),
            "café au lait= 100%x = y".as_bytes()
        );
        assert_eq!(quoted_printable(b"a_b=5F", true), b"a b_");
        assert_eq!(&*transfer_decode(b"as is", "8bit"), b"as is");
    }
}
