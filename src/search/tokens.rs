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

/// The tokens of folded text, in order.
pub fn tokens(folded: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(Token::Word(std::mem::take(word)));
        }
    };
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<Token>| {
        match run.len() {
            0 => {}
            1 => out.push(Token::Cjk(run[0].to_string())),
            _ => out.extend(run.windows(2).map(|w| Token::Cjk(w.iter().collect()))),
        }
        run.clear();
    };
    for c in folded.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            run.push(c);
        } else if is_word_char(c) {
            flush_run(&mut run, &mut out);
            word.push(c);
        } else {
            flush_word(&mut word, &mut out);
            flush_run(&mut run, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_run(&mut run, &mut out);
    out
}

/// Folded text as the full-text index takes it: its tokens separated by
/// spaces (SQLite's `unicode61` tokenizer then splits it exactly there).
/// The same as [`tokens`] joined, written straight into one string (a
/// string per token was a tenth of indexing, in allocations).
pub fn index_text(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len() + folded.len() / 2);
    fn sep(out: &mut String) {
        if !out.is_empty() {
            out.push(' ');
        }
    }
    // Where the word being read started; the CJK character before this one
    // in a run, and whether that run has only it so far (a lone character
    // is a token of its own).
    let mut word: Option<usize> = None;
    let mut prev_cjk: Option<char> = None;
    let mut lone = false;
    let end_word = |out: &mut String, word: &mut Option<usize>, at: usize| {
        if let Some(start) = word.take() {
            sep(out);
            out.push_str(&folded[start..at]);
        }
    };
    let end_run = |out: &mut String, prev_cjk: &mut Option<char>, lone: &mut bool| {
        if let (Some(c), true) = (prev_cjk.take(), *lone) {
            sep(out);
            out.push(c);
        }
        *lone = false;
    };
    let bytes = folded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // ASCII, most of most mail, without decoding a char.
        let (c, len) = if b < 0x80 {
            (b as char, 1)
        } else {
            let c = folded[i..].chars().next().expect("a char starts here");
            (c, c.len_utf8())
        };
        if b >= 0x80 && is_cjk(c) {
            end_word(&mut out, &mut word, i);
            match prev_cjk {
                Some(p) => {
                    sep(&mut out);
                    out.push(p);
                    out.push(c);
                    lone = false;
                }
                None => lone = true,
            }
            prev_cjk = Some(c);
        } else if if b < 0x80 {
            b.is_ascii_alphanumeric()
        } else {
            is_word_char(c)
        } {
            end_run(&mut out, &mut prev_cjk, &mut lone);
            word.get_or_insert(i);
        } else {
            end_run(&mut out, &mut prev_cjk, &mut lone);
            end_word(&mut out, &mut word, i);
        }
        i += len;
    }
    end_word(&mut out, &mut word, bytes.len());
    end_run(&mut out, &mut prev_cjk, &mut lone);
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
        let mut seed = 7u64;
        let alphabet = [
            'a', 'Z', '9', ' ', '.', '見', '積', 'を', 'ー', 'é', '\u{301}', '-', 'ß', '한', '\n',
            '「', 'ｶ',
        ];
        for _ in 0..5000 {
            let n = (seed % 12) as usize;
            let s: String = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            assert_eq!(index_text(&s), texts(&s).join(" "), "{s:?}");
        }
    }

    #[test]
    fn index_text_is_space_separated() {
        assert_eq!(index_text("見積書 budget"), "見積 積書 budget");
        assert_eq!(index_text("a.b"), "a b");
    }
}
