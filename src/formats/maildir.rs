//! Maildir++: writer for export, reader for import.
//!
//! Layout written, as Dovecot (`maildir:~/Maildir:LAYOUT=maildir++`), mutt,
//! neomutt and Thunderbird's Maildir import read it:
//!
//! - `INBOX` (any case) is the root itself: `root/{cur,new,tmp}`;
//! - any other folder is `root/.A.B` for `A/B`, each level escaped by
//!   [`names`](super::names) with every literal `.` written `%2E` (so `v1.2`
//!   is `.v1%2E2`, and `INBOX/Sub` is `.INBOX.Sub`), names kept as UTF-8
//!   (Dovecot wants `:UTF-8` in the location for that; mutt shows them as they are);
//!   each such folder holds an empty `maildirfolder` file, as Maildir++ asks;
//! - one file per message in `cur/`, named `<unix>.<unique>.mailkeep:2,<letters>`
//!   with the info letters of [`Flags::maildir_letters`]: only `\Draft`,
//!   `\Flagged`, `$Forwarded`, `\Answered`, `\Seen`, `\Deleted` survive in
//!   Maildir; other keywords are not kept;
//! - the file's mtime is the INTERNALDATE (what Dovecot takes as the received date).
//!
//! A message is written to `tmp/`, fsynced, then renamed into `cur/` (the
//! Maildir protocol). The name depends only on the date, the caller's
//! `unique` and the flags, so exporting the same message again replaces it
//! rather than adding a copy (a changed flag gives a second file, though).
//!
//! The reader takes a root that is a maildir (`cur/` or `new/` present:
//! it is `INBOX`), its Maildir++ `.A.B` folders, and plain nested maildirs
//! (`root/A/B/cur`, the "fs" layout) — a mix of both as well. Hidden
//! directories that are not maildirs (`.notmuch`, `.git`) are skipped;
//! symlinks are not followed.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::names::{self, Style};
use super::{create_private_dirs, mtime_date, subdirs, with_path, write_file_atomically};
use crate::model::{Flags, InternalDate};

/// Writes messages into a Maildir++ tree.
#[derive(Debug)]
pub struct MaildirWriter {
    root: PathBuf,
    /// Folder directories already created (cur/new/tmp present).
    ready: HashSet<PathBuf>,
}

impl MaildirWriter {
    /// Creates `root` (and its `cur`, `new`, `tmp`) if needed; an existing
    /// maildir is written into, nothing in it is removed.
    pub fn create(root: &Path) -> io::Result<MaildirWriter> {
        let mut w = MaildirWriter {
            root: root.to_path_buf(),
            ready: HashSet::new(),
        };
        w.folder_dir("INBOX")?;
        Ok(w)
    }

    /// The directory of a folder, created (with `cur`, `new`, `tmp` and,
    /// below the root, `maildirfolder`) on first use.
    fn folder_dir(&mut self, folder_display: &str) -> io::Result<PathBuf> {
        let dir = self.root.join(folder_dir_name(folder_display));
        if !self.ready.contains(&dir) {
            for sub in ["cur", "new", "tmp"] {
                create_private_dirs(&dir.join(sub))?;
            }
            if dir != self.root {
                let marker = dir.join("maildirfolder");
                if !marker.exists() {
                    fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&marker)
                        .map_err(|e| with_path(e, "cannot create", &marker))?;
                }
            }
            self.ready.insert(dir.clone());
        }
        Ok(dir)
    }

    /// Writes one message; returns its path in `cur/`.
    pub fn write(
        &mut self,
        folder_display: &str,
        bytes: &[u8],
        flags: &Flags,
        date: &InternalDate,
        unique: &str,
    ) -> io::Result<PathBuf> {
        self.write_from(folder_display, &mut &bytes[..], flags, date, unique)
            .map(|(path, _)| path)
    }

    /// [`write`](Self::write) from a reader, in bounded memory whatever the
    /// message size. An error from `src` (even at its very end, where a
    /// store reader reports damage) removes the file in `tmp/`: nothing
    /// reaches `cur/`. Returns the path and the number of bytes written.
    pub fn write_from(
        &mut self,
        folder_display: &str,
        src: &mut dyn Read,
        flags: &Flags,
        date: &InternalDate,
        unique: &str,
    ) -> io::Result<(PathBuf, u64)> {
        let (tmp, dest) = self.paths(folder_display, flags, date, unique)?;
        let n = write_file_atomically(&tmp, &dest, src, date)?;
        Ok((dest, n))
    }

    /// The file in `tmp/` and the final path in `cur/` of a message.
    fn paths(
        &mut self,
        folder_display: &str,
        flags: &Flags,
        date: &InternalDate,
        unique: &str,
    ) -> io::Result<(PathBuf, PathBuf)> {
        let dir = self.folder_dir(folder_display)?;
        let base = format!("{}.{}.mailkeep", date.unix, names::safe_unique(unique)?);
        let dest = dir
            .join("cur")
            .join(format!("{base}:2,{}", flags.maildir_letters()));
        Ok((dir.join("tmp").join(&base), dest))
    }
}

