//! `mailkeep migrate --batch FILE [--shard K/N]`: many mailboxes, one line
//! of a CSV file each.
//!
//! The first line that is not blank or a `#` comment names the columns.
//! Each side is either an account of the config file (`source`, `target`)
//! or given in the line: `source_host`, `source_user`,
//! `source_password_command`, and optionally `source_port`, `source_tls`
//! (`implicit`, `starttls`, `none`), `source_ca_file`; the same with
//! `target_`. A `name` column, when there, names the mailbox in the output.
//!
//! Mailboxes run one after the other, each as `migrate` would run it; a
//! re-run of the same batch moves only what is new (each line is a
//! migrate of its own, resumable the same way). `--shard K/N` takes the
//! lines whose 1-based position, counted over the mailbox lines only, is K
//! modulo N, so that N jobs of a scheduler share one file, each with its
//! own store.

use std::path::Path;

use crate::config::AccountConfig;
use crate::model::TlsMode;
use crate::ops::migrate::MigrateOptions;
use crate::ops::OpError;
use crate::store::SharedStore;

use super::migrate::{rules, run_one, BatchArgs};
use super::Globals;

/// One mailbox of the batch: where it was in the file, and its two accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct Mailbox {
    /// 1-based line number in the file.
    pub line: usize,
    pub name: String,
    pub source: Side,
    pub target: Side,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Side {
    /// An account of the config file.
    Named(String),
    /// Given in the line; the name is made from the user and host.
    Inline(String, Box<AccountConfig>),
}

impl Side {
    fn name(&self) -> &str {
        match self {
            Side::Named(n) | Side::Inline(n, _) => n,
        }
    }
}

pub async fn run(
    g: &Globals,
    args: &BatchArgs,
    file: &Path,
    shard: Option<(usize, usize)>,
) -> Result<i32, OpError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        OpError::usage(
            format!("cannot read the batch file `{}`: {e}", file.display()),
            Some("give a CSV file with one mailbox per line (see docs/migrate.md)"),
        )
    })?;
    let all = parse(&text).map_err(|e| {
        OpError::usage(
            format!("batch file `{}`: {e}", file.display()),
            Some("the first line names the columns: `source,target` (accounts of the config file) or `source_host,source_user,source_password_command,target_host,target_user,target_password_command`"),
        )
    })?;
    let mine: Vec<Mailbox> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|(k, n)| i % n == k - 1))
        .map(|(_, m)| m)
        .collect();
    let mut config = g.load_config()?;
    for m in &mine {
        for side in [&m.source, &m.target] {
            match side {
                Side::Named(n) => {
                    config
                        .account(n)
                        .map_err(|e| line_error(file, m.line, e.into()))?;
                }
                Side::Inline(n, acct) => {
                    if config.accounts.get(n).is_some_and(|a| a != acct.as_ref()) {
                        return Err(OpError::usage(
                            format!(
                                "{}:{}: the account `{n}` made from this line is also in the config file, with other settings",
                                file.display(),
                                m.line
                            ),
                            Some("name the config's account in a `source`/`target` column, or remove it from the config"),
                        ));
                    }
                    if !config.accounts.contains_key(n) {
                        config
                            .add_account(n, acct.as_ref().clone())
                            .map_err(|e| line_error(file, m.line, e.into()))?;
                    }
                }
            }
        }
    }
    if mine.is_empty() {
        println!(
            "migrate --batch {}: no mailboxes{}",
            file.display(),
            shard.map_or(String::new(), |(k, n)| format!(" in shard {k}/{n}"))
        );
        return Ok(0);
    }
    let rules = rules(&args.map, &args.exclude)?;
    let store = if args.dry_run {
        None
    } else {
        Some(SharedStore::new(g.store_to_write()?))
    };
    let mut lines = Vec::new();
    let mut codes = Vec::new();
    let mut failed = 0usize;
    for m in &mine {
        if g.interrupt.is_raised() {
            break;
        }
        let opts = MigrateOptions {
            source: m.source.name().to_string(),
            target: m.target.name().to_string(),
            folders: args.folder.clone(),
            rules: rules.clone(),
            jobs: args.jobs,
            interrupt: g.interrupt.clone(),
            retries: 3,
        };
        let (code, line) = match &store {
            Some(store) => run_one(g, &config, store, &opts, Some(&m.name)).await,
            None => match crate::ops::migrate::dry_run(&config, &opts).await {
                Ok(d) => {
                    let total: u64 = d.folders.iter().filter_map(|f| f.messages).sum();
                    (
                        0,
                        format!(
                            "migrate {} to {} (dry run): {} folders, {total} messages, {} left out",
                            opts.source,
                            opts.target,
                            d.folders.len(),
                            d.skipped.len()
                        ),
                    )
                }
                Err(e) => {
                    super::report_error(&e);
                    (
                        super::combine(vec![Some(e.kind())]),
                        format!(
                            "migrate {} to {}: failed: {}",
                            opts.source,
                            opts.target,
                            super::error_chain(&e)
                        ),
                    )
                }
            },
        };
        if code != 0 {
            failed += 1;
        }
        let line = format!("{}: {line}", m.name);
        if store.is_none() {
            println!("{line}");
        }
        lines.push(line);
        codes.push(code);
    }
    let done = codes.len();
    println!(
        "migrate --batch {}{}: {done} of {} mailboxes run, {} ok, {failed} failed",
        file.display(),
        shard.map_or(String::new(), |(k, n)| format!(" (shard {k}/{n})")),
        mine.len(),
        done - failed,
    );
    if failed > 0 {
        eprintln!("failed:");
        for (l, c) in lines.iter().zip(&codes) {
            if *c != 0 {
                eprintln!("  {l}");
            }
        }
        eprintln!("hint: run the same batch again: every mailbox resumes where it stopped, nothing is copied twice");
    }
    if let Some(code) = g.interrupt.exit_code() {
        return Ok(code);
    }
    // One mailbox failed among others: partly done (1); all failed the same
    // way: that way's code.
    Ok(
        match codes.iter().filter(|c| **c != 0).collect::<Vec<_>>() {
            v if v.is_empty() => 0,
            v if v.len() == codes.len() && v.iter().all(|c| *c == v[0]) => *v[0],
            _ => 1,
        },
    )
}

