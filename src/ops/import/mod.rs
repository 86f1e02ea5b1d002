//! `mailkeep import NAME PATH`: mail from files into the store, as an
//! account of its own (kind `import`, no server).
//!
//! [`plan`] decides what the path holds (detect.rs), [`run`] reads it and
//! writes through the store's normal write path (sink.rs); Takeout labels
//! are mapped in takeout.rs. See docs/import.md for the formats, the label
//! mapping and why a re-run adds nothing.
//!
//! Failures: a path that holds no mail is a usage error (exit 2) found by
//! [`plan`] before anything is written; a message or file that cannot be
//! read during [`run`] is reported in [`ImportReport::failures`] and the
//! rest goes on (exit 1); a store error stops the run (exit 5), with what
//! was committed kept.

mod detect;
mod sink;
mod takeout;

use std::path::Path;

use crate::formats::mbox::{self, Quoting};
use crate::model::{Flags, InternalDate};
use crate::store::{now, Store};

use super::OpError;
pub use detect::{plan, Item, Plan};
use sink::{Added, Content, Sink, Target};

/// Files bigger than this are streamed into the store from disk.
const BIG_FILE: u64 = 8 * 1024 * 1024;

/// What the input is (`auto`: find out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Tell from the path and the first bytes of its files.
    #[default]
    Auto,
    /// An mbox file, or a directory of them (Thunderbird's Local Folders).
    Mbox,
    /// A Maildir (Maildir++ or nested).
    Maildir,
    /// `.eml` files below a directory, or one message file.
    Eml,
    /// Google Takeout mbox: `X-Gmail-Labels` become folders.
    Takeout,
}

/// How `From ` lines in the bodies of an mbox file were quoted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MboxFormat {
    /// mboxrd: `>From `, `>>From `, … each lose one `>`.
    #[default]
    Rd,
    /// mboxo: only `>From ` loses its `>`.
    O,
}

impl From<MboxFormat> for Quoting {
    fn from(f: MboxFormat) -> Quoting {
        match f {
            MboxFormat::Rd => Quoting::Rd,
            MboxFormat::O => Quoting::O,
        }
    }
}

/// A message or file that could not be imported.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    /// The file, and for mbox the line and byte offset of the message.
    pub place: String,
    pub error: String,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub account: String,
    /// What the input was found to be.
    pub found: String,
    /// Messages added to at least one folder.
    pub imported: u64,
    /// Their size.
    pub bytes: u64,
    /// Messages every folder of which already held them.
    pub already: u64,
    pub folders: u64,
    pub failures: Vec<Failure>,
    /// Files passed over because they are not mail.
    pub skipped: Vec<(String, String)>,
}

/// Checks that `account` may receive an import: a usable name, not an IMAP
/// account of the config or of the store.
pub fn check_account(
    store: Option<&Store>,
    configured: &[String],
    account: &str,
) -> Result<(), OpError> {
    let ok_name = !account.is_empty()
        && account.len() <= 64
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok_name {
        return Err(OpError::usage(
            format!("`{account}` cannot be an account name"),
            Some("use letters, digits, `-` and `_` only, e.g. `old-thunderbird`"),
        ));
    }
    let imap_in_store = match store {
        Some(s) => s
            .index()
            .account_kind(account)?
            .is_some_and(|k| k != "import"),
        None => false,
    };
    if configured.iter().any(|c| c == account) || imap_in_store {
        return Err(OpError::usage(
            format!(
                "`{account}` is an IMAP account; imported mail goes into an account of its own"
            ),
            Some(&format!(
                "choose another name, e.g. `mailkeep import {account}-import PATH`"
            )),
        ));
    }
    Ok(())
}

/// Imports everything in `plan` into `account`. `progress(done, total)` is
/// told the input bytes read so far; `describe` says how the run is
/// recorded in the store's record of runs (the command line's summary).
pub fn run(
    store: &mut Store,
    account: &str,
    plan: &Plan,
    quoting: Quoting,
    progress: &mut dyn FnMut(u64, u64),
    describe: fn(&ImportReport) -> String,
) -> Result<ImportReport, OpError> {
    let mut report = ImportReport {
        account: account.to_string(),
        found: plan.found.clone(),
        skipped: plan
            .skipped
            .iter()
            .map(|(p, why)| (p.display().to_string(), why.clone()))
            .collect(),
        ..ImportReport::default()
    };
    let run_id = store.index().begin_import_run(account, now())?;
    let result = import_items(store, account, plan, quoting, &mut report, progress);
    let ok = result.is_ok() && report.failures.is_empty();
    let summary = match &result {
        Ok(()) => describe(&report),
        Err(e) => format!("{account}: failed: {}", super::failure_text(e)),
    };
    let _ = store.index().finish_run(run_id, now(), ok, &summary);
    result.map(|()| report)
}

