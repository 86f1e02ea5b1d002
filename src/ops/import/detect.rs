//! What is at the path: an mbox file (plain or Google Takeout), a single
//! message, a Maildir, a directory of `.eml` files, or a directory of mbox
//! files (Thunderbird's "Local Folders", Apple Mail's `.mbox` bundles, a
//! folder of `*.mbox`). Turns it into a [`Plan`]: the list of things to read,
//! each with its folder. Reads only the first bytes of each file.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::formats::lines::lines;
use crate::formats::{eml, maildir, names};
use crate::model::{Flags, InternalDate};

use super::super::OpError;
use super::{takeout, Format};

/// How many bytes of a file are looked at to tell what it is.
const SNIFF_BYTES: u64 = 64 * 1024;

const FORMATS_HINT: &str =
    "`mailkeep import` reads an mbox file (Google Takeout's too), a Maildir, \
     a directory of .eml files, or a directory of mbox files (Thunderbird's Local Folders); \
     pass `--format` if it was detected wrongly";

/// One thing to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An mbox file: every message goes to `folder`, or, with `takeout`,
    /// where its `X-Gmail-Labels` say.
    Mbox {
        path: PathBuf,
        folder: String,
        takeout: bool,
    },
    /// One message in a file of its own (Maildir, `.eml`).
    File {
        path: PathBuf,
        folder: String,
        flags: Flags,
        date: InternalDate,
    },
}

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// What was found, for people: `Maildir`, `Google Takeout mbox`, …
    pub found: String,
    pub items: Vec<Item>,
    /// Total size of the files to read, for progress.
    pub total_bytes: u64,
    /// Files passed over, with why (not failures: they were not mail).
    pub skipped: Vec<(PathBuf, String)>,
}

/// What the first bytes of a file say it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// Nothing but blank lines, or nothing at all.
    Empty,
    /// Starts with a `From ` envelope line; `gmail`: its first message has
    /// an `X-Gmail-Labels` header.
    Mbox { gmail: bool },
    /// Starts with a header field: one message.
    Message,
    /// Anything else, described.
    NotMail(String),
}

/// Looks at the start of a file or message.
pub fn sniff(head: &[u8]) -> Sniff {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // Lines may end in CRLF, LF or CR alone.
    let mut rest = head;
    loop {
        let Some((line, end)) = lines(rest).next() else {
            return Sniff::Empty;
        };
        if !line.iter().all(|b| b.is_ascii_whitespace()) {
            break;
        }
        rest = &rest[end..];
    }
    if rest.starts_with(b"From ") {
        let after = lines(rest)
            .next()
            .map(|(_, end)| &rest[end..])
            .unwrap_or(&[]);
        return Sniff::Mbox {
            gmail: takeout::has_labels(after),
        };
    }
    // Mail may hold NUL bytes (a real bounce in the corpus has one in its
    // Subject), so binary data is only looked for when there is no header.
    if is_header_line(rest) {
        return Sniff::Message;
    }
    if let Some(what) = binary_kind(rest) {
        return Sniff::NotMail(what);
    }
    let first_line = lines(rest).next().map(|(l, _)| l).unwrap_or(&[]);
    let first: String = String::from_utf8_lossy(first_line)
        .chars()
        .take(60)
        .collect();
    Sniff::NotMail(format!(
        "it starts with `{first}`, neither a `From ` line (mbox) nor a header (a message)"
    ))
}

/// `Name:` at the start of the first line, with a field name of printable
/// ASCII (RFC 5322).
fn is_header_line(s: &[u8]) -> bool {
    let line = lines(s).next().map(|(l, _)| l).unwrap_or(&[]);
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii_end();
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))
}

/// Well-known binary formats, and anything with NUL bytes near the start.
fn binary_kind(head: &[u8]) -> Option<String> {
    let known: [(&[u8], &str); 7] = [
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"\x89PNG", "a PNG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive (unpack it first)"),
        (b"\x1F\x8B", "a gzip file (unpack it first)"),
        (b"SQLite format 3\0", "an SQLite database"),
    ];
    for (magic, what) in known {
        if head.starts_with(magic) {
            return Some(format!("it is {what}"));
        }
    }
    let start = &head[..head.len().min(1024)];
    start
        .contains(&0)
        .then(|| "it holds binary data (NUL bytes)".to_string())
}

