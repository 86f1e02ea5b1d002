//! `mailkeep search QUERY… [--account A] [--folder PATTERN] [--json] [--limit N]`
//! and `mailkeep reindex`.

use super::out::{errln, outln};
use std::io::{self, Write};

use serde::Serialize;

use crate::index::{SearchHit, SearchPlace};
use crate::ops::search::{self, SearchOptions, SHORT_ID};
use crate::ops::OpError;

use super::progress::Bars;
use super::{local_time, Globals};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Query: words (matching the words that start with them), Japanese text \
(any piece of 2 characters or more) and \"phrases\", without case or width, \
from: to: cc: subject: body: filename: folder: account: before:YYYY-MM-DD after: since: \
has:attachment. All terms must match. Newest first. See docs/archive.md."
)]
pub struct SearchArgs {
    /// The query; several arguments are joined with spaces.
    #[arg(value_name = "QUERY")]
    query: Vec<String>,
    /// Only mail of this account; may repeat.
    #[arg(long, value_name = "NAME")]
    account: Vec<String>,
    /// Only folders matching this pattern (`*` matches anything); may repeat.
    #[arg(long, value_name = "PATTERN")]
    folder: Vec<String>,
    /// Machine-readable output: a JSON array.
    #[arg(long)]
    json: bool,
    /// Show at most N messages, the newest.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
}

pub fn run(g: &Globals, args: SearchArgs) -> Result<i32, OpError> {
    let store = g.store_to_read()?;
    let query = args.query.join(" ");
    let res = search::search(
        &store,
        &query,
        &SearchOptions {
            accounts: args.account.clone(),
            folders: args.folder.clone(),
            limit: args.limit as usize,
        },
    )?;
    let several_accounts = store.index().accounts()?.len() > 1;
    let mut out = io::stdout().lock();
    let written = if args.json {
        let items: Vec<JsonHit> = res.hits.iter().map(JsonHit::from).collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&items).expect("results serialize")
        )
    } else {
        res.hits
            .iter()
            .try_for_each(|h| writeln!(out, "{}", line(h, several_accounts)))
    };
    if let Err(e) = written.and_then(|_| out.flush()) {
        drop(out);
        super::out::stdout_failed(e);
    }
    if !g.quiet {
        if res.hits.is_empty() {
            errln!("no messages matched");
        } else if res.more {
            errln!(
                "note: more messages matched; these are the newest {} (`--limit N` shows more)",
                res.hits.len()
            );
        }
        if res.not_indexed > 0 {
            errln!(
                "note: {} stored messages are not in the search index yet; the next backup adds them, or run `mailkeep reindex`",
                res.not_indexed
            );
        }
    }
    Ok(0)
}

pub fn reindex(g: &Globals) -> Result<i32, OpError> {
    if !g.store_path.join("index.sqlite").exists() {
        return Err(OpError::usage(
            format!("no store at `{}`", g.store_path.display()),
            Some("run `mailkeep backup` first, or pass `--store DIR`"),
        ));
    }
    let mut store = g.store_to_write()?;
    let bars = Bars::new(g.progress);
    let bar = bars.counter(0, "indexing");
    let report = search::reindex(&mut store, &mut |done, total| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    })?;
    bars.clear();
    outln!(
        "indexed {} messages for search in {:.1} s",
        report.indexed,
        report.elapsed.as_secs_f64()
    );
    if report.unreadable > 0 {
        errln!(
            "warning: {} stored messages could not be read and are not searchable",
            report.unreadable
        );
        errln!("hint: run `mailkeep verify --deep` to see which, and `mailkeep repair`");
        return Ok(crate::ops::FailureKind::Store.exit_code());
    }
    Ok(0)
}

/// `2021-03-04 10:22  From            Subject            Folder  id`
fn line(h: &SearchHit, several_accounts: bool) -> String {
    format!(
        "{}  {}  {}  {}  {}",
        local_time(h.date),
        fit(&display_name(&h.from), 24),
        fit(
            if h.subject.is_empty() {
                "(no subject)"
            } else {
                &h.subject
            },
            50
        ),
        folders(&h.places, several_accounts),
        &h.blob.to_hex()[..SHORT_ID]
    )
}

/// The name of `Name <addr>`, else the address.
fn display_name(from: &str) -> String {
    let first = from.split(", ").next().unwrap_or("");
    match first.rfind(" <") {
        Some(i) if i > 0 => first[..i].trim_matches('"').to_string(),
        _ => first.trim_matches(|c| c == '<' || c == '>').to_string(),
    }
}

fn place_name(p: &SearchPlace, several_accounts: bool) -> String {
    if several_accounts {
        format!("{}:{}", p.account, p.folder)
    } else {
        p.folder.clone()
    }
}

/// The first folder, and how many more there are.
fn folders(places: &[SearchPlace], several_accounts: bool) -> String {
    match places {
        [] => "-".into(),
        [one] => place_name(one, several_accounts),
        [first, rest @ ..] => format!("{} (+{})", place_name(first, several_accounts), rest.len()),
    }
}

/// `s` cut or padded to `width` terminal columns (CJK counts two).
fn fit(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    let total: usize = s.chars().map(char_width).sum();
    for c in s.chars() {
        let w = char_width(c);
        if total > width && used + w > width - 1 {
            out.push('…');
            used += 1;
            break;
        }
        out.push(c);
        used += w;
    }
    while used < width {
        out.push(' ');
        used += 1;
    }
    out
}

fn char_width(c: char) -> usize {
    let u = c as u32;
    if c.is_control() {
        return 0;
    }
    let wide = matches!(u,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

#[derive(Serialize)]
struct JsonPlace<'a> {
    account: &'a str,
    folder: &'a str,
    uidvalidity: u32,
    uid: u32,
    internaldate: String,
    size: u64,
    gone_from_server: bool,
    archived: bool,
}

#[derive(Serialize)]
struct JsonHit<'a> {
    id: String,
    short_id: String,
    date: String,
    from: &'a str,
    to: &'a str,
    subject: &'a str,
    message_id: Option<&'a str>,
    has_attachment: bool,
    size: u64,
    folders: Vec<JsonPlace<'a>>,
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

impl<'a> From<&'a SearchHit> for JsonHit<'a> {
    fn from(h: &'a SearchHit) -> Self {
        JsonHit {
            id: h.blob.to_hex(),
            short_id: h.blob.to_hex()[..SHORT_ID].to_string(),
            date: rfc3339(h.date),
            from: &h.from,
            to: &h.to,
            subject: &h.subject,
            message_id: h.message_id.as_deref(),
            has_attachment: h.has_attachment,
            size: h.places.first().map(|p| p.size).unwrap_or(0),
            folders: h
                .places
                .iter()
                .map(|p| JsonPlace {
                    account: &p.account,
                    folder: &p.folder,
                    uidvalidity: p.uidvalidity,
                    uid: p.uid,
                    internaldate: rfc3339(p.internaldate),
                    size: p.size,
                    gone_from_server: p.gone_at.is_some(),
                    archived: p.archived_at.is_some(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_counts_wide_characters() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("見積書", 6), "見積書");
        assert_eq!(fit("見積書の件", 6), "見積… ");
        assert_eq!(fit("abcdefgh", 5), "abcd…");
    }

    #[test]
    fn names_from_addresses() {
        assert_eq!(display_name("田中 太郎 <t@example.jp>, b@x"), "田中 太郎");
        assert_eq!(display_name("t@example.jp"), "t@example.jp");
    }
}
