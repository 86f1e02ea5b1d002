//! `mailkeep export`: the stored bytes, unchanged, as Maildir, mboxrd or
//! one `.eml` per message.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::formats::{eml::EmlWriter, maildir::MaildirWriter, mbox::MboxWriter};
use crate::model::BlobId;
use crate::store::{Store, StoreError};

use super::{folder_matches, OpError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Maildir,
    Mbox,
    Eml,
}

#[derive(Debug, Default)]
pub struct ExportReport {
    pub messages: u64,
    pub bytes: u64,
    pub folders: u64,
    /// Messages left out because their stored bytes are damaged or lost
    /// (nothing of them is in the output); every other one was written.
    pub damaged: Vec<NotExported>,
}

/// A message that could not be exported.
#[derive(Debug)]
pub struct NotExported {
    pub folder: String,
    pub uid: crate::model::Uid,
    pub internaldate: i64,
    pub why: String,
}

enum Writer {
    Maildir(MaildirWriter),
    Mbox(MboxWriter),
    Eml(EmlWriter),
}

/// Exports every message of `account` (gone from the server and archived
/// ones included) whose folder matches `folder` (all when `None`). Every UID
/// of a folder generation is written, so two identical messages in a folder
/// stay two; a message that an older generation of the same folder (before
/// a UIDVALIDITY change) also held is written once.
pub fn export(
    store: &Store,
    account: &str,
    format: Format,
    folder: Option<&str>,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportReport, OpError> {
    let mailboxes = store.index().mailboxes(account)?;
    if mailboxes.is_empty() {
        let accounts: Vec<String> = store
            .index()
            .accounts()?
            .into_iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect();
        let hint = if accounts.is_empty() {
            "the store is empty: run `mailkeep backup ACCOUNT` first".to_string()
        } else {
            format!("the store holds mail of {}", accounts.join(", "))
        };
        return Err(OpError::usage(
            format!("the store holds no mail of account `{account}`"),
            Some(&hint),
        ));
    }
    if let Some(p) = folder {
        let mut names: Vec<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
        names.sort();
        names.dedup();
        if !names.iter().any(|n| folder_matches(p, n)) {
            return Err(super::no_folder_matches(
                account,
                &[p.to_string()],
                &names,
                "in the store",
            ));
        }
    }
    let out_err = |path: &Path| {
        let path: PathBuf = path.to_path_buf();
        move |source| OpError::Output { path, source }
    };
    let mut writer = match format {
        Format::Maildir => Writer::Maildir(MaildirWriter::create(out).map_err(out_err(out))?),
        Format::Mbox => Writer::Mbox(MboxWriter::create(out).map_err(out_err(out))?),
        Format::Eml => Writer::Eml(EmlWriter::create(out).map_err(out_err(out))?),
    };
    let mut report = ExportReport::default();
    // Blobs written for each folder name by its earlier generations.
    let mut earlier: HashMap<String, HashSet<BlobId>> = HashMap::new();
    let mut current: Option<(i64, String, HashSet<BlobId>)> = None;
    let mut folders: HashSet<String> = HashSet::new();
    let mut failure: Option<OpError> = None;
    let res = store.index().for_each_message(account, &mut |mb, m| {
        if folder.is_some_and(|p| !folder_matches(p, &mb.name)) {
            return Ok(());
        }
        if current.as_ref().is_none_or(|(id, _, _)| *id != mb.id) {
            if let Some((_, name, blobs)) = current.take() {
                earlier.entry(name).or_default().extend(blobs);
            }
            current = Some((mb.id, mb.name.clone(), HashSet::new()));
        }
        if earlier.get(&mb.name).is_some_and(|b| b.contains(&m.blob)) {
            return Ok(());
        }
        if let Some((_, _, blobs)) = current.as_mut() {
            blobs.insert(m.blob);
        }
        // Every message is streamed from its pack into its file: memory
        // stays bounded whatever the message size. The store reader checks
        // the hash at the end; damage fails the write, so the file is
        // removed (Maildir, eml) or cut back out of the mbox, and the
        // export goes on without it, naming it.
        let left_out = |why: String| NotExported {
            folder: mb.name.clone(),
            uid: m.uid,
            internaldate: m.internaldate.unix,
            why,
        };
        let mut src = match store.open_blob(&m.blob) {
            Ok(r) => r,
            Err(e @ (StoreError::Corrupt { .. } | StoreError::NoSuchBlob { .. })) => {
                report.damaged.push(left_out(e.to_string()));
                return Ok(());
            }
            Err(e) => {
                failure = Some(e.into());
                return Err("stop".into());
            }
        };
        let unique = format!("{}.{}.{}", &m.blob.to_hex()[..16], mb.uidvalidity, m.uid);
        let res = match &mut writer {
            Writer::Maildir(w) => w
                .write_from(&mb.name, &mut src, &m.flags, &m.internaldate, &unique)
                .map(|(_, n)| n),
            Writer::Mbox(w) => w.write_from(&mb.name, &mut src, &m.flags, &m.internaldate),
            Writer::Eml(w) => w
                .write_from(&mb.name, &mut src, &m.flags, &m.internaldate, &unique)
                .map(|(_, n)| n),
        };
        let written = match res {
            Ok(n) => n,
            Err(e) => match src.take_error() {
                // The writer took back what it had of this message.
                Some(damage) => {
                    report.damaged.push(left_out(damage.to_string()));
                    return Ok(());
                }
                None => {
                    failure = Some(OpError::Output {
                        path: out.to_path_buf(),
                        source: e,
                    });
                    return Err("stop".into());
                }
            },
        };
        folders.insert(mb.name.clone());
        report.messages += 1;
        report.bytes += written;
        progress(report.messages);
        Ok(())
    });
    let failure = failure.or_else(|| {
        res.err().map(|e| OpError::Output {
            path: out.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    });
    if let Some(e) = failure {
        // Half-written mbox files are removed; Maildir and eml files
        // already written are whole and stay.
        if let Writer::Mbox(w) = writer {
            w.abandon();
        }
        return Err(e);
    }
    if let Writer::Mbox(w) = writer {
        w.finish().map_err(out_err(out))?;
    }
    report.folders = folders.len() as u64;
    Ok(report)
}
