//! Lines and header fields of a message as a mail client reads them: a line
//! ends at CRLF, at a bare LF or at a bare CR, and a message may mix them
//! (old Mac mail and some carrier gateways end lines with CR alone).
//!
//! This is for reading only: the stored bytes are never changed.
//! [`normalized`] gives a copy with CRLF endings for a parser that knows
//! only CRLF and LF; [`lines`] and [`fields`] read header lines in place.

use std::borrow::Cow;

/// The lines of `bytes`, each without its line ending, and the offset where
/// the next line starts. A last line without an ending is a line too.
pub fn lines(bytes: &[u8]) -> Lines<'_> {
    Lines { bytes, pos: 0 }
}

pub struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Lines<'a> {
    /// The line, and the offset just after its ending.
    type Item = (&'a [u8], usize);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let Some(i) = memchr::memchr2(b'\n', b'\r', rest) else {
            self.pos = self.bytes.len();
            return Some((rest, self.pos));
        };
        let ending = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        self.pos += i + ending;
        Some((&rest[..i], self.pos))
    }
}

/// Whether `bytes` holds a CR that is not followed by LF: a line ending that
/// not every parser takes for one.
pub fn has_bare_cr(bytes: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\r', &bytes[from..]) {
        let at = from + i;
        if bytes.get(at + 1) != Some(&b'\n') {
            return true;
        }
        from = at + 1;
    }
    false
}

/// `bytes` with every line ending made CRLF, when it has a bare CR (borrowed
/// otherwise: CRLF, LF and their mixture are read right as they are).
pub fn normalized(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !has_bare_cr(bytes) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    let mut last_end = 0;
    for (line, end) in lines(bytes) {
        out.extend_from_slice(line);
        // The last line keeps having no ending if it had none.
        if end > last_end + line.len() {
            out.extend_from_slice(b"\r\n");
        }
        last_end = end;
    }
    Cow::Owned(out)
}

/// One header field: its name as written and its value unfolded (each
/// continuation line joined with one space, white space at both ends of the
/// value trimmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: Vec<u8>,
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.trim_ascii().eq_ignore_ascii_case(name.as_bytes())
    }
}

/// The header fields of a message (or of a header block), in order, up to
/// the first empty line. A line that is neither a field nor a continuation
/// (an mbox `From ` line, say) is skipped.
pub fn fields(bytes: &[u8]) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    // Whether the last line was a field (so that a continuation belongs to it).
    let mut in_field = false;
    for (line, _) in lines(bytes) {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let (true, Some(f)) = (in_field, out.last_mut()) {
                let more = line.trim_ascii();
                if !more.is_empty() {
                    if !f.value.is_empty() {
                        f.value.push(b' ');
                    }
                    f.value.extend_from_slice(more);
                }
            }
            continue;
        }
        in_field = false;
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            let n = name.trim_ascii_end();
            if !n.is_empty() && n.iter().all(|&b| (33..=126).contains(&b)) {
                out.push(Field {
                    name,
                    value: line[colon + 1..].trim_ascii().to_vec(),
                });
                in_field = true;
            }
        }
    }
    out
}

/// The unfolded value of the first field `name` (any case), if any.
pub fn first_value(bytes: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(bytes)
        .into_iter()
        .find(|f| f.is(name))
        .map(|f| f.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(b: &[u8]) -> Vec<&[u8]> {
        lines(b).map(|(l, _)| l).collect()
    }

    #[test]
    fn every_line_ending_ends_a_line() {
        assert_eq!(split(b"a\r\nb\nc\rd"), [&b"a"[..], b"b", b"c", b"d"]);
        assert_eq!(split(b"a\r\r\nb\n\n"), [&b"a"[..], b"", b"b", b""]);
        assert_eq!(split(b""), Vec::<&[u8]>::new());
        assert_eq!(
            lines(b"x\ry\r\n").map(|(_, e)| e).collect::<Vec<_>>(),
            [2, 5]
        );
    }

    #[test]
    fn only_a_bare_cr_needs_a_copy() {
        assert!(matches!(normalized(b"a\r\nb\nc\n"), Cow::Borrowed(_)));
        assert_eq!(&normalized(b"a\rb\r\rc")[..], b"a\r\nb\r\n\r\nc");
        assert_eq!(&normalized(b"a\rb\r\nc\n")[..], b"a\r\nb\r\nc\r\n");
        assert!(has_bare_cr(b"a\r\nb\r"));
        assert!(!has_bare_cr(b"a\r\nb\r\n"));
    }

    #[test]
    fn fields_are_unfolded_with_any_line_ending() {
        let cr = b"From nobody Mon Jan  1 00:00:00 2001\rSubject: one\r two\rMessage-ID:\r <a@b>\r\rMessage-ID: <body@x>\r";
        let f = fields(cr);
        assert_eq!(f.len(), 2);
        assert!(f[0].is("subject"));
        assert_eq!(f[0].value, b"one two");
        assert_eq!(first_value(cr, "message-id").unwrap(), b"<a@b>");
        let mixed = b"Subject: a\r\n\tb\nX-Y: z\r\r\nbody: no\n";
        assert_eq!(first_value(mixed, "Subject").unwrap(), b"a b");
        assert_eq!(first_value(mixed, "x-y").unwrap(), b"z");
        assert_eq!(first_value(mixed, "body"), None);
        assert_eq!(first_value(b"", "subject"), None);
    }
}