fn line_error(file: &Path, line: usize, e: OpError) -> OpError {
    OpError::usage(
        format!("{}:{line}: {}", file.display(), super::error_chain(&e)),
        e.hint().as_deref(),
    )
}

/// Reads a batch file: a header line, then one mailbox per line.
pub fn parse(text: &str) -> Result<Vec<Mailbox>, String> {
    let mut header: Option<Vec<String>> = None;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_csv(line).map_err(|e| format!("line {lineno}: {e}"))?;
        let Some(head) = &header else {
            let cols: Vec<String> = fields
                .iter()
                .map(|f| f.trim().to_ascii_lowercase())
                .collect();
            for c in &cols {
                if !COLUMNS.contains(&c.as_str()) {
                    return Err(format!(
                        "line {lineno}: unknown column `{c}` (columns: {})",
                        COLUMNS.join(", ")
                    ));
                }
            }
            header = Some(cols);
            continue;
        };
        if fields.len() != head.len() {
            return Err(format!(
                "line {lineno}: {} fields, but the header names {} columns",
                fields.len(),
                head.len()
            ));
        }
        let get = |col: &str| {
            head.iter()
                .position(|h| h == col)
                .map(|p| fields[p].trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let source = side(&get, "source").map_err(|e| format!("line {lineno}: {e}"))?;
        let target = side(&get, "target").map_err(|e| format!("line {lineno}: {e}"))?;
        if source.name() == target.name() {
            return Err(format!(
                "line {lineno}: the source and the target are the same account `{}`",
                source.name()
            ));
        }
        let name = get("name").unwrap_or_else(|| source.name().to_string());
        out.push(Mailbox {
            line: lineno,
            name,
            source,
            target,
        });
    }
    if header.is_none() {
        return Err("it is empty: no header line".into());
    }
    Ok(out)
}

const COLUMNS: &[&str] = &[
    "name",
    "source",
    "source_host",
    "source_user",
    "source_password_command",
    "source_port",
    "source_tls",
    "source_ca_file",
    "target",
    "target_host",
    "target_user",
    "target_password_command",
    "target_port",
    "target_tls",
    "target_ca_file",
];

fn side(get: &dyn Fn(&str) -> Option<String>, which: &str) -> Result<Side, String> {
    let col = |c: &str| get(&format!("{which}_{c}"));
    if let Some(n) = get(which) {
        if col("host").is_some() || col("user").is_some() {
            return Err(format!("`{which}` names an account and `{which}_host`/`{which}_user` give one: use one of them"));
        }
        return Ok(Side::Named(n));
    }
    let (Some(host), Some(user)) = (col("host"), col("user")) else {
        return Err(format!("no {which}: give `{which}` (an account of the config file) or `{which}_host` and `{which}_user`"));
    };
    let mut a = AccountConfig::new(host.clone(), user.clone());
    a.password_command = col("password_command");
    if a.password_command.is_none() {
        return Err(format!(
            "no `{which}_password_command` for {user} on {host}: a batch gives each password as a command that prints it"
        ));
    }
    if let Some(p) = col("port") {
        a.port = Some(
            p.parse()
                .map_err(|_| format!("`{which}_port` `{p}` is not a port number"))?,
        );
    }
    if let Some(t) = col("tls") {
        a.tls = match t.to_ascii_lowercase().as_str() {
            "implicit" => TlsMode::Implicit,
            "starttls" => TlsMode::Starttls,
            "none" => TlsMode::None,
            _ => {
                return Err(format!(
                    "`{which}_tls` `{t}` is not one of implicit, starttls, none"
                ))
            }
        };
    }
    a.ca_file = col("ca_file").map(Into::into);
    let name = account_name(&user, &host, a.port);
    Ok(Side::Inline(name, Box::new(a)))
}

/// A config-style account name (`[A-Za-z0-9_-]`) for a mailbox given in a
/// line: `alice@example.org` on `imap.example.org` becomes
/// `alice-example_org-imap_example_org` (`.` becomes `_`, anything else
/// outside the set `-`), with `-PORT` when the line gives a port.
fn account_name(user: &str, host: &str, port: Option<u16>) -> String {
    let port = port.map_or(String::new(), |p| format!("-{p}"));
    format!("{user}-{host}{port}")
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            '.' => '_',
            _ => '-',
        })
        .collect()
}

