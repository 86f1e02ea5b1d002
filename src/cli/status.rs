//! `mailkeep status [ACCOUNT] [--json]`

use super::out::outln;
use crate::ops::status::status;
use crate::ops::OpError;

use super::fmt::{describe_count, describe_storage, human_bytes};

use super::{local_time, Globals};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Only this account.
    account: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Globals, args: StatusArgs) -> Result<i32, OpError> {
    let config = g.load_config()?;
    let configured: Vec<String> = config.names();
    let store = g.store_to_read()?;
    if let Some(a) = &args.account {
        let known = configured.contains(a)
            || store
                .index()
                .accounts()
                .unwrap_or_default()
                .iter()
                .any(|(n, _)| n == a);
        if !known {
            return Err(OpError::usage(
                format!("no account `{a}` in the configuration or the store"),
                Some("`mailkeep account list` shows the configured accounts"),
            ));
        }
    }
    let mut st = status(
        Some(&store),
        &g.store_path.display().to_string(),
        &configured,
        args.account.as_deref(),
    )?;
    for a in &mut st.accounts {
        if let Some(e) = config.broken.get(&a.name) {
            a.config_error = Some(super::error_chain(e));
        }
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&st).expect("status serializes")
        );
        return Ok(0);
    }
    let d = &st.disk;
    outln!(
        "store {}: {} ({} unique), {} of mail as received",
        st.store,
        super::count(st.messages, "message", "messages"),
        st.unique_messages,
        human_bytes(st.raw_bytes),
    );
    outln!(
        "  on disk {}: messages {} (packs; {} compressed), index {}, search {}, other {}",
        human_bytes(d.total),
        human_bytes(d.messages),
        human_bytes(st.stored_bytes),
        human_bytes(d.index),
        human_bytes(d.search),
        human_bytes(d.other)
    );
    for a in &st.accounts {
        outln!();
        let origin = if a.kind == "import" {
            " (imported)"
        } else if !a.configured {
            " (not in config)"
        } else {
            ""
        };
        outln!("account {}{origin}", a.name);
        if let Some(e) = &a.config_error {
            outln!("  not usable: {e}");
        }
        let last = if a.kind == "import" {
            "last import"
        } else {
            "last backup"
        };
        match &a.last_run {
            Some(r) => outln!(
                "  {last}: {} — {}",
                local_time(r.started_at),
                r.summary.as_deref().unwrap_or("did not finish")
            ),
            None => outln!("  {last}: never"),
        }
        for q in &a.quota {
            let mut parts = Vec::new();
            if let Some(u) = &q.storage {
                parts.push(describe_storage(u));
            }
            if let Some(u) = &q.messages {
                parts.push(format!("messages {}", describe_count(u)));
            }
            if !parts.is_empty() {
                outln!(
                    "  quota: {} (root `{}`, as of {})",
                    parts.join(", "),
                    q.root,
                    local_time(q.seen_at)
                );
            }
        }
        if a.folders.is_empty() {
            continue;
        }
        let width = a
            .folders
            .iter()
            .map(|f| super::display_width(&f.name))
            .max()
            .unwrap_or(6)
            .max(6);
        outln!(
            "  {:width$}  {:>9}  {:>9}  {:>7}  {:>8}  {:>10}  last sync",
            "folder",
            "on server",
            "in store",
            "gone",
            "archived",
            "size"
        );
        for f in &a.folders {
            outln!(
                "  {}  {:>9}  {:>9}  {:>7}  {:>8}  {:>10}  {}{}",
                super::pad(&f.name, width),
                f.on_server
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                f.stored + f.gone_from_server + f.archived,
                f.gone_from_server,
                f.archived,
                human_bytes(f.raw_bytes),
                f.last_sync_at.map(local_time).unwrap_or_else(|| "-".into()),
                if f.folder_gone {
                    "  (folder gone from server)"
                } else {
                    ""
                }
            );
            if let Some(e) = &f.error {
                outln!("    error: {e}");
            }
        }
    }
    Ok(0)
}