fn import_items(
    store: &mut Store,
    account: &str,
    plan: &Plan,
    quoting: Quoting,
    report: &mut ImportReport,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), OpError> {
    let mut sink = Sink::new(store, account);
    let total = plan.total_bytes;
    let mut done = 0u64;
    for item in &plan.items {
        match item {
            Item::Mbox {
                path,
                folder,
                takeout,
            } => {
                let read = import_mbox(
                    &mut sink,
                    path,
                    folder,
                    *takeout,
                    quoting,
                    report,
                    &mut |n| progress(done + n, total),
                )?;
                done += read;
            }
            Item::File {
                path,
                folder,
                flags,
                date,
            } => {
                done += import_file(&mut sink, path, folder, flags, *date, report)?;
            }
        }
        progress(done, total);
    }
    report.folders = sink.folders().count() as u64;
    sink.finish()?;
    // Post-import step, once everything above is committed: make the new
    // mail searchable (what is not indexed now is caught up by the next
    // backup, import or `reindex`).
    crate::ops::search::index_pending(store, &mut |_, _| {})?;
    Ok(())
}

/// Reads one mbox file; returns how many bytes it read.
fn import_mbox(
    sink: &mut Sink<'_>,
    path: &Path,
    folder: &str,
    takeout: bool,
    quoting: Quoting,
    report: &mut ImportReport,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, OpError> {
    let fallback_date = file_date(path);
    let mut reader = match mbox::open(path, quoting) {
        Ok(r) => r,
        Err(e) => {
            report.failures.push(Failure {
                place: format!("`{}`", path.display()),
                error: e.to_string(),
            });
            return Ok(0);
        }
    };
    let plain = [Target::plain(folder)];
    while let Some(msg) = reader.next() {
        let m = match msg {
            Ok(m) => m,
            Err(e) => {
                // The reader's error names the file and line; it stops there.
                report.failures.push(Failure {
                    place: format!("`{}`", path.display()),
                    error: e.to_string(),
                });
                break;
            }
        };
        let place = || format!("`{}` line {} (byte {})", path.display(), m.line, m.offset);
        if let Err(why) = detect::check_message(&m.bytes) {
            report.failures.push(Failure {
                place: place(),
                error: why,
            });
            continue;
        }
        let date = m
            .date
            .or_else(|| header_date(&m.bytes))
            .unwrap_or(fallback_date);
        let (targets, flags) = if takeout {
            let labels = takeout::labels(&m.bytes).unwrap_or_default();
            let p = takeout::placement(&labels);
            let flags = Flags::new(m.flags.iter().chain(p.flags.iter().copied()));
            (p.targets, flags)
        } else {
            (plain.to_vec(), m.flags.clone())
        };
        match sink.add(&targets, Content::Bytes(&m.bytes), &flags, date)? {
            Added::New => {
                report.imported += 1;
                report.bytes += m.bytes.len() as u64;
            }
            Added::Already => report.already += 1,
            Added::Changed => unreachable!("bytes in memory cannot change"),
        }
        progress(reader.bytes_read());
    }
    Ok(reader.bytes_read())
}

/// Reads one message file (Maildir, .eml); returns its size.
fn import_file(
    sink: &mut Sink<'_>,
    path: &Path,
    folder: &str,
    flags: &Flags,
    date: InternalDate,
    report: &mut ImportReport,
) -> Result<u64, OpError> {
    let fail = |report: &mut ImportReport, error: String| {
        report.failures.push(Failure {
            place: format!("`{}`", path.display()),
            error,
        });
    };
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) => {
            fail(report, format!("cannot read it: {e}"));
            return Ok(0);
        }
    };
    let targets = [Target::plain(folder)];
    let added = if size > BIG_FILE {
        let checked = detect::head_of(path)
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|h| detect::check_message(&h))
            .and_then(|()| hash_file(path).map_err(|e| format!("cannot read it: {e}")));
        let id = match checked {
            Ok(id) => id,
            Err(why) => {
                fail(report, why);
                return Ok(size);
            }
        };
        sink.add(&targets, Content::File { path, id, size }, flags, date)?
    } else {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                fail(report, format!("cannot read it: {e}"));
                return Ok(size);
            }
        };
        if let Err(why) = detect::check_message(&bytes) {
            fail(report, why);
            return Ok(size);
        }
        sink.add(&targets, Content::Bytes(&bytes), flags, date)?
    };
    match added {
        Added::New => {
            report.imported += 1;
            report.bytes += size;
        }
        Added::Already => report.already += 1,
        Added::Changed => fail(
            report,
            "it changed while it was being read; import again from a copy nothing writes to".into(),
        ),
    }
    Ok(size)
}

fn hash_file(path: &Path) -> std::io::Result<crate::model::BlobId> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path)?)?;
    Ok(crate::model::BlobId(*h.finalize().as_bytes()))
}

/// A file's mtime, or the epoch if it has none.
fn file_date(path: &Path) -> InternalDate {
    std::fs::metadata(path)
        .and_then(|m| crate::formats::file_date(&m))
        .unwrap_or(InternalDate {
            unix: 0,
            offset_min: 0,
        })
}

