//! One `.eml` file per message: writer for export, reader for import.
//!
//! Layout: `root/<folder>/<date>-<unique>.eml`, where `<folder>` is the
//! display name split on `/` into directories, each level escaped by
//! [`names`](super::names) (`INBOX` is the directory `INBOX`), and `<date>` is
//! the INTERNALDATE in UTC as `YYYYMMDDTHHMMSSZ`, so names sort by date. The
//! file holds the message bytes unchanged; its mtime is the INTERNALDATE.
//! Flags are not kept: `.eml` has no place for them.
//!
//! The reader takes every `*.eml` (any case) below the root; the folder is
//! the relative directory with the escapes undone (`""` for files directly in
//! the root). Hidden files and directories are skipped; symlinks are not followed.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::names::{self, Style};
use super::{create_private_dirs, mtime_date, subdirs, with_path, write_file_atomically};
use crate::model::{Flags, InternalDate};

/// Writes messages as `.eml` files.
#[derive(Debug)]
pub struct EmlWriter {
    root: PathBuf,
}

impl EmlWriter {
    /// Creates `root` if needed.
    pub fn create(root: &Path) -> io::Result<EmlWriter> {
        create_private_dirs(root)?;
        Ok(EmlWriter {
            root: root.to_path_buf(),
        })
    }

    /// Writes one message; returns its path. `flags` are not stored (no
    /// place for them in the format); the parameter keeps the writers alike.
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
    /// store reader reports damage) removes the hidden temporary file:
    /// no `.eml` appears. Returns the path and the number of bytes written.
    pub fn write_from(
        &mut self,
        folder_display: &str,
        src: &mut dyn Read,
        flags: &Flags,
        date: &InternalDate,
        unique: &str,
    ) -> io::Result<(PathBuf, u64)> {
        let _ = flags;
        let (tmp, dest) = self.paths(folder_display, date, unique)?;
        let n = write_file_atomically(&tmp, &dest, src, date)?;
        Ok((dest, n))
    }

    /// The hidden temporary file and the final path of a message.
    fn paths(
        &self,
        folder_display: &str,
        date: &InternalDate,
        unique: &str,
    ) -> io::Result<(PathBuf, PathBuf)> {
        let dir = self.root.join(folder_dir(folder_display));
        create_private_dirs(&dir)?;
        let stamp = chrono::DateTime::from_timestamp(date.unix, 0)
            .unwrap_or_default()
            .format("%Y%m%dT%H%M%SZ");
        let name = format!("{stamp}-{}.eml", names::safe_unique(unique)?);
        Ok((dir.join(format!(".{name}.tmp")), dir.join(&name)))
    }
}

/// The directory of a folder, relative to the root.
pub fn folder_dir(folder_display: &str) -> PathBuf {
    names::split_folder(folder_display)
        .into_iter()
        .map(|p| names::encode_component(p, Style::Plain))
        .collect()
}

/// One `.eml` file found by [`read_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmlEntry {
    /// Display name, `/`-separated; `""` for files directly in the root.
    pub folder: String,
    pub path: PathBuf,
    /// The file's mtime, in UTC.
    pub date: InternalDate,
}

/// Every `.eml` file below `root`, sorted by folder, then file name.
pub fn read_dir(root: &Path) -> io::Result<Vec<EmlEntry>> {
    let mut out = Vec::new();
    visit(root, &[], &mut out)?;
    out.sort_by(|a, b| (&a.folder, &a.path).cmp(&(&b.folder, &b.path)));
    Ok(out)
}

fn visit(dir: &Path, prefix: &[String], out: &mut Vec<EmlEntry>) -> io::Result<()> {
    let folder = prefix.join("/");
    for entry in fs::read_dir(dir).map_err(|e| with_path(e, "cannot read directory", dir))? {
        let entry = entry.map_err(|e| with_path(e, "cannot read directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        let is_eml = Path::new(&name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("eml"));
        if !is_eml {
            continue;
        }
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(|e| with_path(e, "cannot read", &path))?;
        out.push(EmlEntry {
            folder: folder.clone(),
            date: mtime_date(&meta)?,
            path,
        });
    }
    for (name, path) in subdirs(dir)? {
        if name.starts_with('.') {
            continue;
        }
        let mut p = prefix.to_vec();
        p.push(names::decode_component(&name));
        visit(&path, &p, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::tests::FailsAtEnd;

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let mut w = EmlWriter::create(&root).unwrap();
        let date = InternalDate {
            unix: 1_704_067_200,
            offset_min: 540,
        };
        let folders = ["INBOX", "送信済み/2024", "..", "a/../../b", "", "x\ny"];
        let mut paths = Vec::new();
        for (i, f) in folders.iter().enumerate() {
            let bytes = format!("Subject: {i}\n\nno final newline");
            let p = w
                .write(
                    f,
                    bytes.as_bytes(),
                    &Flags::default(),
                    &date,
                    &format!("u{i}"),
                )
                .unwrap();
            assert!(p.starts_with(&root), "{}", p.display());
            paths.push((f.to_string(), p, bytes));
        }
        assert_eq!(
            paths[0].1,
            root.join("INBOX/20240101T000000Z-u0.eml"),
            "INBOX and the date stamp"
        );
        assert_eq!(paths[2].1.parent().unwrap(), root.join("%2E."));
        let entries = read_dir(&root).unwrap();
        assert_eq!(entries.len(), folders.len());
        for (folder, path, bytes) in &paths {
            let e = entries.iter().find(|e| &e.path == path).unwrap();
            assert_eq!(&e.folder, folder);
            assert_eq!(e.date.unix, date.unix);
            assert_eq!(fs::read(path).unwrap(), bytes.as_bytes());
        }
    }

    #[test]
    fn write_from_streams_and_a_failing_source_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EmlWriter::create(dir.path()).unwrap();
        let date = InternalDate {
            unix: 1_704_067_200,
            offset_min: 0,
        };
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        let (p, n) = w
            .write_from("INBOX", &mut &big[..], &Flags::default(), &date, "big")
            .unwrap();
        assert_eq!(n, big.len() as u64);
        assert_eq!(fs::read(&p).unwrap(), big);
        w.write_from(
            "INBOX",
            &mut FailsAtEnd(b"x\n"),
            &Flags::default(),
            &date,
            "bad",
        )
        .unwrap_err();
        let names: Vec<_> = fs::read_dir(dir.path().join("INBOX"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn reads_foreign_trees() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("Work/Old")).unwrap();
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join("top.EML"), "a").unwrap();
        fs::write(dir.path().join("Work/Old/m.eml"), "b").unwrap();
        fs::write(dir.path().join("Work/readme.txt"), "no").unwrap();
        fs::write(dir.path().join(".git/x.eml"), "no").unwrap();
        let got: Vec<String> = read_dir(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| e.folder)
            .collect();
        assert_eq!(got, ["", "Work/Old"]);
    }
}