/// The directory (relative to the root) of a folder: `""` for INBOX, else `.A.B`.
pub fn folder_dir_name(folder_display: &str) -> String {
    if folder_display.eq_ignore_ascii_case("INBOX") {
        return String::new();
    }
    let parts: Vec<String> = names::split_folder(folder_display)
        .into_iter()
        .map(|p| names::encode_component(p, Style::MaildirPlusPlus))
        .collect();
    format!(".{}", parts.join("."))
}

/// One message file found by [`read_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaildirEntry {
    /// Display name, `/`-separated; `INBOX` for the root maildir.
    pub folder: String,
    pub path: PathBuf,
    /// From the `:2,` info letters; files in `new/` have none (unseen).
    pub flags: Flags,
    /// The file's mtime, in UTC.
    pub date: InternalDate,
}

/// Every message file under `root`, sorted by folder, then file name.
pub fn read_dir(root: &Path) -> io::Result<Vec<MaildirEntry>> {
    let meta = fs::metadata(root).map_err(|e| with_path(e, "cannot read maildir", root))?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a directory", root.display()),
        ));
    }
    let mut out = Vec::new();
    visit(root, &[], &mut out)?;
    out.sort_by(|a, b| (&a.folder, &a.path).cmp(&(&b.folder, &b.path)));
    Ok(out)
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

fn visit(dir: &Path, prefix: &[String], out: &mut Vec<MaildirEntry>) -> io::Result<()> {
    let here_is_maildir = is_maildir(dir);
    if here_is_maildir {
        let folder = if prefix.is_empty() {
            "INBOX".to_string()
        } else {
            prefix.join("/")
        };
        for sub in ["cur", "new"] {
            read_messages(&dir.join(sub), &folder, out)?;
        }
    }
    for (name, path) in subdirs(dir)? {
        if here_is_maildir && matches!(name.as_str(), "cur" | "new" | "tmp") {
            continue;
        }
        if let Some(pp) = name.strip_prefix('.') {
            // Maildir++ `.A.B`: only when it is a maildir itself.
            if pp.is_empty() || !is_maildir(&path) {
                continue;
            }
            let mut p = prefix.to_vec();
            p.extend(pp.split('.').map(names::decode_component));
            visit(&path, &p, out)?;
        } else {
            let mut p = prefix.to_vec();
            p.push(names::decode_component(&name));
            visit(&path, &p, out)?;
        }
    }
    Ok(())
}

