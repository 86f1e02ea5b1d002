//! The query language of `mailkeep search`:
//!
//! ```text
//! word  "a phrase"  from:tanaka  to:  cc:  subject:見積  body:  filename:
//! folder:'Sent*'  account:work  before:2021-01-01  after:  since:
//! has:attachment
//! ```
//!
//! Terms are ANDed; each is a substring, matched in the folded form the
//! index keeps (see [`super::fold`]: NFKC, case folding). A value may
//! be quoted (`subject:"monthly report"`). Dates are YYYY-MM-DD (or
//! YYYY/MM/DD), midnight local time: `before:D` is before D, `after:D` and
//! `since:D` are on or after D.

use chrono::{Local, NaiveDate, TimeZone};

use super::fold::index_form;
use crate::index::{SearchColumn, SearchTerm};

/// A parsed query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<SearchTerm>,
    /// Folder patterns (`*`, `?`), any of which may match.
    pub folders: Vec<String>,
    pub accounts: Vec<String>,
    pub since: Option<i64>,
    pub before: Option<i64>,
    pub has_attachment: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
    pub hint: String,
}

const FIELDS: &str =
    "from: to: cc: subject: body: filename: folder: account: before: after: since: has:attachment";

fn err(message: String, hint: &str) -> QueryError {
    QueryError {
        message,
        hint: hint.to_string(),
    }
}

