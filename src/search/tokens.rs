//! Words and CJK pairs: how folded text (see [`super::fold`]) is cut into
//! the tokens of the search index, the same way for what is indexed and for
//! what is looked for.
//!
//! - A run of letters and digits of a script written with spaces is a word
//!   (`budget`, `2021`, `straße` folded to `strasse`); a query word matches
//!   every word that starts with it.
//! - A run of characters of a script written without spaces (Han, kana,
//!   Hangul) is indexed as its overlapping pairs: `見積書` is `見積 積書`, so
//!   that any piece of 2 or more of its characters is found by the pairs it
//!   is made of. A run of one character is indexed as itself.
//! - Anything else (spaces, punctuation, symbols) only separates tokens.
//!
//! The index holds no positions for the body (`detail=none`): a term that is
//! more than one token (a phrase, a CJK piece of 3 or more characters, an
//! address) finds candidates by all its tokens, and each candidate is then
//! checked against the message's own text (see `ops::search`).

/// Characters of scripts written without spaces between words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x309F        // hiragana
        | 0x30A0..=0x30FF      // katakana (with the prolonged sound mark)
        | 0x31F0..=0x31FF      // katakana phonetic extensions
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xAC00..=0xD7AF      // Hangul syllables
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFF66..=0xFF9F      // half-width katakana (NFKC makes them full)
        | 0x20000..=0x3FFFF) // extensions B and later
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// One token of a query term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// A word (matched as a prefix of the index's words).
    Word(String),
    /// A pair of CJK characters, or a lone one: matched as it is.
    Cjk(String),
}

impl Token {
    pub fn text(&self) -> &str {
        match self {
            Token::Word(s) | Token::Cjk(s) => s,
        }
    }
}

/// The char that starts at byte `i` of `s`, and its length: ASCII, most
/// of most mail, without decoding.
pub(super) fn char_at(s: &str, i: usize) -> (char, usize) {
    let b = s.as_bytes()[i];
    if b < 0x80 {
        return (b as char, 1);
    }
    let c = s[i..].chars().next().expect("a char starts here");
    (c, c.len_utf8())
}

/// Calls `f` with each token of folded text, in order, as a slice of it
/// (`true` for a CJK pair or lone CJK character, `false` for a word): a
/// pair is two neighbouring characters of `folded`, so nothing is copied.
fn each_token<'a>(folded: &'a str, mut f: impl FnMut(bool, &'a str)) {
    // Where the word being read started; where the CJK character before
    // this one starts, and whether its run has only it so far (a lone
    // character is a token of its own).
    let mut word: Option<usize> = None;
    let mut run: Option<usize> = None;
    let mut lone = false;
    let mut i = 0;
    while i < folded.len() {
        let (c, len) = char_at(folded, i);
        if !c.is_ascii() && is_cjk(c) {
            if let Some(start) = word.take() {
                f(false, &folded[start..i]);
            }
            match run {
                Some(p) => {
                    f(true, &folded[p..i + len]);
                    lone = false;
                }
                None => lone = true,
            }
            run = Some(i);
        } else {
            if let (Some(p), true) = (run.take(), lone) {
                f(true, &folded[p..i]);
            }
            lone = false;
            if c.is_ascii_alphanumeric() || (!c.is_ascii() && is_word_char(c)) {
                word.get_or_insert(i);
            } else if let Some(start) = word.take() {
                f(false, &folded[start..i]);
            }
        }
        i += len;
    }
    if let Some(start) = word {
        f(false, &folded[start..]);
    }
    if let (Some(p), true) = (run, lone) {
        f(true, &folded[p..]);
    }
}

/// The tokens of folded text, in order.
pub fn tokens(folded: &str) -> Vec<Token> {
    let mut out = Vec::new();
    each_token(folded, |cjk, t| {
        out.push(if cjk {
            Token::Cjk(t.to_string())
        } else {
            Token::Word(t.to_string())
        })
    });
    out
}

/// Folded text as the full-text index takes it: its tokens separated by
/// spaces (SQLite's `unicode61` tokenizer then splits it exactly there),
/// written straight into one string (a string per token was a tenth of
/// indexing, in allocations).
pub fn index_text(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len() + folded.len() / 2);
    each_token(folded, |_, t| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokens(s).iter().map(|t| t.text().to_string()).collect()
    }

    #[test]
    fn words_and_pairs() {
        assert_eq!(
            texts("budget 2021, e-mail"),
            ["budget", "2021", "e", "mail"]
        );
        assert_eq!(
            texts("見積書を送付"),
            ["見積", "積書", "書を", "を送", "送付"]
        );
        assert_eq!(texts("re: 見積"), ["re", "見積"]);
        assert_eq!(texts("「会」です"), ["会", "です"]);
        assert_eq!(
            texts("メールエラー通知"),
            ["メー", "ール", "ルエ", "エラ", "ラー", "ー通", "通知"]
        );
        assert_eq!(texts("abc見積def"), ["abc", "見積", "def"]);
        assert_eq!(texts("  ...  "), Vec::<String>::new());
    }

    #[test]
    fn a_piece_of_a_cjk_run_is_made_of_its_pairs() {
        let indexed = tokens("御見積書をお送りします");
        for piece in ["見積", "見積書", "お送り", "します"] {
            for t in tokens(piece) {
                assert!(indexed.contains(&t), "{piece}: {t:?}");
            }
        }
    }

    #[test]
    fn index_text_is_the_tokens_joined() {
        let alphabet = [
            'a', 'Z', '9', ' ', '.', '見', '積', 'を', 'ー', 'é', '\u{301}', '-', 'ß', '한', '\n',
            '「', 'ｶ',
        ];
        for s in crate::search::random_strings(7, &alphabet, 11) {
            assert_eq!(index_text(&s), texts(&s).join(" "), "{s:?}");
        }
    }

    #[test]
    fn index_text_is_space_separated() {
        assert_eq!(index_text("見積書 budget"), "見積 積書 budget");
        assert_eq!(index_text("a.b"), "a b");
    }
}
