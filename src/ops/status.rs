//! `mailkeep status`: what the store holds, per account and folder.

use serde::Serialize;

use crate::index::RunRow;
use crate::store::Store;

use super::OpError;

#[derive(Debug, Serialize)]
pub struct StoreStatus {
    pub store: String,
    pub messages: u64,
    pub unique_messages: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// What each part of the store takes on disk.
    pub disk: DiskUsage,
    pub accounts: Vec<AccountStatus>,
}

/// Bytes on disk (allocated blocks, as `du` counts them) of each part of
/// the store directory.
#[derive(Debug, Default, Serialize)]
pub struct DiskUsage {
    /// `packs/`: the messages and the records of their life.
    pub messages: u64,
    /// `index.sqlite` with its WAL and shared-memory files.
    pub index: u64,
    /// `search.sqlite` with its WAL and shared-memory files.
    pub search: u64,
    /// Everything else: the lock, temporary files, old indexes kept aside.
    pub other: u64,
    pub total: u64,
}

impl DiskUsage {
    /// Walks `root` (a store directory).
    pub fn of(root: &std::path::Path) -> std::io::Result<DiskUsage> {
        let mut d = DiskUsage::default();
        for e in std::fs::read_dir(root)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let n = tree_bytes(&e.path())?;
            if name == "packs" {
                d.messages += n;
            } else if name.starts_with("index.sqlite") {
                d.index += n;
            } else if name.starts_with("search.sqlite") {
                d.search += n;
            } else {
                d.other += n;
            }
            d.total += n;
        }
        Ok(d)
    }
}

/// Allocated bytes of a file, or of a directory and all below it (the
/// directories' own blocks included). Symbolic links are not followed.
fn tree_bytes(path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let mut n = meta.blocks() * 512;
    if meta.is_dir() {
        for e in std::fs::read_dir(path)? {
            n += tree_bytes(&e?.path())?;
        }
    }
    Ok(n)
}

#[derive(Debug, Serialize)]
pub struct AccountStatus {
    pub name: String,
    pub kind: String,
    pub configured: bool,
    /// What is wrong with the account's table in the config file, which
    /// makes it unusable (its mail in the store stays).
    pub config_error: Option<String>,
    pub last_run: Option<LastRun>,
    /// The server's quota as last seen by quota, archive or backup.
    pub quota: Vec<super::quota::SeenQuota>,
    pub folders: Vec<FolderStatus>,
}

#[derive(Debug, Serialize)]
pub struct LastRun {
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub ok: Option<bool>,
    pub summary: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FolderStatus {
    pub name: String,
    pub raw_name: String,
    pub uidvalidity: u32,
    /// Messages on the server at the last complete sync.
    pub on_server: Option<u32>,
    /// Held and still on the server.
    pub stored: u64,
    pub gone_from_server: u64,
    pub archived: u64,
    pub raw_bytes: u64,
    pub last_sync_at: Option<i64>,
    /// The folder is no longer listed by the server.
    pub folder_gone: bool,
    pub error: Option<String>,
}

/// Accounts in the store plus configured ones not backed up yet.
pub fn status(
    store: Option<&Store>,
    store_path: &str,
    configured: &[String],
    only: Option<&str>,
) -> Result<StoreStatus, OpError> {
    let mut out = StoreStatus {
        store: store_path.to_string(),
        messages: 0,
        unique_messages: 0,
        raw_bytes: 0,
        stored_bytes: 0,
        disk: DiskUsage::default(),
        accounts: Vec::new(),
    };
    let mut names: Vec<(String, String)> = Vec::new();
    if let Some(s) = store {
        let t = s.index().totals()?;
        out.messages = t.messages;
        out.unique_messages = t.blobs;
        out.raw_bytes = t.raw_bytes;
        out.stored_bytes = t.stored_bytes;
        out.disk = DiskUsage::of(s.root()).map_err(|source| crate::store::StoreError::Io {
            path: s.root().to_path_buf(),
            source,
        })?;
        names = s.index().accounts()?;
    }
    for c in configured {
        if !names.iter().any(|(n, _)| n == c) {
            names.push((c.clone(), "imap".into()));
        }
    }
    names.sort();
    for (name, kind) in names {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let mut acct = AccountStatus {
            configured: configured.contains(&name),
            config_error: None,
            name: name.clone(),
            kind,
            last_run: None,
            quota: Vec::new(),
            folders: Vec::new(),
        };
        if let Some(s) = store {
            acct.last_run = s.index().last_run(&name)?.map(|r: RunRow| LastRun {
                started_at: r.started_at,
                finished_at: r.finished_at,
                ok: r.ok,
                summary: r.summary,
            });
            acct.quota = super::quota::last_seen(s, &name)?;
            let errors = s.index().folder_errors(&name)?;
            for mb in s.index().mailboxes(&name)? {
                if !mb.is_current {
                    continue;
                }
                let st = s.index().mailbox_stats(mb.id)?;
                acct.folders.push(FolderStatus {
                    error: errors
                        .iter()
                        .find(|(raw, _, _)| raw == &mb.raw_name)
                        .map(|(_, _, m)| m.clone()),
                    name: mb.name,
                    raw_name: mb.raw_name,
                    uidvalidity: mb.uidvalidity,
                    on_server: mb.server_count,
                    stored: st.live,
                    gone_from_server: st.gone,
                    archived: st.archived,
                    raw_bytes: st.raw_bytes,
                    last_sync_at: mb.last_sync_at,
                    folder_gone: mb.gone_at.is_some(),
                });
            }
            // A folder that failed before anything was stored still shows.
            for (raw, _, msg) in errors {
                if !acct.folders.iter().any(|f| f.raw_name == raw) {
                    acct.folders.push(FolderStatus {
                        name: raw.clone(),
                        raw_name: raw,
                        uidvalidity: 0,
                        on_server: None,
                        stored: 0,
                        gone_from_server: 0,
                        archived: 0,
                        raw_bytes: 0,
                        last_sync_at: None,
                        folder_gone: false,
                        error: Some(msg),
                    });
                }
            }
        }
        out.accounts.push(acct);
    }
    Ok(out)
}
