//! Text as the search index keeps it and as a query is matched against it:
//! [`index_form`] is the one function both sides use, so that what is
//! indexed and what is looked for are folded the same way.
//!
//! - White space: line breaks and runs of white space become one space,
//!   except that a line break between two CJK characters is dropped
//!   (Japanese text is wrapped anywhere, and `見積\n書` is `見積書`).
//! - NFKC (Unicode compatibility normalization): full-width `ＡＢＣ` is
//!   `ABC`, half-width `ｶﾀｶﾅ` is `カタカナ`, `ｶﾞ` is `ガ`, `①` is `1`, `㈱` is
//!   `(株)`, ligatures are their letters.
//! - Then Unicode case folding (full folding, as for caseless matching):
//!   `ABC` is `abc`, `Straße` is `strasse`, `ΟΔΟΣ` is `οδοσ`; invisible
//!   characters (soft hyphens, zero-width spaces, variation selectors) are
//!   dropped.
//!
//! `show` and the search results print the text as it was written.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

/// White space, NFKC, then case folding: the form of text in the search
/// index and of every query term.
pub fn index_form(s: &str) -> String {
    fold(&normalize(s))
}

/// NFKC, then case folding, then NFKC again (folding can leave text that is
/// not in NFKC); characters that are invisible by definition (Unicode's
/// default ignorables: soft hyphen, zero-width space and joiners, variation
/// selectors, …) are dropped, as NFKC_Casefold does.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        // NFKC leaves ASCII as it is, and folding it is lower case.
        return s.to_ascii_lowercase();
    }
    // Word by word: nothing composes with, reorders across or folds to
    // depend on a space (a starter with no canonical composition), so the
    // ASCII words of mostly ASCII text take the quick way.
    let mut out = String::with_capacity(s.len());
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.is_ascii() {
            out.extend(word.bytes().map(|b| b.to_ascii_lowercase() as char));
        } else {
            out.push_str(&fold_whole(word));
        }
    }
    out
}

/// [`fold`] of all of `s` at once.
fn fold_whole(s: &str) -> String {
    s.chars()
        .filter(|c| !is_default_ignorable(*c))
        .nfkc()
        .default_case_fold()
        .nfkc()
        .collect()
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt).
fn is_default_ignorable(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5
        | 0x180B..=0x180F | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
        | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// Line breaks and runs of white space become one space, except that a line
/// break between two CJK characters is dropped; control characters become
/// spaces; nothing at either end.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    let mut pending_newline = false;
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < s.len() {
        let (c, len) = super::tokens::char_at(s, i);
        i += len;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_joins_wrapped_japanese_only() {
        assert_eq!(
            normalize("見積\r\n書を  送ります\nnext\tline"),
            "見積書を 送ります next line"
        );
        assert_eq!(normalize("  a\u{0}b "), "a b");
        // Old Mac mail wraps with CR alone.
        assert_eq!(normalize("見積\r書 a\rb"), "見積書 a b");
    }

    #[test]
    fn width_and_case_variants_fold_to_one_form() {
        for (a, b) in [
            ("ｶﾀｶﾅ", "カタカナ"),
            ("ｶﾞｲﾄﾞ", "ガイド"),
            ("ＡＢＣ", "abc"),
            ("ABC", "abc"),
            ("Ｉｎｖｏｉｃｅ　２０２１", "invoice 2021"),
            ("Straße", "STRASSE"),
            ("ΟΔΟΣ", "οδος"),
            ("ﬁle", "FILE"),
            ("①", "1"),
            ("㈱田中", "(株)田中"),
            ("Café", "cafe\u{301}"),
            ("in\u{ad}voice", "invoice"),
            ("a\u{200b}b", "ab"),
            // A kanji with a variation selector (an IVS) is that kanji.
            ("葛\u{e0100}", "葛"),
        ] {
            assert_eq!(index_form(a), index_form(b), "{a} / {b}");
        }
        assert_eq!(index_form("ｶﾀｶﾅ ＡＢＣ"), "カタカナ abc");
        // Different words stay different.
        assert_ne!(index_form("カタカナ"), index_form("かたかな"));
        assert_ne!(index_form("cafe"), index_form("café"));
    }

    #[test]
    fn normalize_reads_ascii_as_every_other_character() {
        // The quick ASCII path against the rule written once, char by char.
        fn slow(s: &str) -> String {
            let mut out = String::new();
            let (mut space, mut newline, mut prev) = (false, false, None::<char>);
            for c in s.chars() {
                if c.is_whitespace() || c.is_control() {
                    space = true;
                    newline |= c == '\n' || c == '\r';
                    continue;
                }
                if space && prev.is_some() && !(newline && prev.is_some_and(is_cjk) && is_cjk(c)) {
                    out.push(' ');
                }
                (space, newline, prev) = (false, false, Some(c));
                out.push(c);
            }
            out
        }
        let alphabet = [
            'a', ' ', '\n', '\r', '\t', '\u{0}', '\u{7f}', '\u{1f}', '見', '書', '\u{3000}',
            '\u{85}', '\u{a0}', 'é', '~',
        ];
        for s in crate::search::random_strings(5, &alphabet, 11) {
            assert_eq!(normalize(&s), slow(&s), "{s:?}");
        }
    }

    #[test]
    fn folding_word_by_word_is_folding_the_whole() {
        let alphabet = [
            'a', 'Z', ' ', 'é', '\u{301}', '\u{308}', '\u{327}', 'ß', 'İ', 'Σ', 'ς', 'ﬁ', '①', 'ｶ',
            '\u{ff9e}', '\u{ad}', '\u{200b}', '\u{3000}', '\u{a0}', '\u{b4}', '㈱', 'ﾞ',
        ];
        for s in crate::search::random_strings(11, &alphabet, 9) {
            assert_eq!(fold(&s), fold_whole(&s), "{s:?}");
        }
    }

    #[test]
    fn full_width_text_wrapped_between_lines_is_joined() {
        assert_eq!(index_form("ＡＢ\nＣ"), "abc");
        assert_eq!(index_form("AB\nC"), "ab c");
    }
}
