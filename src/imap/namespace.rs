//! NAMESPACE (RFC 2342). imap-proto cannot parse its response and a parse
//! failure ends async-imap's stream, so the response is read raw (see
//! `Wire::run_raw`) and parsed here.

/// The personal namespace: where the user's own mailboxes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// `""` on most servers, `"INBOX."` on Courier/Cyrus-style ones. Raw
    /// (modified UTF-7) as the server sent it.
    pub prefix: String,
    /// Hierarchy delimiter, when the server has one.
    pub delimiter: Option<char>,
}

#[derive(Debug, PartialEq)]
enum Val {
    Nil,
    Str(Vec<u8>),
    Atom(Vec<u8>),
    List(Vec<Val>),
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn skip_spaces(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<Val, String> {
        self.skip_spaces();
        match self.s.get(self.i) {
            None => Err("unexpected end".into()),
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.s.get(self.i) {
                        Some(b')') => {
                            self.i += 1;
                            return Ok(Val::List(items));
                        }
                        None => return Err("unclosed list".into()),
                        _ => items.push(self.value()?),
                    }
                }
            }
            Some(b'"') => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i) {
                        None => return Err("unclosed quoted string".into()),
                        Some(b'"') => {
                            self.i += 1;
                            return Ok(Val::Str(out));
                        }
                        Some(b'\\') => {
                            let c = *self.s.get(self.i + 1).ok_or("bad escape")?;
                            out.push(c);
                            self.i += 2;
                        }
                        Some(&c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            Some(b'{') | Some(b'~') => {
                let close = self.s[self.i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or("bad literal")?;
                let spec = &self.s[self.i..self.i + close];
                let digits: Vec<u8> = spec.iter().copied().filter(u8::is_ascii_digit).collect();
                let n: usize = std::str::from_utf8(&digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or("bad literal length")?;
                let start = self.i + close + 1 + 2; // "}\r\n"
                let data = self.s.get(start..start + n).ok_or("short literal")?;
                self.i = start + n;
                Ok(Val::Str(data.to_vec()))
            }
            Some(_) => {
                let start = self.i;
                while let Some(&c) = self.s.get(self.i) {
                    if c == b' ' || c == b'(' || c == b')' {
                        break;
                    }
                    self.i += 1;
                }
                let atom = &self.s[start..self.i];
                if atom.eq_ignore_ascii_case(b"NIL") {
                    Ok(Val::Nil)
                } else {
                    Ok(Val::Atom(atom.to_vec()))
                }
            }
        }
    }
}

/// Parses `* NAMESPACE <personal> <other> <shared>` and returns the first
/// personal namespace; `Ok(None)` when the line is not a NAMESPACE response
/// or the server has no personal namespace.
pub(crate) fn parse_namespace_line(line: &[u8]) -> Result<Option<Namespace>, String> {
    let Some(rest) = line.strip_prefix(b"* ") else {
        return Ok(None);
    };
    if rest.len() < 10 || !rest[..10].eq_ignore_ascii_case(b"NAMESPACE ") {
        return Ok(None);
    }
    let mut lx = Lexer {
        s: &rest[10..],
        i: 0,
    };
    let personal = lx.value()?;
    let Val::List(entries) = personal else {
        return Ok(None);
    };
    let Some(Val::List(first)) = entries.into_iter().next() else {
        return Err("empty personal namespace list".into());
    };
    let mut it = first.into_iter();
    let prefix = match it.next() {
        Some(Val::Str(p)) | Some(Val::Atom(p)) => String::from_utf8_lossy(&p).into_owned(),
        other => return Err(format!("bad namespace prefix {other:?}")),
    };
    let delimiter = match it.next() {
        Some(Val::Str(d)) | Some(Val::Atom(d)) => String::from_utf8_lossy(&d).chars().next(),
        Some(Val::Nil) | None => None,
        other => return Err(format!("bad namespace delimiter {other:?}")),
    };
    Ok(Some(Namespace { prefix, delimiter }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(prefix: &str, delimiter: Option<char>) -> Option<Namespace> {
        Some(Namespace {
            prefix: prefix.into(),
            delimiter,
        })
    }

    #[test]
    fn parses_common_servers() {
        assert_eq!(
            parse_namespace_line(br#"* NAMESPACE (("" "/")) NIL NIL"#).unwrap(),
            ns("", Some('/'))
        );
        assert_eq!(
            parse_namespace_line(br#"* NAMESPACE (("INBOX." ".")) (("user." ".")) (("" "."))"#)
                .unwrap(),
            ns("INBOX.", Some('.'))
        );
        assert_eq!(
            parse_namespace_line(br#"* NAMESPACE (("" NIL)) NIL NIL"#).unwrap(),
            ns("", None)
        );
        assert_eq!(
            parse_namespace_line(br#"* Namespace (("" "\\")) NIL NIL"#).unwrap(),
            ns("", Some('\\'))
        );
        // With an RFC 4466 extension and a literal prefix.
        assert_eq!(
            parse_namespace_line(
                b"* NAMESPACE (({6}\r\nINBOX/ \"/\" \"X-PARAM\" (\"A\" \"B\"))) NIL NIL"
            )
            .unwrap(),
            ns("INBOX/", Some('/'))
        );
    }

    #[test]
    fn no_personal_namespace_or_other_lines() {
        assert_eq!(
            parse_namespace_line(b"* NAMESPACE NIL NIL NIL").unwrap(),
            None
        );
        assert_eq!(parse_namespace_line(b"* OK still here").unwrap(), None);
        assert!(parse_namespace_line(b"* NAMESPACE ((\"\" \"/\"").is_err());
    }
}