pub fn parse_query(q: &str) -> Result<Query, QueryError> {
    let mut out = Query::default();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        if chars[i] == '"' {
            let (text, next) = quoted(&chars, i)?;
            i = next;
            push_text(&mut out, None, text);
            continue;
        }
        // A word, or `field:value` where the value may be quoted.
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ':' {
            i += 1;
        }
        let head: String = chars[start..i].iter().collect();
        let is_field = i < chars.len()
            && chars[i] == ':'
            && !head.is_empty()
            && head.chars().all(|c| c.is_ascii_alphabetic());
        if !is_field {
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            push_text(&mut out, None, chars[start..i].iter().collect());
            continue;
        }
        i += 1; // the colon
        let value = if i < chars.len() && chars[i] == '"' {
            let (v, next) = quoted(&chars, i)?;
            i = next;
            v
        } else {
            let vs = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            chars[vs..i].iter().collect()
        };
        let field = head.to_ascii_lowercase();
        if value.is_empty() {
            return Err(err(
                format!("`{head}:` needs a value"),
                &format!("write it without a space, as in `{head}:word`, or quote it: `{head}:\"two words\"`"),
            ));
        }
        match field.as_str() {
            "from" => push_text(&mut out, Some(SearchColumn::From), value),
            "to" => push_text(&mut out, Some(SearchColumn::To), value),
            "cc" => push_text(&mut out, Some(SearchColumn::Cc), value),
            "subject" => push_text(&mut out, Some(SearchColumn::Subject), value),
            "body" => push_text(&mut out, Some(SearchColumn::Body), value),
            "filename" => push_text(&mut out, Some(SearchColumn::Attachments), value),
            "folder" | "in" => out.folders.push(value),
            "account" => out.accounts.push(value),
            "before" => {
                let d = date(&head, &value)?;
                out.before = Some(out.before.map_or(d, |b| b.min(d)));
            }
            "after" | "since" => {
                let d = date(&head, &value)?;
                out.since = Some(out.since.map_or(d, |s| s.max(d)));
            }
            "has" => {
                if value.eq_ignore_ascii_case("attachment") {
                    out.has_attachment = true;
                } else {
                    return Err(err(
                        format!("unknown `has:{value}`"),
                        "the only one is `has:attachment`",
                    ));
                }
            }
            _ => {
                return Err(err(
                    format!("unknown search field `{head}:`"),
                    &format!(
                        "the fields are {FIELDS}; to search for the text itself, quote it: `\"{head}:{value}\"`"
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// A text term, folded as the index is (white space, NFKC, case folding).
fn push_text(out: &mut Query, column: Option<SearchColumn>, text: String) {
    let text = index_form(&text);
    if !text.is_empty() {
        out.terms.push(SearchTerm { column, text });
    }
}

/// The text between the quote at `chars[at]` and the next one; returns it
/// and the index after the closing quote.
fn quoted(chars: &[char], at: usize) -> Result<(String, usize), QueryError> {
    let mut j = at + 1;
    while j < chars.len() && chars[j] != '"' {
        j += 1;
    }
    if j >= chars.len() {
        return Err(err(
            "the query has a `\"` that is not closed".into(),
            "close the phrase with a second `\"`",
        ));
    }
    Ok((chars[at + 1..j].iter().collect(), j + 1))
}

/// Local midnight at the start of the day `value`, unix seconds.
fn date(field: &str, value: &str) -> Result<i64, QueryError> {
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(value, "%Y/%m/%d"))
        .map_err(|_| {
            err(
                format!("`{field}:{value}` is not a date"),
                "write dates as YYYY-MM-DD, e.g. `before:2021-01-01`",
            )
        })?;
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    Local
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            // A day that starts inside a DST gap: take the first hour after it.
            Local
                .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.timestamp())
        .ok_or_else(|| {
            err(
                format!("`{field}:{value}` is not a date here"),
                "write dates as YYYY-MM-DD",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(column: Option<SearchColumn>, text: &str) -> SearchTerm {
        SearchTerm {
            column,
            text: text.into(),
        }
    }

    #[test]
    fn fields_words_and_phrases() {
        let q = parse_query(
            r#"from:tanaka subject:見積 before:2021-01-01 "two words" 請求書 folder:Sent* subject:"a b" has:attachment"#,
        )
        .unwrap();
        assert_eq!(
            q.terms,
            vec![
                t(Some(SearchColumn::From), "tanaka"),
                t(Some(SearchColumn::Subject), "見積"),
                t(None, "two words"),
                t(None, "請求書"),
                t(Some(SearchColumn::Subject), "a b"),
            ]
        );
        assert_eq!(q.folders, ["Sent*"]);
        assert!(q.has_attachment);
        let jan1 = Local
            .with_ymd_and_hms(2021, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        assert_eq!(q.before, Some(jan1));
        assert_eq!(parse_query("since:2021/01/01").unwrap().since, Some(jan1));
    }

    #[test]
    fn words_with_colons_that_are_not_fields() {
        let q = parse_query("12:30 http2:x \"re:meeting\"").unwrap();
        assert_eq!(q.terms[0].text, "12:30");
        assert_eq!(q.terms[1].text, "http2:x");
        assert_eq!(q.terms[2].text, "re:meeting");
    }

    #[test]
    fn terms_are_folded_as_the_index_is() {
        let q = parse_query("ｶﾀｶﾅ subject:ＡＢＣ INVOICE \"Straße  Nr\" \u{200b}").unwrap();
        assert_eq!(
            q.terms,
            vec![
                t(None, "カタカナ"),
                t(Some(SearchColumn::Subject), "abc"),
                t(None, "invoice"),
                t(None, "strasse nr"),
            ],
            "a term that folds to nothing is dropped"
        );
        // Half-width kana with a sound mark is one character once folded:
        // short enough for the LIKE path.
        assert_eq!(parse_query("ｶﾞｲ").unwrap().terms[0].text.chars().count(), 2);
    }

    #[test]
    fn mistakes_are_explained() {
        let e = parse_query("form:tanaka").unwrap_err();
        assert!(e.message.contains("`form:`"), "{e:?}");
        assert!(e.hint.contains("\"form:tanaka\""), "{e:?}");
        assert!(parse_query("before:yesterday")
            .unwrap_err()
            .hint
            .contains("YYYY-MM-DD"));
        assert!(parse_query("\"open").is_err());
        assert!(parse_query("has:pdf").is_err());
        assert!(parse_query("from:").is_err());
        assert_eq!(parse_query("   ").unwrap(), Query::default());
    }
}