/// Why a message read from a file cannot be imported, if it cannot.
pub fn check_message(bytes: &[u8]) -> Result<(), String> {
    match sniff(&bytes[..bytes.len().min(SNIFF_BYTES as usize)]) {
        Sniff::Message | Sniff::Mbox { .. } => Ok(()),
        Sniff::Empty => Err("empty message".into()),
        Sniff::NotMail(why) => Err(format!("not a mail message: {why}")),
    }
}

/// The first bytes of a file.
pub fn head_of(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    fs::File::open(path)?
        .take(SNIFF_BYTES)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

fn not_mail(path: &Path, why: &str) -> OpError {
    OpError::usage(
        format!("`{}` is not mail: {why}", path.display()),
        Some(FORMATS_HINT),
    )
}

fn cannot_read(path: &Path, e: std::io::Error) -> OpError {
    OpError::usage(
        format!("cannot read `{}`: {e}", path.display()),
        Some("check the path and that you may read it"),
    )
}

/// Decides what `path` holds (or takes `format`'s word for it).
pub fn plan(path: &Path, format: Format) -> Result<Plan, OpError> {
    let meta = fs::metadata(path).map_err(|e| cannot_read(path, e))?;
    let mut plan = if meta.is_dir() {
        plan_dir(path, format)?
    } else {
        plan_file(path, format)?
    };
    plan.total_bytes = plan
        .items
        .iter()
        .map(|i| match i {
            Item::Mbox { path, .. } | Item::File { path, .. } => {
                fs::metadata(path).map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum();
    Ok(plan)
}

fn plan_file(path: &Path, format: Format) -> Result<Plan, OpError> {
    if format == Format::Maildir {
        return Err(OpError::usage(
            format!("`{}` is a file, not a Maildir directory", path.display()),
            Some("give the Maildir's directory (the one holding `cur/` and `new/`)"),
        ));
    }
    let head = head_of(path).map_err(|e| cannot_read(path, e))?;
    let s = sniff(&head);
    let kind = match (&s, format) {
        (Sniff::Empty, _) => {
            return Err(OpError::usage(
                format!("`{}` is empty: there is no mail in it", path.display()),
                Some(FORMATS_HINT),
            ))
        }
        (Sniff::NotMail(why), _) => return Err(not_mail(path, why)),
        (Sniff::Message, Format::Mbox | Format::Takeout) => {
            return Err(not_mail(
                path,
                "it starts with a header, not with the `From ` line of an mbox file (pass `--format eml` for a single message)",
            ))
        }
        (Sniff::Message, _) | (Sniff::Mbox { .. }, Format::Eml) => Format::Eml,
        (Sniff::Mbox { gmail: true }, Format::Auto) => Format::Takeout,
        (Sniff::Mbox { .. }, Format::Auto) => Format::Mbox,
        (Sniff::Mbox { .. }, f) => f,
    };
    let mut plan = Plan::default();
    match kind {
        Format::Eml => {
            plan.found = "a single message".into();
            let date = fs::metadata(path)
                .and_then(|m| crate::formats::file_date(&m))
                .map_err(|e| cannot_read(path, e))?;
            plan.items.push(Item::File {
                path: path.to_path_buf(),
                folder: "INBOX".into(),
                flags: Flags::default(),
                date,
            });
        }
        Format::Takeout | Format::Mbox => {
            let takeout = kind == Format::Takeout;
            plan.found = if takeout {
                "a Google Takeout mbox".into()
            } else {
                "an mbox file".into()
            };
            plan.items.push(Item::Mbox {
                path: path.to_path_buf(),
                folder: folder_of_file(path),
                takeout,
            });
        }
        Format::Maildir | Format::Auto => unreachable!("decided above"),
    }
    Ok(plan)
}

/// A single mbox file's folder: its name without `.mbox` (`Inbox` → `INBOX`).
fn folder_of_file(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    normalize(&[names::decode_component(strip_mbox_ext(&name))])
}

fn strip_mbox_ext(name: &str) -> &str {
    for ext in [".mbox", ".mbx"] {
        if name.len() > ext.len() && name.to_ascii_lowercase().ends_with(ext) {
            return &name[..name.len() - ext.len()];
        }
    }
    name
}

/// Joins folder levels; a first level `inbox` (any case) is `INBOX`; an
/// empty name is `INBOX`.
fn normalize(parts: &[String]) -> String {
    let mut parts: Vec<String> = parts.to_vec();
    if let Some(first) = parts.first_mut() {
        if first.eq_ignore_ascii_case("inbox") {
            *first = "INBOX".into();
        }
    }
    let joined = parts.join("/");
    if joined.is_empty() {
        "INBOX".into()
    } else {
        joined
    }
}

/// [`normalize`] for a `/`-separated display name.
fn normalize_display(name: &str) -> String {
    let parts: Vec<String> = name.split('/').map(str::to_string).collect();
    normalize(&parts)
}

fn looks_like_maildir(dir: &Path) -> bool {
    let is_md = |d: &Path| d.join("cur").is_dir() || d.join("new").is_dir();
    if is_md(dir) {
        return true;
    }
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_type().is_ok_and(|t| t.is_dir()) && is_md(&e.path()))
        })
        .unwrap_or(false)
}

fn plan_dir(dir: &Path, format: Format) -> Result<Plan, OpError> {
    let mut plan = Plan::default();
    let read_err = |e: std::io::Error| {
        OpError::usage(
            e.to_string(),
            Some("check the path and that you may read it"),
        )
    };
    let maildir = match format {
        Format::Maildir => true,
        Format::Auto => looks_like_maildir(dir),
        _ => false,
    };
    if maildir {
        plan.found = "a Maildir".into();
        for e in maildir::read_dir(dir).map_err(read_err)? {
            plan.items.push(Item::File {
                folder: normalize_display(&e.folder),
                path: e.path,
                flags: e.flags,
                date: e.date,
            });
        }
    } else {
        if matches!(format, Format::Auto | Format::Mbox | Format::Takeout) {
            let forced = match format {
                Format::Mbox => Some(false),
                Format::Takeout => Some(true),
                _ => None,
            };
            mbox_tree(dir, &[], forced, false, &mut plan).map_err(read_err)?;
        }
        let mboxes = plan.items.len();
        if matches!(format, Format::Auto | Format::Eml) {
            for e in eml::read_dir(dir).map_err(read_err)? {
                // Files directly in the root (`""`) go to INBOX.
                let folder = normalize_display(&e.folder);
                plan.items.push(Item::File {
                    path: e.path,
                    folder,
                    flags: Flags::default(),
                    date: e.date,
                });
            }
        }
        let emls = plan.items.len() - mboxes;
        plan.found = match (mboxes, emls) {
            (0, _) => "a directory of .eml files".into(),
            (_, 0) => "a directory of mbox files".into(),
            _ => "a directory of mbox and .eml files".into(),
        };
    }
    if plan.items.is_empty() {
        let what = match format {
            Format::Maildir => " (as a Maildir)",
            Format::Eml => " (as .eml files)",
            Format::Mbox | Format::Takeout => " (as mbox files)",
            Format::Auto => "",
        };
        return Err(OpError::usage(
            format!("no mail found in `{}`{what}", dir.display()),
            Some(FORMATS_HINT),
        ));
    }
    Ok(plan)
}

/// Walks a directory of mbox files: `Name` (no extension, Thunderbird) and
/// `Name.mbox` files are folders; `Name.sbd/` holds the subfolders of
/// `Name`; `Name.mbox/mbox` is an Apple Mail folder; other directories are
/// folder levels too. `.msf` indexes, hidden files and files with other
/// extensions are passed over.
fn mbox_tree(
    dir: &Path,
    prefix: &[String],
    takeout: Option<bool>,
    apple_bundle: bool,
    plan: &mut Plan,
) -> std::io::Result<()> {
    let mut entries: Vec<(String, PathBuf, fs::FileType)> = Vec::new();
    let ctx = |e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!("cannot read directory `{}`: {e}", dir.display()),
        )
    };
    for entry in fs::read_dir(dir).map_err(ctx)? {
        let entry = entry.map_err(ctx)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        entries.push((name, entry.path(), entry.file_type().map_err(ctx)?));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, path, ft) in entries {
        if ft.is_dir() {
            let level = if let Some(stem) = name.strip_suffix(".sbd") {
                stem.to_string()
            } else if name.ends_with(".mbox") && path.join("mbox").is_file() {
                let stem = strip_mbox_ext(&name).to_string();
                let mut p = prefix.to_vec();
                p.push(names::decode_component(&stem));
                add_mbox(&path.join("mbox"), &p, takeout, plan);
                mbox_tree(&path, &p, takeout, true, plan)?;
                continue;
            } else {
                name.clone()
            };
            let mut p = prefix.to_vec();
            p.push(names::decode_component(&level));
            mbox_tree(&path, &p, takeout, false, plan)?;
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        if apple_bundle && matches!(name.as_str(), "mbox" | "table_of_contents" | "Info.plist") {
            continue;
        }
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("mbox") | Some("mbx") => {}
            None => {}
            _ => continue,
        }
        let mut p = prefix.to_vec();
        p.push(names::decode_component(strip_mbox_ext(&name)));
        if ext.is_none() {
            // Thunderbird folders have no extension; so do many other files.
            match head_of(&path).map(|h| sniff(&h)) {
                Ok(Sniff::Mbox { .. }) => {}
                Ok(Sniff::Empty) => continue,
                Ok(_) => {
                    plan.skipped.push((
                        path,
                        "not an mbox file (no `From ` line at the start)".into(),
                    ));
                    continue;
                }
                Err(e) => {
                    plan.skipped.push((path, format!("cannot read it: {e}")));
                    continue;
                }
            }
        }
        add_mbox(&path, &p, takeout, plan);
    }
    Ok(())
}