fn read_messages(dir: &Path, folder: &str, out: &mut Vec<MaildirEntry>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(with_path(e, "cannot read directory", dir)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| with_path(e, "cannot read directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(|e| with_path(e, "cannot read", &path))?;
        out.push(MaildirEntry {
            folder: folder.to_string(),
            flags: Flags::from_maildir_letters(info_letters(&name)),
            date: mtime_date(&meta)?,
            path,
        });
    }
    Ok(())
}

/// The letters after `:2,` (or `!2,`, mbsync's choice where `:` is not allowed).
fn info_letters(file_name: &str) -> &str {
    for sep in [":2,", "!2,"] {
        if let Some(i) = file_name.rfind(sep) {
            return &file_name[i + sep.len()..];
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::tests::FailsAtEnd;
    use std::os::unix::fs::PermissionsExt;

    fn date(unix: i64) -> InternalDate {
        InternalDate {
            unix,
            offset_min: 540,
        }
    }

    #[test]
    fn folder_names() {
        assert_eq!(folder_dir_name("INBOX"), "");
        assert_eq!(folder_dir_name("inbox"), "");
        assert_eq!(folder_dir_name("INBOX/Sub"), ".INBOX.Sub");
        assert_eq!(folder_dir_name("[Gmail]/Sent Mail"), ".[Gmail].Sent Mail");
        assert_eq!(folder_dir_name("v1.2/x"), ".v1%2E2.x");
        assert_eq!(folder_dir_name("../../etc"), ".%2E%2E.%2E%2E.etc");
        assert_eq!(folder_dir_name("仕事/2024"), ".仕事.2024");
    }

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Maildir");
        let mut w = MaildirWriter::create(&root).unwrap();
        let seen = Flags::new(["\\Seen", "\\Answered", "$Label1"]);
        let folders = ["INBOX", "送信済み", "a.b/c", "../x", "[Gmail]/Spam", "a\0b"];
        let mut written = Vec::new();
        for (i, f) in folders.iter().enumerate() {
            let body = format!("Subject: {i}\r\n\r\nbody\r\n");
            let p = w
                .write(
                    f,
                    body.as_bytes(),
                    &seen,
                    &date(1_700_000_000 + i as i64),
                    &format!("abc{i}"),
                )
                .unwrap();
            assert!(p.starts_with(&root), "{}", p.display());
            assert!(p.to_string_lossy().ends_with(":2,RS"), "{}", p.display());
            written.push((f.to_string(), p, body));
        }
        // a message before 1970 keeps its date
        let old = w
            .write("INBOX", b"old\n", &Flags::default(), &date(-86_400), "old")
            .unwrap();
        assert!(old
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("-86400.old."));

        let entries = read_dir(&root).unwrap();
        assert_eq!(entries.len(), folders.len() + 1);
        for (folder, path, body) in &written {
            let e = entries.iter().find(|e| &e.path == path).unwrap();
            assert_eq!(&e.folder, folder);
            assert_eq!(fs::read(path).unwrap(), body.as_bytes());
            assert_eq!(e.flags, Flags::new(["\\Seen", "\\Answered"]));
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let e = entries.iter().find(|e| e.path == old).unwrap();
        assert_eq!(e.date.unix, -86_400);
        assert!(entries.iter().any(|e| e.date.unix == 1_700_000_000));
        // tmp/ is empty again
        assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        assert!(root.join(".送信済み/maildirfolder").is_file());
    }

    #[test]
    fn write_from_streams_and_a_failing_source_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MaildirWriter::create(dir.path()).unwrap();
        let f = Flags::new(["\\Flagged"]);
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        let (p, n) = w
            .write_from("Work", &mut &big[..], &f, &date(9), "big")
            .unwrap();
        assert_eq!(n, big.len() as u64);
        assert_eq!(fs::read(&p).unwrap(), big);
        assert!(p.to_string_lossy().ends_with(":2,F"));
        let err = w
            .write_from("Work", &mut FailsAtEnd(b"x\n"), &f, &date(10), "bad")
            .unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
        let work = dir.path().join(".Work");
        assert_eq!(fs::read_dir(work.join("tmp")).unwrap().count(), 0);
        assert_eq!(read_dir(dir.path()).unwrap().len(), 1, "only the good one");
    }

    #[test]
    fn same_message_twice_is_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MaildirWriter::create(dir.path()).unwrap();
        let f = Flags::new(["\\Seen"]);
        let a = w.write("INBOX", b"x\n", &f, &date(5), "u1").unwrap();
        let b = w.write("INBOX", b"x\n", &f, &date(5), "u1").unwrap();
        assert_eq!(a, b);
        assert_eq!(read_dir(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn reads_foreign_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "cur",
            "new",
            "tmp",
            ".Sent/cur",
            ".Lists.rust/new",
            "Archive/2023/cur",
            ".notmuch/xapian",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("new/1.a.host"), "a").unwrap();
        fs::write(root.join("cur/2.b.host:2,FS"), "b").unwrap();
        fs::write(root.join("cur/.hidden"), "no").unwrap();
        fs::write(root.join(".Sent/cur/3.c.host,S=1:2,S"), "c").unwrap();
        fs::write(root.join(".Lists.rust/new/4.d.host"), "d").unwrap();
        fs::write(root.join("Archive/2023/cur/5.e.host!2,T"), "e").unwrap();
        fs::write(root.join(".notmuch/xapian/x"), "no").unwrap();
        fs::write(root.join("dovecot-uidlist"), "no").unwrap();
        let got: Vec<(String, String, String)> = read_dir(root)
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.folder,
                    fs::read_to_string(&e.path).unwrap(),
                    e.flags.to_text(),
                )
            })
            .collect();
        let want = [
            ("Archive/2023", "e", "\\Deleted"),
            ("INBOX", "b", "\\Flagged \\Seen"),
            ("INBOX", "a", ""),
            ("Lists/rust", "d", ""),
            ("Sent", "c", "\\Seen"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn empty_unique_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MaildirWriter::create(dir.path()).unwrap();
        let err = w
            .write("INBOX", b"x", &Flags::default(), &date(0), "")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