/// One CSV line: fields split at commas, `"…"` quoting with `""` inside.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.trim().is_empty() && !was_quoted => {
                cur.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    out.push(cur);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_inline_lines() {
        let text = "# office move\n\
                    name,source,target_host,target_user,target_password_command\n\
                    \n\
                    alice,old-alice,imap.new.example,alice@new.example,\"pass show new/alice, work\"\n\
                    ,old-bob,imap.new.example,bob@new.example,pass show new/bob\n";
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].line, 4);
        assert_eq!(got[0].name, "alice");
        assert_eq!(got[0].source, Side::Named("old-alice".into()));
        let Side::Inline(n, a) = &got[0].target else {
            panic!()
        };
        assert_eq!(n, "alice-new_example-imap_new_example");
        assert_eq!(
            a.password_command.as_deref(),
            Some("pass show new/alice, work")
        );
        assert_eq!(got[1].name, "old-bob");
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse("source,target\na\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("1 fields"), "{e}");
        let e = parse("source,nope\n").unwrap_err();
        assert!(e.contains("unknown column `nope`"), "{e}");
        let e = parse("source,target_host,target_user\na,h,u\n").unwrap_err();
        assert!(e.contains("target_password_command"), "{e}");
        let e = parse("source,target\na,a\n").unwrap_err();
        assert!(e.contains("same account"), "{e}");
        let e = parse("source,target\n\"a,b\n").unwrap_err();
        assert!(e.contains("not closed"), "{e}");
        assert!(parse("# nothing\n").unwrap_err().contains("empty"));
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            split_csv("a,\"b,c\",\"d\"\"e\",").unwrap(),
            vec!["a", "b,c", "d\"e", ""]
        );
    }
}