fn add_mbox(path: &Path, parts: &[String], takeout: Option<bool>, plan: &mut Plan) {
    let takeout = takeout.unwrap_or_else(|| {
        head_of(path).is_ok_and(|h| matches!(sniff(&h), Sniff::Mbox { gmail: true }))
    });
    plan.items.push(Item::Mbox {
        path: path.to_path_buf(),
        folder: normalize(parts),
        takeout,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b""), Sniff::Empty);
        assert_eq!(sniff(b"\n\r\n  \n"), Sniff::Empty);
        assert_eq!(
            sniff(b"\xEF\xBB\xBF\nFrom a Mon Jan  1 00:00:00 2024\nA: b\n"),
            Sniff::Mbox { gmail: false }
        );
        assert_eq!(
            sniff(b"From 1@xxx Mon Jan 01 00:00:00 +0000 2024\r\nX-GM-THRID: 1\r\nX-Gmail-Labels: Inbox\r\n\r\n"),
            Sniff::Mbox { gmail: true }
        );
        assert_eq!(sniff(b"Return-Path: <a@b>\r\n"), Sniff::Message);
        assert_eq!(sniff(b"\nSubject: blank line first\n"), Sniff::Message);
        assert!(
            matches!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Sniff::NotMail(w) if w.contains("JPEG"))
        );
        assert!(matches!(sniff(b"PK\x03\x04"), Sniff::NotMail(w) if w.contains("ZIP")));
        assert!(matches!(sniff(b"hello world\n"), Sniff::NotMail(w) if w.contains("hello world")));
        assert!(matches!(sniff(b"\0\0A: b\n"), Sniff::NotMail(w) if w.contains("NUL")));
        assert_eq!(sniff(b"Subject: x\0y\r\n"), Sniff::Message);
        assert!(matches!(sniff(b"no colon here\nA: b\n"), Sniff::NotMail(_)));
        // Old Mac mail: lines end in CR alone.
        assert_eq!(
            sniff(b"\r\rSubject: x\rFrom: a@b\r\rtext\r"),
            Sniff::Message
        );
        assert!(
            matches!(sniff(b"no header\rA: b\r"), Sniff::NotMail(w) if w.ends_with("`no header`, neither a `From ` line (mbox) nor a header (a message)"))
        );
        assert_eq!(
            sniff(b"From a Mon Jan  1 00:00:00 2024\rX-Gmail-Labels: Inbox\r\r"),
            Sniff::Mbox { gmail: true }
        );
        assert!(check_message(b"").is_err());
        assert!(check_message(b"Subject: x\n\nbody").is_ok());
    }

    #[test]
    fn folder_names() {
        assert_eq!(folder_of_file(Path::new("/x/Inbox")), "INBOX");
        assert_eq!(folder_of_file(Path::new("/x/Work.mbox")), "Work");
        assert_eq!(folder_of_file(Path::new("/x/a%2Eb.MBOX")), "a.b");
        assert_eq!(folder_of_file(Path::new("/x/.mbox")), ".mbox");
        assert_eq!(normalize(&["inbox".into(), "Sub".into()]), "INBOX/Sub");
        assert_eq!(normalize(&[String::new()]), "INBOX");
        assert_eq!(normalize_display("Inbox/a/b"), "INBOX/a/b");
        assert_eq!(normalize_display(""), "INBOX");
    }

    #[test]
    fn thunderbird_and_apple_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mbox = "From a Mon Jan  1 00:00:00 2024\nA: b\n\n";
        fs::create_dir_all(r.join("Inbox.sbd/Lists.sbd")).unwrap();
        fs::create_dir_all(r.join("Old.mbox/Sub.mbox")).unwrap();
        for (f, body) in [
            ("Inbox", mbox),
            ("Inbox.msf", "// mork"),
            ("Trash", ""),
            ("Inbox.sbd/Work", mbox),
            ("Inbox.sbd/Lists.sbd/rust", mbox),
            ("filterlog.html", "<html>"),
            ("notes", "just text\n"),
            ("Archive.mbox", mbox),
            ("Old.mbox/mbox", mbox),
            ("Old.mbox/Info.plist", "<plist/>"),
            ("Old.mbox/Sub.mbox/mbox", mbox),
        ] {
            fs::write(r.join(f), body).unwrap();
        }
        let plan = plan(r, Format::Auto).unwrap();
        let got: Vec<&str> = plan
            .items
            .iter()
            .map(|i| match i {
                Item::Mbox { folder, .. } => folder.as_str(),
                Item::File { .. } => "file?",
            })
            .collect();
        assert_eq!(
            got,
            [
                "Archive",
                "INBOX",
                "INBOX/Lists/rust",
                "INBOX/Work",
                "Old",
                "Old/Sub"
            ]
        );
        assert_eq!(plan.skipped.len(), 1, "{:?}", plan.skipped);
        assert!(plan.skipped[0].0.ends_with("notes"));
    }

    #[test]
    fn bad_inputs_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.mbox");
        fs::write(&empty, "").unwrap();
        let jpeg = dir.path().join("photo.jpg");
        fs::write(&jpeg, b"\xFF\xD8\xFF\xE0 JFIF").unwrap();
        for (p, want) in [(&empty, "is empty"), (&jpeg, "JPEG")] {
            let e = plan(p, Format::Auto).unwrap_err();
            assert_eq!(e.kind(), crate::ops::FailureKind::Usage);
            assert!(e.to_string().contains(want), "{e}");
        }
        let e = plan(&dir.path().join("missing"), Format::Auto).unwrap_err();
        assert_eq!(e.kind(), crate::ops::FailureKind::Usage);
        let e = plan(dir.path(), Format::Maildir).unwrap_err();
        assert!(e.to_string().contains("no mail found"), "{e}");
    }
}
