//! How numbers, errors and reports read for people: byte counts, counts
//! with their noun, error chains and the one-line summaries of each
//! command. Only `cli` formats; `ops` returns reports.

use crate::ops::archive::ArchiveReport;
use crate::ops::backup::AccountReport;
use crate::ops::import::ImportReport;
use crate::ops::quota::{RootUsage, Usage};
use crate::ops::restore::{FolderReport, RestoreReport};

/// Human-readable byte counts: 1.5 MB (decimal units, as mail providers use).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `1 message`, `2 messages`.
pub fn count(n: impl TryInto<u64>, one: &str, many: &str) -> String {
    let n: u64 = n.try_into().unwrap_or(u64::MAX);
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The error and its causes on one line: "a: b: c" (a cause whose text is
/// already there is not repeated).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    crate::ops::failure_text(e)
}

/// `, slowed down by the server 3 times (waited 12.4 s)` when it was, for
/// summary lines; empty otherwise.
pub fn pace_phrase(p: crate::imap::Pace, server: &str) -> String {
    if p.waits == 0 {
        return String::new();
    }
    format!(
        ", slowed down by {server} {} (waited {:.1} s)",
        count(p.waits, "time", "times"),
        p.waited_ms as f64 / 1000.0
    )
}

/// "4.8 GB of 5.0 GB (96%)".
pub fn describe_storage(u: &Usage) -> String {
    match u.percent() {
        Some(p) => format!(
            "{} of {} ({})",
            human_bytes(u.used),
            human_bytes(u.limit),
            percent_text(p)
        ),
        None => format!("{} (no limit)", human_bytes(u.used)),
    }
}

/// "12034 of 50000 (24%)".
pub fn describe_count(u: &Usage) -> String {
    match u.percent() {
        Some(p) => format!("{} of {} ({})", u.used, u.limit, percent_text(p)),
        None => format!("{} (no limit)", u.used),
    }
}

/// Whole percent when that is exact to a tenth, else one decimal: 69.6%
/// is not shown as a 70% that a `--until-below 70%` run did not reach.
pub fn percent_text(p: f64) -> String {
    let r = p.round();
    if (p - r).abs() < 0.05 {
        format!("{r:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// One line per backed-up account, for logs and cron mail.
pub fn backup_summary(r: &AccountReport) -> String {
    if let Some(e) = &r.error {
        return format!("{}: failed: {}", r.account, error_chain(e));
    }
    let refetched: u64 = r.folders.iter().map(|f| f.refetched).sum();
    let known: u64 = r.folders.iter().map(|f| f.recognised).sum();
    let new: u64 = r
        .folders
        .iter()
        .map(|f| f.new_messages)
        .sum::<u64>()
        .saturating_sub(refetched + known);
    let bytes: u64 = r.folders.iter().map(|f| f.new_bytes).sum();
    let dedup: u64 = r.folders.iter().map(|f| f.deduplicated).sum();
    let flags: u64 = r.folders.iter().map(|f| f.flag_updates).sum();
    let gone: u64 = r.folders.iter().map(|f| f.gone).sum();
    let failed = r.failed_folders().count();
    let verb = if r.dry_run { "would fetch" } else { "fetched" };
    let mut s = format!(
        "{}: {}{}, {verb} {new} new ({}",
        r.account,
        if r.interrupted {
            "interrupted after "
        } else {
            ""
        },
        count(r.folders.len(), "folder", "folders"),
        human_bytes(bytes)
    );
    if dedup > 0 {
        s.push_str(&format!(", {dedup} already stored"));
    }
    s.push(')');
    if known > 0 {
        s.push_str(&format!(
            ", {known} more already stored from another folder (not downloaded again)"
        ));
    }
    s.push_str(&format!(
        ", {}, {gone} gone from server",
        count(flags, "flag change", "flag changes")
    ));
    if refetched > 0 {
        s.push_str(&format!(", {refetched} damaged in the store fetched again"));
    }
    if !r.vanished.is_empty() {
        s.push_str(&format!(
            ", {} gone from server",
            count(r.vanished.len(), "folder", "folders")
        ));
    }
    s.push_str(&pace_phrase(r.total_pace(), "the server"));
    s.push_str(&format!(
        ", {failed} failed in {:.1} s",
        r.elapsed.as_secs_f64()
    ));
    s
}

/// One line for the whole restore.
pub fn restore_summary(r: &RestoreReport) -> String {
    let sum = |f: fn(&FolderReport) -> u64| r.folders.iter().map(f).sum::<u64>();
    let in_store = sum(|f| f.in_store);
    let appended = sum(|f| f.appended);
    let bytes = sum(|f| f.appended_bytes);
    let already = sum(|f| f.already_there);
    let converted = sum(|f| f.converted);
    let copied = sum(|f| f.copied);
    let refused = sum(|f| f.refused.len() as u64);
    let failed = r.folders.iter().filter(|f| f.error.is_some()).count();
    let copied = if copied > 0 {
        format!(", {copied} of them copied on the server")
    } else {
        String::new()
    };
    let verb = if r.dry_run {
        "would append"
    } else {
        "appended"
    };
    let to = if r.source == r.target {
        r.target.clone()
    } else {
        format!("{} to {}", r.source, r.target)
    };
    format!(
        "restore {to}: {}, {in_store} in store, {verb} {appended} ({}{copied}), {already} already there, \
         {converted} converted, {refused} refused{}, {failed} failed in {:.1} s",
        count(r.folders.len(), "folder", "folders"),
        human_bytes(bytes),
        pace_phrase(r.total_pace(), "the target"),
        r.elapsed.as_secs_f64()
    )
}

/// One line for an archive run, for logs and cron mail.
pub fn archive_summary(r: &ArchiveReport) -> String {
    let (n, bytes) = if r.dry_run { r.planned() } else { r.archived() };
    let folders = r
        .folders
        .iter()
        .filter(|f| {
            if r.dry_run {
                f.planned > 0
            } else {
                f.archived > 0
            }
        })
        .count();
    let verb = if r.dry_run {
        "would archive"
    } else {
        "archived"
    };
    let mut s = format!(
        "{}: {verb} {} ({}) from {}",
        r.account,
        count(n, "message", "messages"),
        human_bytes(bytes),
        count(folders, "folder", "folders")
    );
    let storage = |q: &Option<Vec<RootUsage>>| {
        q.as_ref()
            .and_then(|q| q.iter().find_map(|r| r.storage))
            .map(|s| describe_storage(&s))
    };
    if let (Some(b), Some(a)) = (storage(&r.quota_before), storage(&r.quota_after)) {
        let word = if r.dry_run { "about " } else { "" };
        s.push_str(&format!("; quota {b} → {word}{a}"));
    }
    let resumed = r.resumed.expunged + r.resumed.recorded;
    if resumed > 0 {
        s.push_str(&format!("; finished {resumed} from an interrupted run"));
    }
    let failed = r.failed_folders().count();
    if failed > 0 {
        s.push_str(&format!(", {} failed", count(failed, "folder", "folders")));
    }
    s.push_str(&format!(" in {:.1} s", r.elapsed.as_secs_f64()));
    s
}

/// One line for an import, for logs and the store's record of runs.
pub fn import_summary(r: &ImportReport) -> String {
    format!(
        "{}: imported {} ({}) into {}, {} already in the store, {} failed",
        r.account,
        count(r.imported, "message", "messages"),
        human_bytes(r.bytes),
        count(r.folders, "folder", "folders"),
        r.already,
        r.failures.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(human_bytes(4_800_000_000), "4.8 GB");
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(count(1u64, "message", "messages"), "1 message");
        assert_eq!(count(0usize, "message", "messages"), "0 messages");
        assert_eq!(count(2u32, "folder", "folders"), "2 folders");
    }

    #[test]
    fn usage_reads_as_people_say_it() {
        let s = Usage {
            used: 4_800_000_000,
            limit: 5_000_000_000,
        };
        assert_eq!(describe_storage(&s), "4.8 GB of 5.0 GB (96%)");
        assert_eq!(
            describe_count(&Usage {
                used: 12034,
                limit: 50000
            }),
            "12034 of 50000 (24.1%)"
        );
        assert_eq!(percent_text(96.02), "96%");
        assert_eq!(percent_text(69.6), "69.6%");
        assert_eq!(percent_text(99.7), "99.7%");
        assert_eq!(percent_text(0.2), "0.2%");
        assert_eq!(percent_text(100.0), "100%");
    }
}
