//! Google Takeout: `X-Gmail-Labels` → folders and flags.
//!
//! Takeout exports a whole Gmail account as one mbox ("All mail Including
//! Spam and Trash.mbox"), each message once, with its labels in an
//! `X-Gmail-Labels:` header (comma-separated; labels with a comma or a space
//! may be quoted; nested labels use `/`). Gmail's own IMAP view is the model:
//! a message is listed in the folder of each of its labels and in `All Mail`,
//! and its bytes are stored once. The mapping (also in docs/import.md):
//!
//! | label                    | becomes                                   |
//! |--------------------------|-------------------------------------------|
//! | `Inbox`                  | folder `INBOX`                            |
//! | `Sent`                   | folder `Sent` (`\Sent`)                   |
//! | `Drafts`, `Draft`        | folder `Drafts` (`\Drafts`), flag `\Draft`|
//! | `Spam`                   | folder `Spam` (`\Junk`)                   |
//! | `Trash`                  | folder `Trash` (`\Trash`)                 |
//! | `Important`              | folder `Important` (`\Important`)         |
//! | `Chat`, `Chats`          | folder `Chats`                            |
//! | `Starred`                | flag `\Flagged`, no folder                |
//! | `Opened`                 | flag `\Seen`, no folder                   |
//! | `Unread`                 | no `\Seen`, no folder                     |
//! | `Archived`               | no folder (the message is in `All Mail`)  |
//! | `Category …`             | nothing (Gmail's tabs are not folders)    |
//! | any other label          | a folder of that name (`a/b` nests)       |
//!
//! Every message is also in `All Mail` (`\All`), except those labelled
//! `Spam` or `Trash` (as in Gmail), so no message is left without a folder.
//! A message is `\Seen` unless it is labelled `Unread`.

use super::sink::Target;

/// The folder every message not in Spam or Trash is listed in.
pub const ALL_MAIL: &str = "All Mail";

/// Where a message goes and which flags its labels give it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub targets: Vec<Target>,
    pub flags: Vec<&'static str>,
}

/// The labels of a message, from its header block (`None` without an
/// `X-Gmail-Labels` header).
pub fn labels(message: &[u8]) -> Option<Vec<String>> {
    header_value(message, "x-gmail-labels").map(|v| split_labels(&v))
}

/// Whether a message's header block has an `X-Gmail-Labels` header.
pub fn has_labels(message: &[u8]) -> bool {
    header_value(message, "x-gmail-labels").is_some()
}

/// Folders and flags for a message with these labels.
pub fn placement(labels: &[String]) -> Placement {
    let mut p = Placement::default();
    let mut seen = true;
    let mut junk_or_trash = false;
    let push = |p: &mut Placement, name: &str, special: Option<&'static str>| {
        if !p.targets.iter().any(|t| t.folder == name) {
            p.targets.push(Target {
                folder: name.to_string(),
                special_use: special,
            });
        }
    };
    for label in labels {
        let lower = label.to_ascii_lowercase();
        match lower.as_str() {
            "inbox" => push(&mut p, "INBOX", None),
            "sent" => push(&mut p, "Sent", Some("\\Sent")),
            "drafts" | "draft" => {
                push(&mut p, "Drafts", Some("\\Drafts"));
                p.flags.push("\\Draft");
            }
            "spam" => {
                junk_or_trash = true;
                push(&mut p, "Spam", Some("\\Junk"));
            }
            "trash" => {
                junk_or_trash = true;
                push(&mut p, "Trash", Some("\\Trash"));
            }
            "important" => push(&mut p, "Important", Some("\\Important")),
            "chat" | "chats" => push(&mut p, "Chats", None),
            "starred" => p.flags.push("\\Flagged"),
            "opened" => {}
            "unread" => seen = false,
            "archived" => {}
            _ if lower.starts_with("category ") || lower == "category" => {}
            _ => push(&mut p, label, None),
        }
    }
    if !junk_or_trash {
        push(&mut p, ALL_MAIL, Some("\\All"));
    }
    if seen {
        p.flags.push("\\Seen");
    }
    p
}

/// Splits a label list on commas outside double quotes; quotes are removed
/// (`\"` inside them is a quote), labels are trimmed, RFC 2047 encoded
/// words are decoded, empty labels dropped.
pub fn split_labels(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = value.chars();
    let finish = |cur: &mut String, out: &mut Vec<String>| {
        let label = decode_words(cur.trim());
        if !label.is_empty() {
            out.push(label);
        }
        cur.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' if !quoted => finish(&mut cur, &mut out),
            c => cur.push(c),
        }
    }
    finish(&mut cur, &mut out);
    out
}

/// Decodes `=?charset?Q|B?…?=` words (Takeout writes non-ASCII labels so).
fn decode_words(s: &str) -> String {
    if !s.contains("=?") {
        return s.to_string();
    }
    let fake = format!("Subject: {s}\r\n\r\n");
    mail_parser::MessageParser::new()
        .parse_headers(fake.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| s.to_string())
}

/// The unfolded value of the first header `name` in the header block of
/// `message` (whatever its line endings), if any.
fn header_value(message: &[u8], name: &str) -> Option<String> {
    crate::formats::lines::first_value(message, name)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders(p: &Placement) -> Vec<&str> {
        p.targets.iter().map(|t| t.folder.as_str()).collect()
    }

    #[test]
    fn labels_are_split_unquoted_and_decoded() {
        assert_eq!(
            split_labels(r#"Inbox,Work,"Important stuff", "a,b" ,,"say \"hi\"""#),
            ["Inbox", "Work", "Important stuff", "a,b", "say \"hi\""]
        );
        assert_eq!(
            split_labels("=?UTF-8?B?5LuV5LqL?=,Opened"),
            ["仕事", "Opened"]
        );
        assert!(split_labels("").is_empty());
    }

    #[test]
    fn header_is_found_and_unfolded_only_in_the_header_block() {
        let m = b"X-GM-THRID: 1\r\nX-Gmail-Labels: Inbox,\r\n Work\r\nSubject: x\r\n\r\nX-Gmail-Labels: body\r\n";
        assert_eq!(labels(m).unwrap(), ["Inbox", "Work"]);
        assert!(labels(b"Subject: x\n\nX-Gmail-Labels: Inbox\n").is_none());
        assert!(has_labels(b"x-gmail-labels: \n\n"));
    }

    #[test]
    fn mapping() {
        let l = |s: &str| split_labels(s);
        let p = placement(&l(
            r#"Inbox,Work,"Important stuff",Opened,Category Updates"#,
        ));
        assert_eq!(folders(&p), ["INBOX", "Work", "Important stuff", ALL_MAIL]);
        assert_eq!(p.flags, ["\\Seen"]);

        let p = placement(&l("Sent,Unread,Starred,Archived,Category Personal"));
        assert_eq!(folders(&p), ["Sent", ALL_MAIL]);
        assert_eq!(p.targets[0].special_use, Some("\\Sent"));
        assert_eq!(p.flags, ["\\Flagged"]);

        let p = placement(&l("Spam,Unread"));
        assert_eq!(folders(&p), ["Spam"]);
        assert!(p.flags.is_empty());

        let p = placement(&l("trash,Drafts,Draft,Work/Old"));
        assert_eq!(folders(&p), ["Trash", "Drafts", "Work/Old"]);
        assert_eq!(p.flags, ["\\Draft", "\\Draft", "\\Seen"]);

        // No labels at all: still in All Mail.
        assert_eq!(folders(&placement(&[])), [ALL_MAIL]);
    }
}
