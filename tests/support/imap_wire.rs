//! Just enough of the IMAP wire format for the test client and the fault proxy:
//! literal announcements at the end of a line, and a small parser of the values in a
//! response whose literals have been read inline (`{n}\r\n` followed by n bytes).

/// The length announced by a literal at the end of `line` (with or without its CRLF):
/// `{n}`, `{n+}` (LITERAL+) or `~{n}` (literal8). `None` when the line ends otherwise.
pub fn literal_len(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A parsed IMAP value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An atom or number, including `\Flags` and section specs like `BODY[]<0>`.
    Atom(String),
    /// A quoted string or a literal, unescaped / exact bytes.
    Bytes(Vec<u8>),
    /// A parenthesised list.
    List(Vec<Value>),
    Nil,
}

impl Value {
    pub fn as_str(&self) -> String {
        match self {
            Value::Atom(s) => s.clone(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Nil => "NIL".to_string(),
            Value::List(_) => panic!("expected a string, got a list: {self:?}"),
        }
    }

    pub fn as_list(&self) -> &[Value] {
        match self {
            Value::List(v) => v,
            _ => panic!("expected a list, got {self:?}"),
        }
    }
}

/// Parses the values of one response (literals inline) until its final CRLF.
pub fn parse_values(buf: &[u8]) -> Vec<Value> {
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        skip_spaces(buf, &mut pos);
        if pos >= buf.len() || buf[pos] == b'\r' || buf[pos] == b'\n' {
            return out;
        }
        out.push(parse_value(buf, &mut pos));
    }
}

fn skip_spaces(buf: &[u8], pos: &mut usize) {
    while *pos < buf.len() && buf[*pos] == b' ' {
        *pos += 1;
    }
}

fn parse_value(buf: &[u8], pos: &mut usize) -> Value {
    match buf[*pos] {
        b'(' => {
            *pos += 1;
            let mut items = Vec::new();
            loop {
                skip_spaces(buf, pos);
                assert!(*pos < buf.len(), "unterminated list in response");
                if buf[*pos] == b')' {
                    *pos += 1;
                    return Value::List(items);
                }
                items.push(parse_value(buf, pos));
            }
        }
        b'"' => {
            *pos += 1;
            let mut s = Vec::new();
            while buf[*pos] != b'"' {
                if buf[*pos] == b'\\' {
                    *pos += 1;
                }
                s.push(buf[*pos]);
                *pos += 1;
            }
            *pos += 1;
            Value::Bytes(s)
        }
        b'{' | b'~' if is_literal_start(buf, *pos) => {
            if buf[*pos] == b'~' {
                *pos += 1;
            }
            let close = *pos + buf[*pos..].iter().position(|&b| b == b'}').unwrap();
            let n: usize = std::str::from_utf8(&buf[*pos + 1..close])
                .unwrap()
                .trim_end_matches('+')
                .parse()
                .unwrap();
            // `}` CRLF, then exactly n bytes.
            let start = close + 3;
            *pos = start + n;
            Value::Bytes(buf[start..start + n].to_vec())
        }
        _ => {
            let start = *pos;
            let mut depth = 0usize;
            while *pos < buf.len() {
                let b = buf[*pos];
                if b == b'[' {
                    depth += 1;
                } else if b == b']' {
                    depth = depth.saturating_sub(1);
                } else if depth == 0 && matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n') {
                    break;
                }
                *pos += 1;
            }
            let atom = String::from_utf8_lossy(&buf[start..*pos]).into_owned();
            if atom.eq_ignore_ascii_case("NIL") {
                Value::Nil
            } else {
                Value::Atom(atom)
            }
        }
    }
}

fn is_literal_start(buf: &[u8], pos: usize) -> bool {
    let p = if buf[pos] == b'~' { pos + 1 } else { pos };
    p < buf.len() && buf[p] == b'{'
}

/// Quotes `s` as an IMAP quoted string.
pub fn quote(s: &str) -> String {
    assert!(
        !s.contains(['\r', '\n']),
        "cannot quote a string with CR/LF: {s:?}"
    );
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}
