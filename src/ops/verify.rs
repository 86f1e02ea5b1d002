//! `mailkeep verify`: the store against itself (index ↔ packs, and with
//! `deep` every message re-hashed), and optionally against the server.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::Config;
use crate::model::Uid;
use crate::store::{RepairReport, Store, VerifyReport};

use super::{connect, OpError};

pub fn verify_store(
    store: &Store,
    deep: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, OpError> {
    Ok(store.verify(deep, progress)?)
}

/// `mailkeep repair`: a new index from the packs (see `store::repair`),
/// then the search index filled for whatever could not be carried over.
pub fn repair(
    root: &std::path::Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RepairReport, OpError> {
    if !root.join("index.sqlite").exists()
        && !root.join("index.old.sqlite").exists()
        && !root.join("packs").exists()
    {
        return Err(crate::store::StoreError::Missing(root.to_path_buf()).into());
    }
    let report = crate::store::repair(root, progress)?;
    let mut store = Store::open(root)?;
    super::search::index_pending(&mut store, &mut |_, _| {})?;
    Ok(report)
}

/// One row of the server reconciliation table.
#[derive(Debug, Serialize)]
pub struct Reconciled {
    pub folder: String,
    pub on_server: u64,
    /// Server messages that the store holds.
    pub stored: u64,
    /// On the server, not in the store (a backup would fetch them).
    pub missing_in_store: Vec<Uid>,
    /// In the store as still on the server, but the server no longer has them.
    pub only_in_store: Vec<Uid>,
    pub uidvalidity_differs: bool,
}

impl Reconciled {
    pub fn in_step(&self) -> bool {
        self.missing_in_store.is_empty()
            && self.only_in_store.is_empty()
            && !self.uidvalidity_differs
    }
}

/// Compares per-folder UID sets with the server, read-only (EXAMINE).
pub async fn verify_server(
    config: &Config,
    account: &str,
    store: &Store,
) -> Result<Vec<Reconciled>, OpError> {
    let acct = config.account(account)?;
    let mut conn = connect(account, acct).await?;
    let mut rows = Vec::new();
    for folder in conn.list().await? {
        if !folder.selectable || !acct.wants_folder(&folder.display) {
            continue;
        }
        let state = conn.examine(&folder.raw).await?;
        let server: BTreeSet<Uid> = if state.exists == 0 {
            BTreeSet::new()
        } else {
            conn.uid_search_all().await?.into_iter().collect()
        };
        let current = store.index().current_mailbox(account, &folder.raw)?;
        let (held, uidvalidity_differs) = match &current {
            Some(mb) if mb.uidvalidity == state.uidvalidity => {
                let (mut live, mut all) = (BTreeSet::new(), BTreeSet::new());
                store.index().for_each_in_mailbox(mb.id, |m| {
                    if m.gone_at.is_none() && m.archived_at.is_none() {
                        live.insert(m.uid);
                    }
                    all.insert(m.uid);
                    Ok::<(), crate::index::IndexError>(())
                })?;
                (Some((live, all)), false)
            }
            Some(_) => (None, true),
            None => (None, false),
        };
        let (live, all) = held.unwrap_or_default();
        rows.push(Reconciled {
            folder: folder.display.clone(),
            on_server: server.len() as u64,
            stored: server.intersection(&all).count() as u64,
            missing_in_store: server.difference(&all).copied().collect(),
            only_in_store: live.difference(&server).copied().collect(),
            uidvalidity_differs,
        });
    }
    let _ = conn.logout().await;
    rows.sort_by(|a, b| a.folder.cmp(&b.folder));
    Ok(rows)
}
