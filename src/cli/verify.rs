//! `mailkeep verify [--deep] [--server ACCOUNT]`

use super::out::{errln, outln};
use crate::index::MessagePlace;
use crate::ops::verify::{verify_server, verify_store};
use crate::ops::{FailureKind, OpError};
use crate::store::{Damage, VerifyReport};

use super::progress::{bytes_bar, Bars};
use super::{count, Globals};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Also decompress every message and check its hash.
    #[arg(long)]
    deep: bool,
    /// Compare per-folder counts and UIDs with this account's server (read-only).
    #[arg(long, value_name = "ACCOUNT")]
    server: Option<String>,
}

pub async fn run(g: &Globals, args: VerifyArgs) -> Result<i32, OpError> {
    // Not `store_to_read`: what it would warn about is in the report.
    let store = match crate::store::Store::open_read_only(&g.store_path) {
        Err(e) if e.index_damaged() => return Ok(index_damaged(&e.into())),
        other => other?,
    };
    let bars = Bars::new(g.progress);
    let bar = bars
        .counter(0, "")
        .map(|b| bytes_bar(b, if args.deep { "re-hashing" } else { "checking" }.into()));
    let report = verify_store(&store, args.deep, &mut |done, total| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    });
    bars.clear();
    let report = match report {
        Err(e) if e.index_damaged() => return Ok(index_damaged(&e)),
        other => other?,
    };
    let mut failed = None;
    print_report(&report);
    if !report.is_clean() {
        failed = Some(FailureKind::Store);
    }
    if let Some(account) = &args.server {
        let config = g.load_config()?;
        let rows = verify_server(&config, account, &store).await?;
        let width = rows
            .iter()
            .map(|r| super::display_width(&r.folder))
            .max()
            .unwrap_or(6)
            .max(6);
        outln!();
        outln!(
            "{:width$}  {:>9}  {:>7}  {:>16}  {:>13}",
            "folder",
            "on server",
            "stored",
            "missing in store",
            "only in store"
        );
        let mut behind = false;
        for r in &rows {
            outln!(
                "{}  {:>9}  {:>7}  {:>16}  {:>13}{}",
                super::pad(&r.folder, width),
                r.on_server,
                r.stored,
                r.missing_in_store.len(),
                r.only_in_store.len(),
                if r.uidvalidity_differs {
                    "  (UIDVALIDITY changed since the last backup)"
                } else {
                    ""
                }
            );
            behind |= !r.in_step();
        }
        if behind {
            outln!("the store is not in step with the server");
            errln!("hint: `mailkeep backup {account}` fetches what is missing and records what left the server");
            failed = failed.or(Some(FailureKind::Partial));
        } else {
            outln!("every message on the server is in the store");
        }
    }
    Ok(super::combine([failed]))
}

/// What verify says when SQLite cannot read the index file at all.
fn index_damaged(e: &OpError) -> i32 {
    errln!(
        "error: the index file is damaged: {}",
        super::error_chain(e)
    );
    outln!("store: the index file is damaged; the packs were not checked");
    errln!(
        "hint: the index is a cache of the packs, which hold your mail: `mailkeep repair` \
         builds a new one from them, then run `mailkeep verify` again"
    );
    FailureKind::Store.exit_code()
}

/// One line naming where a message is: account, folder, UID, date and
/// subject.
pub fn describe_place(p: &MessagePlace, subject: Option<&str>) -> String {
    let mut s = format!(
        "account `{}`, folder `{}`, UID {}, {}",
        p.account,
        p.folder,
        p.uid,
        super::local_time(p.internaldate)
    );
    if let Some(subj) = subject {
        let short: String = subj.chars().take(60).collect();
        let more = if short.len() < subj.len() { "…" } else { "" };
        s.push_str(&format!(", \"{short}{more}\""));
    }
    s
}

fn fate(on_server: bool) -> &'static str {
    if on_server {
        "still on the server: the next backup fetches it again"
    } else {
        "only in this store: lost unless you have another copy"
    }
}

