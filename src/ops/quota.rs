//! `mailkeep quota`: usage and limits per quota root (RFC 2087
//! GETQUOTAROOT), for INBOX and every folder's root. Also used by `archive`
//! (quota before and after) and `backup` (one look per run), which all
//! remember the last quota seen in the index for `status`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::imap::{Connection, ImapError, QuotaRoot};
use crate::index::archive::QuotaSeen;
use crate::index::IndexError;
use crate::model::Folder;
use crate::store::{now, SharedStore, Store, StoreError};

use super::{connect, OpError};

/// Usage against a limit. Storage is in bytes (the server says KiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub used: u64,
    pub limit: u64,
}

impl Usage {
    /// Percent of the limit used; `None` when the limit is 0 (unlimited).
    pub fn percent(&self) -> Option<f64> {
        (self.limit > 0).then(|| self.used as f64 * 100.0 / self.limit as f64)
    }
}

/// One quota root and the folders that count against it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RootUsage {
    pub root: String,
    /// Folders (names for people) whose GETQUOTAROOT named this root.
    pub folders: Vec<String>,
    pub storage: Option<Usage>,
    pub messages: Option<Usage>,
    /// Other resources the server reported, as it said them.
    pub other: Vec<(String, Usage)>,
}

/// What `mailkeep quota ACCOUNT` found.
#[derive(Clone, Debug, Serialize)]
pub struct QuotaReport {
    pub account: String,
    pub host: String,
    /// `None`: the server does not offer QUOTA.
    pub roots: Option<Vec<RootUsage>>,
}

fn usage_of(root: &QuotaRoot) -> (Option<Usage>, Option<Usage>, Vec<(String, Usage)>) {
    let (mut storage, mut messages, mut other) = (None, None, Vec::new());
    for r in &root.resources {
        match r.name.as_str() {
            "STORAGE" => {
                storage = Some(Usage {
                    used: r.usage.saturating_mul(1024),
                    limit: r.limit.saturating_mul(1024),
                })
            }
            "MESSAGE" => {
                messages = Some(Usage {
                    used: r.usage,
                    limit: r.limit,
                })
            }
            name => other.push((
                name.to_string(),
                Usage {
                    used: r.usage,
                    limit: r.limit,
                },
            )),
        }
    }
    (storage, messages, other)
}

/// GETQUOTAROOT for INBOX, then for every other selectable folder of
/// `folders`; one entry per root, INBOX's first. `Ok(None)` when the server
/// does not offer QUOTA. A folder the server refuses GETQUOTAROOT for is
/// left out; INBOX refused is an error.
pub async fn read_quota(
    conn: &mut Connection,
    folders: &[Folder],
) -> Result<Option<Vec<RootUsage>>, ImapError> {
    if !conn.capabilities().has("QUOTA") {
        return Ok(None);
    }
    let mut out: Vec<RootUsage> = Vec::new();
    let mut add = |name: &str, roots: Vec<QuotaRoot>| {
        for r in roots {
            let (storage, messages, other) = usage_of(&r);
            match out.iter_mut().find(|u| u.root == r.name) {
                Some(u) => {
                    if !u.folders.iter().any(|f| f == name) {
                        u.folders.push(name.to_string());
                    }
                }
                None => out.push(RootUsage {
                    root: r.name.clone(),
                    folders: vec![name.to_string()],
                    storage,
                    messages,
                    other,
                }),
            }
        }
    };
    let inbox = conn.quota_root("INBOX").await?;
    add("INBOX", inbox);
    for f in folders {
        if !f.selectable || f.raw.eq_ignore_ascii_case("INBOX") {
            continue;
        }
        match conn.quota_root(&f.raw).await {
            Ok(roots) => add(&f.display, roots),
            Err(e) if e.server_response().is_some() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(out))
}

/// The folders of each root, per folder: which roots it counts against.
pub fn roots_by_folder(roots: &[RootUsage]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in roots {
        for f in &r.folders {
            out.entry(f.clone()).or_default().push(r.root.clone());
        }
    }
    out
}

/// The rows to remember in the index, as the server said them (KiB).
pub fn seen_rows(roots: &[RootUsage], at: i64) -> Vec<QuotaSeen> {
    let mut out = Vec::new();
    for r in roots {
        let mut push = |resource: &str, u: &Usage, kib: bool| {
            let d = if kib { 1024 } else { 1 };
            out.push(QuotaSeen {
                root: r.root.clone(),
                resource: resource.to_string(),
                usage: u.used / d,
                limit: u.limit / d,
                seen_at: at,
            });
        };
        if let Some(s) = &r.storage {
            push("STORAGE", s, true);
        }
        if let Some(m) = &r.messages {
            push("MESSAGE", m, false);
        }
        for (name, u) in &r.other {
            push(name, u, false);
        }
    }
    out
}

/// What the index remembers, back in the shape of [`RootUsage`] (without
/// the folders), with the time it was seen.
pub fn from_seen(seen: &[QuotaSeen]) -> Vec<(RootUsage, i64)> {
    let mut out: Vec<(RootUsage, i64)> = Vec::new();
    for q in seen {
        let i = match out.iter().position(|(r, _)| r.root == q.root) {
            Some(i) => i,
            None => {
                out.push((
                    RootUsage {
                        root: q.root.clone(),
                        folders: Vec::new(),
                        storage: None,
                        messages: None,
                        other: Vec::new(),
                    },
                    q.seen_at,
                ));
                out.len() - 1
            }
        };
        let (r, at) = &mut out[i];
        *at = (*at).max(q.seen_at);
        match q.resource.as_str() {
            "STORAGE" => {
                r.storage = Some(Usage {
                    used: q.usage.saturating_mul(1024),
                    limit: q.limit.saturating_mul(1024),
                })
            }
            "MESSAGE" => {
                r.messages = Some(Usage {
                    used: q.usage,
                    limit: q.limit,
                })
            }
            other => r.other.push((
                other.to_string(),
                Usage {
                    used: q.usage,
                    limit: q.limit,
                },
            )),
        }
    }
    out
}

/// One GETQUOTAROOT INBOX, remembered in the index; for `backup`, once per
/// account run. Quietly does nothing when the server offers no QUOTA or
/// answers with an error: quota is never a reason to fail a backup.
pub async fn remember_inbox(conn: &mut Connection, store: &SharedStore, account: &str) {
    if !conn.capabilities().has("QUOTA") {
        return;
    }
    let Ok(roots) = conn.quota_root("INBOX").await else {
        return;
    };
    let usage: Vec<RootUsage> = roots
        .iter()
        .map(|r| {
            let (storage, messages, other) = usage_of(r);
            RootUsage {
                root: r.name.clone(),
                folders: vec!["INBOX".to_string()],
                storage,
                messages,
                other,
            }
        })
        .collect();
    let account = account.to_string();
    store.run(move |s| remember(s, &account, &usage)).await;
}

/// The quota last seen of an account, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeenQuota {
    pub root: String,
    pub storage: Option<Usage>,
    pub messages: Option<Usage>,
    /// Unix seconds.
    pub seen_at: i64,
}