/// The message's `Date:` header, with its zone (whatever its line endings).
fn header_date(bytes: &[u8]) -> Option<InternalDate> {
    let mut field = b"Date: ".to_vec();
    field.extend_from_slice(&crate::formats::lines::first_value(bytes, "date")?);
    field.extend_from_slice(b"\r\n\r\n");
    let msg = mail_parser::MessageParser::new().parse_headers(&field)?;
    let d = msg.date()?;
    if !d.is_valid() {
        return None;
    }
    let offset = i32::from(d.tz_hour) * 60 + i32::from(d.tz_minute);
    Some(InternalDate {
        unix: d.to_timestamp(),
        offset_min: if d.tz_before_gmt { -offset } else { offset },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::records::MailboxRecord;
    use crate::ops::FailureKind;

    fn mailbox(account: &str, kind: &str) -> MailboxRecord {
        MailboxRecord {
            account: account.into(),
            account_kind: kind.into(),
            mailbox: "INBOX".into(),
            name: "INBOX".into(),
            delimiter: Some("/".into()),
            special_use: None,
            uidvalidity: 1,
            uidnext: None,
            highestmodseq: None,
            server_count: None,
            gone: false,
            at: 1,
        }
    }

    #[test]
    fn the_date_header_is_read_whatever_the_line_endings() {
        let want = Some(InternalDate {
            unix: 1_609_722_000,
            offset_min: 540,
        });
        for m in [
            &b"Subject: x\r\nDate: Mon, 4 Jan 2021\r\n 10:00:00 +0900\r\n\r\nbody"[..],
            b"Subject: x\nDate: Mon, 4 Jan 2021 10:00:00 +0900\n\nbody",
            b"Subject: x\rDate: Mon, 4 Jan 2021\r 10:00:00 +0900\r\rbody",
        ] {
            assert_eq!(header_date(m), want, "{}", String::from_utf8_lossy(m));
        }
        assert_eq!(
            header_date(b"Subject: x\r\rDate: Mon, 4 Jan 2021 10:00:00 +0900"),
            None
        );
        assert_eq!(header_date(b"Date: yesterday\n\n"), None);
    }

    #[test]
    fn imap_accounts_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.put_mailbox(mailbox("work", "imap")).unwrap();
        store.put_mailbox(mailbox("old", "import")).unwrap();
        store.commit().unwrap();
        let configured = vec!["home".to_string()];
        for name in ["work", "home", "", "a b", "../x"] {
            let e = check_account(Some(&store), &configured, name).unwrap_err();
            assert_eq!(e.kind(), FailureKind::Usage, "{name}");
            assert!(e.hint().is_some(), "{name}");
        }
        check_account(Some(&store), &configured, "old").unwrap();
        check_account(Some(&store), &configured, "new-one").unwrap();
        check_account(None, &configured, "work").unwrap();
    }

    #[test]
    fn takeout_import_stores_each_message_once_and_reruns_add_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("takeout.mbox");
        std::fs::write(
            &file,
            "From 1@xxx Wed Nov 15 10:00:00 +0000 2023\n\
             X-Gmail-Labels: Inbox,Work,\"Important stuff\"\n\nbody\n\n\
             From 2@xxx Wed Nov 15 11:00:00 +0000 2023\n\
             X-Gmail-Labels: Spam\n\nbuy\n",
        )
        .unwrap();
        let mut store = Store::open(&dir.path().join("store")).unwrap();
        let p = plan(&file, Format::Auto).unwrap();
        assert_eq!(p.found, "a Google Takeout mbox");
        let r = run(&mut store, "t", &p, Quoting::Rd, &mut |_, _| {}, |r| {
            r.account.clone()
        })
        .unwrap();
        assert_eq!((r.imported, r.already, r.folders), (2, 0, 5));
        let r = run(&mut store, "t", &p, Quoting::Rd, &mut |_, _| {}, |r| {
            r.account.clone()
        })
        .unwrap();
        assert_eq!((r.imported, r.already, r.folders), (0, 2, 5));
        let totals = store.index().totals().unwrap();
        assert_eq!((totals.blobs, totals.messages), (2, 5));
        let inbox = store
            .index()
            .current_mailbox("t", "INBOX")
            .unwrap()
            .unwrap();
        assert_eq!(inbox.uidvalidity, sink::UIDVALIDITY);
        assert_eq!(inbox.uidnext, Some(2));
        let m = &store.index().messages(inbox.id).unwrap()[&1];
        assert_eq!(m.internaldate.unix, 1_700_042_400);
        assert_eq!(m.flags.to_text(), "\\Seen");
        assert_eq!(
            store.index().account_kind("t").unwrap().as_deref(),
            Some("import")
        );
        // The index can be rebuilt from the packs alone.
        let root = store.root().to_path_buf();
        drop(store);
        crate::store::repair(&root, &mut |_, _| {}).unwrap();
        let store = Store::open(&root).unwrap();
        assert_eq!(store.index().totals().unwrap().messages, 5);
        assert_eq!(
            store.index().account_kind("t").unwrap().as_deref(),
            Some("import")
        );
    }
}