fn print_damage(d: &Damage) {
    match d.places.split_first() {
        Some((first, rest)) => {
            let also = if rest.is_empty() {
                String::new()
            } else {
                format!(" (and {} more folders)", rest.len())
            };
            errln!(
                "error: damaged message: {}{also}: {}; {}",
                describe_place(first, d.subject.as_deref()),
                d.what,
                fate(d.on_server())
            );
        }
        None => errln!(
            "error: damaged message {} (in no folder): {}",
            d.blob,
            d.what
        ),
    }
}

fn print_report(r: &VerifyReport) {
    for line in &r.index_file {
        errln!("error: the index file is damaged: {line}");
    }
    for d in &r.damaged {
        print_damage(d);
    }
    for p in &r.missing {
        errln!(
            "error: message not in the store: {}: its bytes were lost to damage; {}",
            describe_place(p, None),
            fate(p.on_server())
        );
    }
    for o in &r.other {
        errln!("error: {o}");
    }
    for g in &r.regions {
        let what = g
            .looks_like
            .as_deref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        if g.set_aside {
            errln!(
                "note: pack {:06}: {} damaged bytes at offset {} were set aside earlier{what}; \
                 nothing refers to them",
                g.pack,
                g.len,
                g.offset
            );
        } else {
            errln!(
                "error: pack {:06}: {} damaged bytes at offset {}{what}",
                g.pack,
                g.len,
                g.offset
            );
        }
    }
    for (no, bytes) in &r.unindexed {
        errln!(
            "note: pack {no:06}: {bytes} bytes are not in the index yet (a backup is running, \
             or the next one takes them in)"
        );
    }
    let how = if r.deep {
        "decompressed and re-hashed"
    } else {
        "checked"
    };
    let checked = format!(
        "store: {} in {} {how}",
        count(r.blobs_checked as usize, "message", "messages"),
        count(r.packs_checked as usize, "pack", "packs")
    );
    if r.is_clean() {
        outln!("{checked}, no problems");
        return;
    }
    let on_server: Vec<&MessagePlace> = r
        .damaged
        .iter()
        .filter_map(|d| d.places.iter().find(|p| p.on_server()))
        .chain(r.missing.iter().filter(|p| p.on_server()))
        .collect();
    let damaged = r.damaged.len() + r.missing.len();
    let records = r.regions.iter().filter(|g| !g.set_aside).count();
    let mut parts = Vec::new();
    if damaged > 0 {
        parts.push(format!(
            "{} ({} still on the server, {} only here)",
            count(damaged, "damaged message", "damaged messages"),
            on_server.len(),
            damaged - on_server.len()
        ));
    }
    if records > 0 {
        parts.push(count(records, "damaged record", "damaged records"));
    }
    if !r.index_file.is_empty() {
        parts.push("a damaged index file".into());
    }
    if !r.other.is_empty() {
        parts.push(count(r.other.len(), "other problem", "other problems"));
    }
    outln!("{checked}: {}", parts.join(", "));
    let needs_repair = records > 0
        || !r.index_file.is_empty()
        || !r.other.is_empty()
        || r.damaged.iter().any(|d| !d.on_server());
    let mut accounts: Vec<&str> = on_server.iter().map(|p| p.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let backup = format!("`mailkeep backup {}`", accounts.join(" "));
    if needs_repair {
        errln!(
            "hint: run `mailkeep repair` (it keeps a copy of anything damaged){}",
            if accounts.is_empty() {
                String::new()
            } else {
                format!(", then {backup} to fetch again what is still on the server")
            }
        );
    } else if !accounts.is_empty() {
        errln!("hint: run {backup} to fetch again what is still on the server");
    } else {
        errln!(
            "hint: these are lost unless you have another copy: `mailkeep import` of an export \
             or mbox that holds them puts their bytes back"
        );
    }
}