pub fn last_seen(store: &Store, account: &str) -> Result<Vec<SeenQuota>, IndexError> {
    Ok(from_seen(&store.index().quota_seen(account)?)
        .into_iter()
        .map(|(r, at)| SeenQuota {
            root: r.root,
            storage: r.storage,
            messages: r.messages,
            seen_at: at,
        })
        .collect())
}

/// Remembers quota in the store's index. Best effort: quota is a
/// convenience for `status`, never a reason to fail a run.
pub fn remember(store: &Store, account: &str, roots: &[RootUsage]) {
    let _ = store
        .index()
        .record_quota(account, &seen_rows(roots, now()));
}

/// `mailkeep quota ACCOUNT`. Remembers what it saw when the store exists
/// and no other run holds it (a running backup is not waited for).
pub async fn quota(config: &Config, name: &str, store_root: &Path) -> Result<QuotaReport, OpError> {
    let acct = config.account(name)?;
    let mut conn = connect(name, acct).await?;
    let host = conn.endpoint().host.clone();
    let folders = if conn.capabilities().has("QUOTA") {
        conn.list().await?
    } else {
        Vec::new()
    };
    let folders: Vec<Folder> = folders
        .into_iter()
        .filter(|f| acct.wants_folder(&f.display))
        .collect();
    let roots = read_quota(&mut conn, &folders).await?;
    let _ = conn.logout().await;
    if let Some(roots) = &roots {
        if store_root.join("index.sqlite").exists() {
            match Store::open(store_root) {
                Ok(s) => remember(&s, name, roots),
                Err(StoreError::Locked(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(QuotaReport {
        account: name.to_string(),
        host,
        roots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::QuotaResource;

    #[test]
    fn storage_is_kib_on_the_wire_and_bytes_here() {
        let r = QuotaRoot {
            name: "User quota".into(),
            resources: vec![
                QuotaResource {
                    name: "STORAGE".into(),
                    usage: 4_687_500,
                    limit: 4_882_813,
                },
                QuotaResource {
                    name: "MESSAGE".into(),
                    usage: 12034,
                    limit: 50000,
                },
            ],
        };
        let (s, m, other) = usage_of(&r);
        let s = s.unwrap();
        assert_eq!(s.used, 4_800_000_000);
        assert_eq!(s.limit, 4_882_813 * 1024);
        assert_eq!(m.map(|m| (m.used, m.limit)), Some((12034, 50000)));
        assert!(other.is_empty());
        let roots = vec![RootUsage {
            root: r.name.clone(),
            folders: vec!["INBOX".into()],
            storage: Some(s),
            messages: m,
            other,
        }];
        let rows = seen_rows(&roots, 7);
        assert_eq!(rows[0].usage, 4_687_500);
        let back = from_seen(&rows);
        assert_eq!(back[0].0.storage, Some(s));
        assert_eq!(back[0].0.messages, m);
        assert_eq!(back[0].1, 7);
    }
}
