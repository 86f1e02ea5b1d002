//! Folder display names ↔ path components.
//!
//! A display name is split on `/` (the hierarchy separator of display names)
//! and each part becomes one path component:
//!
//! - `%`, `\`, and ASCII control characters (NUL, CR, LF, DEL, …) become `%XX`
//!   (upper-case hex of the byte);
//! - a `.` at the start becomes `%2E`, so no component is `.`, `..` or hidden;
//!   in Maildir++ directory names every `.` does, since `.` separates levels
//!   there (the form Dovecot 2.4 reads with `mailbox_list_storage_escape_char = %`);
//! - an empty part (as in `a//b`) becomes `%`;
//! - a part longer than 200 bytes is cut and gets `~` and 16 hex digits of
//!   its BLAKE3 hash, so that long names stay distinct (this one is not reversible).
//!
//! Everything else, Japanese included, is kept as UTF-8. `/` cannot occur in
//! a part, so no name reaches outside the root. [`decode_component`] undoes
//! the escapes; a `%XX` that we would not have written (say `%41`) is left as
//! it is, so names from other tools mostly read back as they look.

/// How a component will be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A plain directory or file name (mbox, eml, nested maildirs).
    Plain,
    /// One level of a Maildir++ `.A.B` directory name: every `.` escaped.
    MaildirPlusPlus,
}

const MAX_COMPONENT: usize = 200;

/// The parts of a display name, split on `/`.
pub fn split_folder(display: &str) -> Vec<&str> {
    display.split('/').collect()
}

fn needs_escape(c: char, at_start: bool, style: Style) -> bool {
    c.is_ascii_control()
        || c == '%'
        || c == '\\'
        || (c == '.' && (at_start || style == Style::MaildirPlusPlus))
}

/// One part of a display name as a path component (see the module doc).
pub fn encode_component(part: &str, style: Style) -> String {
    if part.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(part.len());
    for (i, c) in part.chars().enumerate() {
        if needs_escape(c, i == 0, style) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.len() > MAX_COMPONENT {
        let mut cut = MAX_COMPONENT - 20;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        // Do not split a `%XX`.
        if let Some(pct) = out[..cut].rfind('%') {
            if pct + 3 > cut {
                cut = pct;
            }
        }
        let hash = blake3::hash(part.as_bytes()).to_hex();
        out = format!("{}~{}", &out[..cut], &hash.as_str()[..16]);
    }
    out
}

/// Undoes [`encode_component`] (except the cutting of long names).
pub fn decode_component(s: &str) -> String {
    if s == "%" {
        return String::new();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                let c = b as char;
                if b.is_ascii() && (c.is_ascii_control() || c == '%' || c == '\\' || c == '.') {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The display name of a `/`-joined list of encoded components.
pub fn decode_folder<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts
        .into_iter()
        .map(decode_component)
        .collect::<Vec<_>>()
        .join("/")
}

/// A `unique` part of a file name: only `[A-Za-z0-9_-]`, others become `_`.
pub(crate) fn safe_unique(unique: &str) -> std::io::Result<String> {
    if unique.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty unique part for a message file name",
        ));
    }
    Ok(unique
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str, style: Style) -> String {
        let e = encode_component(s, style);
        assert_eq!(decode_component(&e), s, "{s:?} → {e:?}");
        e
    }

    #[test]
    fn plain_components() {
        assert_eq!(round_trip("INBOX", Style::Plain), "INBOX");
        assert_eq!(round_trip("送信済み", Style::Plain), "送信済み");
        assert_eq!(round_trip("[Gmail]", Style::Plain), "[Gmail]");
        assert_eq!(round_trip("..", Style::Plain), "%2E.");
        assert_eq!(round_trip(".", Style::Plain), "%2E");
        assert_eq!(round_trip(".hidden", Style::Plain), "%2Ehidden");
        assert_eq!(round_trip("v1.2", Style::Plain), "v1.2");
        assert_eq!(round_trip("", Style::Plain), "%");
        assert_eq!(round_trip("a\0b\r\n\x7f", Style::Plain), "a%00b%0D%0A%7F");
        assert_eq!(round_trip("100%", Style::Plain), "100%25");
        assert_eq!(round_trip("a\\b", Style::Plain), "a%5Cb");
        assert_eq!(round_trip("%", Style::Plain), "%25");
    }

    #[test]
    fn maildir_components_escape_every_dot() {
        assert_eq!(round_trip("v1.2", Style::MaildirPlusPlus), "v1%2E2");
        assert_eq!(round_trip("..", Style::MaildirPlusPlus), "%2E%2E");
    }

    #[test]
    fn foreign_percent_sequences_stay() {
        assert_eq!(decode_component("100%41"), "100%41");
        assert_eq!(decode_component("50%"), "50%");
        assert_eq!(decode_component("%2"), "%2");
        assert_eq!(decode_component("%zz"), "%zz");
    }

    #[test]
    fn long_names_are_cut_and_stay_distinct() {
        let a = "長".repeat(100);
        let b = format!("{}x", "長".repeat(99));
        let ea = encode_component(&a, Style::Plain);
        let eb = encode_component(&b, Style::Plain);
        assert!(ea.len() <= MAX_COMPONENT, "{}", ea.len());
        assert_ne!(ea, eb);
        let pct = "%".repeat(100);
        let e = encode_component(&pct, Style::Plain);
        assert!(e.len() <= MAX_COMPONENT);
        assert!(!e.contains("%2~") && !e.contains("%~"), "{e}");
    }

    #[test]
    fn unique_is_made_safe() {
        assert_eq!(safe_unique("ab12.34/x:y").unwrap(), "ab12_34_x_y");
        assert!(safe_unique("").is_err());
    }
}
