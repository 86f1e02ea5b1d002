//! Turns the raw measurements of `benches/compare.sh` into the table and the
//! targets (MET / MISSED), and optionally a JSON file.
//!
//!     bench_report RESULTS.tsv [--json OUT]
//!
//! RESULTS.tsv lines, tab-separated:
//!     m NAME RUN MICROSECONDS PEAK_RSS_KIB MESSAGES BYTES   one measured command
//!     f KEY VALUE                                          a fact (counts, sizes, versions)
//!     t TABLE BYTES                                        index.sqlite bytes per table (dbstat)
//! Every figure shown is the median over the runs of that measurement.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

#[derive(Clone)]
struct M {
    name: String,
    run: u32,
    secs: f64,
    rss_kib: u64,
    messages: u64,
    bytes: u64,
    /// User + system CPU seconds of the process and its children.
    cpu: Option<f64>,
    /// The 1-minute load average right after it.
    load: Option<f64>,
}

struct Med {
    secs: f64,
    rss_kib: u64,
    max_rss_kib: u64,
    messages: u64,
    bytes: u64,
    cpu: Option<f64>,
    samples: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A count, also when written as a float (`2.78873e+09`, as awk prints big sums).
fn num(s: &str) -> u64 {
    let s = s.trim();
    s.parse()
        .ok()
        .or_else(|| s.parse::<f64>().ok().map(|f| f.round() as u64))
        .unwrap_or(0)
}

fn mb(bytes: f64) -> f64 {
    bytes / 1e6
}

struct Report {
    facts: BTreeMap<String, String>,
    tables: Vec<(String, u64)>,
    all: Vec<M>,
    med: BTreeMap<String, Med>,
    out: String,
    targets: Vec<Value>,
}

impl Report {
    fn fact(&self, k: &str) -> Option<&str> {
        self.facts.get(k).map(String::as_str)
    }
    fn fact_u(&self, k: &str) -> u64 {
        self.fact(k).map(num).unwrap_or(0)
    }
    fn m(&self, name: &str) -> Option<&Med> {
        self.med.get(name)
    }

    /// One table row: wall, msg/s, MB/s, peak RSS and ratios to other rows.
    fn row(&mut self, label: &str, name: &str, vs: &[(&str, &str)]) {
        let Some(m) = self.m(name) else { return };
        let (secs, msgs, bytes, rss, cpu) = (m.secs, m.messages, m.bytes, m.rss_kib, m.cpu);
        let cpu = match cpu {
            Some(c) if c < 1.0 => format!("{:.0} ms", c * 1e3),
            Some(c) => format!("{c:.2} s"),
            None => "-".to_string(),
        };
        let rate = |n: u64, unit: f64| {
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.0}", n as f64 / unit / secs)
            }
        };
        let mbs = if bytes == 0 {
            "-".to_string()
        } else {
            format!("{:.1}", mb(bytes as f64) / secs)
        };
        let mut ratios = Vec::new();
        for (other, short) in vs {
            if let Some(o) = self.m(other) {
                ratios.push(format!("{:.2}× {short}", secs / o.secs));
            }
        }
        let wall = if secs < 1.0 {
            format!("{:.1} ms", secs * 1e3)
        } else {
            format!("{secs:.2} s")
        };
        let _ = writeln!(
            self.out,
            "  {label:<40} {wall:>10} {cpu:>9} {:>8} {mbs:>7} {:>8.1} MB  {}",
            rate(msgs, 1.0),
            rss as f64 * 1024.0 / 1e6,
            ratios.join(", ")
        );
    }

    fn heading(&mut self, h: &str) {
        let _ = writeln!(self.out, "\n{h}");
    }

    fn target(&mut self, what: &str, goal: &str, value: String, met: Option<bool>) {
        let verdict = match met {
            Some(true) => "MET",
            Some(false) => "MISSED",
            None => "NOT MEASURED",
        };
        let _ = writeln!(self.out, "  {verdict:<7} {what}: {value} (target {goal})");
        self.targets.push(json!({
            "target": what, "goal": goal, "value": value, "met": met,
        }));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        eprintln!("usage: bench_report RESULTS.tsv [--json OUT]");
        std::process::exit(2)
    });
    let mut json_out = None;
    while let Some(a) = args.next() {
        if a == "--json" {
            json_out = args.next();
        }
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("bench_report: cannot read {path}: {e}");
        std::process::exit(2)
    });
    let mut r = Report {
        facts: BTreeMap::new(),
        tables: Vec::new(),
        all: Vec::new(),
        med: BTreeMap::new(),
        out: String::new(),
        targets: Vec::new(),
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["m", name, run, us, rss, msgs, bytes, rest @ ..] => r.all.push(M {
                name: name.to_string(),
                run: run.parse().unwrap_or(0),
                secs: us.parse::<f64>().unwrap_or(f64::NAN) / 1e6,
                rss_kib: num(rss),
                messages: num(msgs),
                bytes: num(bytes),
                cpu: rest
                    .first()
                    .and_then(|c| c.parse::<f64>().ok())
                    .map(|c| c / 1e6),
                load: rest.get(1).and_then(|l| l.parse().ok()),
            }),
            ["f", k, v] => {
                r.facts.insert(k.to_string(), v.to_string());
            }
            ["t", t, b] => r.tables.push((t.to_string(), num(b))),
            _ => {}
        }
    }
    let mut names: Vec<String> = r.all.iter().map(|m| m.name.clone()).collect();
    names.sort();
    names.dedup();
    for n in names {
        let ms: Vec<&M> = r.all.iter().filter(|m| m.name == n).collect();
        let med = Med {
            secs: median(ms.iter().map(|m| m.secs).collect()),
            rss_kib: median(ms.iter().map(|m| m.rss_kib as f64).collect()) as u64,
            max_rss_kib: ms.iter().map(|m| m.rss_kib).max().unwrap_or(0),
            messages: median(ms.iter().map(|m| m.messages as f64).collect()) as u64,
            bytes: median(ms.iter().map(|m| m.bytes as f64).collect()) as u64,
            cpu: {
                let v: Vec<f64> = ms.iter().filter_map(|m| m.cpu).collect();
                (!v.is_empty()).then(|| median(v))
            },
            samples: ms.len(),
        };
        r.med.insert(n, med);
    }

    let messages = r.fact_u("gen_messages");
    let bytes = r.fact_u("gen_bytes");
    let head = format!(
        "mailkeep benchmark: {messages} generated messages ({:.1} MB) in {} folders; medians of {} runs",
        mb(bytes as f64),
        r.fact("gen_folders").unwrap_or("?"),
        r.fact("runs").unwrap_or("?")
    );
    let _ = writeln!(r.out, "{head}");
    for k in [
        "date",
        "machine",
        "kernel",
        "mailkeep",
        "dovecot",
        "mbsync",
        "offlineimap",
    ] {
        if let Some(v) = r.fact(k) {
            let v = v.to_string();
            let _ = writeln!(r.out, "  {k:<12} {v}");
        }
    }
    let _ = writeln!(
        r.out,
        "\n  {:<40} {:>10} {:>9} {:>8} {:>7} {:>11}  ratio of wall times",
        "", "wall", "CPU", "msg/s", "MB/s", "peak RSS"
    );

    r.heading("Full fetch into an empty store (server warm; mailkeep includes search indexing)");
    r.row("raw UID FETCH, one connection (limit)", "raw_fetch", &[]);
    r.row("mbsync → Maildir", "mbsync", &[("raw_fetch", "limit")]);
    r.row(
        "OfflineIMAP → Maildir",
        "offlineimap",
        &[("raw_fetch", "limit")],
    );
    r.row(
        "mailkeep backup",
        "mk_backup_first",
        &[
            ("raw_fetch", "limit"),
            ("mbsync", "mbsync"),
            ("offlineimap", "OfflineIMAP"),
        ],
    );
    r.row(
        "  of which search indexing (reindex)",
        "mk_reindex",
        &[("mk_backup_first", "of backup")],
    );

    if let Some((bytes, secs)) = r.m("mk_backup_capped").map(|m| (m.bytes, m.secs)) {
        // Four connections (the default --jobs) at the proxy's rate each.
        let rate = r
            .fact("capped_rate_mb")
            .map_or(10.0, |v| v.parse().unwrap_or(10.0));
        let floor = mb(bytes as f64) / (4.0 * rate);
        r.heading(&format!(
            "Full fetch, each connection capped at {rate} MB/s (proxy, 5 ms each way; 4 connections: at least {floor:.1} s)"
        ));
        r.row(
            "mailkeep backup",
            "mk_backup_capped",
            &[("mk_backup_first", "uncapped")],
        );
        let _ = writeln!(
            r.out,
            "  {:<40} {:>10.2}×",
            format!("  against 4 × {rate} MB/s"),
            secs / floor
        );
    }

    r.heading("Re-run, nothing changed");
    r.row("raw LOGIN + LIST-STATUS (limit)", "raw_list_status", &[]);
    r.row("mbsync", "mbsync_nochange", &[("raw_list_status", "limit")]);
    r.row(
        "OfflineIMAP",
        "offlineimap_nochange",
        &[("raw_list_status", "limit")],
    );
    r.row(
        "mailkeep backup",
        "mk_backup_nochange",
        &[
            ("raw_list_status", "limit"),
            ("mbsync_nochange", "mbsync"),
            ("offlineimap_nochange", "OfflineIMAP"),
        ],
    );
    r.heading("Re-run after 1 % new mail and 10 % flag changes (msg/s: changes per second)");
    r.row(
        "mailkeep backup",
        "mk_backup_incremental",
        &[("raw_list_status", "limit")],
    );

    let reps: Vec<String> = r
        .med
        .keys()
        .filter(|k| k.starts_with("search_"))
        .cloned()
        .collect();
    if !reps.is_empty() {
        let n = r.m(&reps[0]).map(|m| m.samples).unwrap_or(0);
        r.heading(&format!(
            "Search, whole process (median of {n}; results listed of all matches; --limit 50)"
        ));
        for k in &reps {
            let label = k.trim_start_matches("search_");
            let q = r.fact(&format!("query_{label}")).unwrap_or("?").to_string();
            let hits = r.fact(&format!("hits_{label}")).unwrap_or("?").to_string();
            let all = r
                .fact(&format!("matches_{label}"))
                .unwrap_or("?")
                .to_string();
            r.row(&format!("{label}: `{q}` ({hits} of {all})"), k, &[]);
        }
    }

    r.heading("Restore into an empty account, loopback");
    r.row(
        "raw MULTIAPPEND ×200, LITERAL+ (limit)",
        "restore_raw_multi",
        &[],
    );
    r.row(
        "raw one APPEND at a time",
        "restore_raw_single",
        &[("restore_raw_multi", "limit")],
    );
    r.row(
        "mailkeep restore",
        "restore_mk",
        &[
            ("restore_raw_multi", "limit"),
            ("restore_raw_single", "one-at-a-time"),
        ],
    );
    if let Some(m) = r.m("restore30_mk") {
        let (n, b) = (m.messages, m.bytes);
        let folders = r.fact("subset_folders").unwrap_or("?").to_string();
        r.heading(&format!(
            "Restore at 30 ms round trip (delay proxy; {folders} folders, {n} messages, {:.1} MB)",
            mb(b as f64)
        ));
    }
    r.row("raw MULTIAPPEND ×200, LITERAL+", "restore30_raw_multi", &[]);
    r.row(
        "raw one APPEND at a time",
        "restore30_raw_single",
        &[("restore30_raw_multi", "multi")],
    );
    r.row(
        "mailkeep restore",
        "restore30_mk",
        &[
            ("restore30_raw_multi", "multi"),
            ("restore30_raw_single", "one-at-a-time"),
        ],
    );

    if r.m("big_mk_backup").is_some() {
        let b = r.fact_u("big_bytes");
        r.heading(&format!(
            "One message of {:.1} MB (peak memory)",
            mb(b as f64)
        ));
        r.row("raw fetch", "big_raw_fetch", &[]);
        r.row("mbsync", "big_mbsync", &[]);
        r.row(
            "mailkeep backup",
            "big_mk_backup",
            &[("big_raw_fetch", "limit")],
        );
        r.row("mailkeep restore", "big_mk_restore", &[]);
    }

    // Sizes, against the messages' bytes when the first backup ran.
    let base = r.fact_u("bytes_at_sizes").max(1) as f64;
    let total = r.fact_u("size_mk_total") as f64;
    let packs = r.fact_u("size_mk_packs") as f64;
    let index = r.fact_u("size_mk_index") as f64;
    let search: u64 = r
        .tables
        .iter()
        .filter(|(t, _)| t.starts_with("search_") || t.contains("autoindex_search"))
        .map(|(_, b)| *b)
        .sum();
    // Format 2 keeps the search index in search.sqlite; format 1 in index.sqlite.
    let search = search as f64 + r.fact_u("size_mk_search") as f64;
    let rest = total - packs - search;
    let random = r.fact_u("gen_random_b64") as f64;
    r.heading(&format!(
        "Store size on disk, against the messages' {:.1} MB ({:.0} % of which is base64 of random attachment bytes)",
        mb(base),
        100.0 * random / bytes.max(1) as f64
    ));
    let pct = |x: f64| 100.0 * x / base;
    let mut size_rows = vec![
        ("mailkeep store".to_string(), total),
        ("  packs".to_string(), packs),
        ("  index.sqlite".to_string(), index),
        (
            "  search index (search tables or search.sqlite)".to_string(),
            search,
        ),
        ("  the rest of the store".to_string(), rest),
    ];
    for (k, l) in [
        ("size_mbsync", "mbsync Maildir"),
        ("size_offlineimap", "OfflineIMAP Maildir + state"),
    ] {
        if r.fact(k).is_some() {
            size_rows.push((l.to_string(), r.fact_u(k) as f64));
        }
    }
    for (l, v) in &size_rows {
        let _ = writeln!(r.out, "  {l:<40} {:>10.1} MB {:>6.1} %", mb(*v), pct(*v));
    }
    if !r.tables.is_empty() {
        let _ = writeln!(r.out, "  index.sqlite by table (dbstat):");
        let tables = r.tables.clone();
        for (t, b) in tables.iter().take(12) {
            let _ = writeln!(
                r.out,
                "    {t:<38} {:>10.1} MB {:>6.1} %",
                mb(*b as f64),
                pct(*b as f64)
            );
        }
    }

    // Targets.
    r.heading("Targets");
    if total > 0.0 {
        r.target(
            "whole store",
            "≤ 40 %",
            format!("{:.1} %", pct(total)),
            Some(pct(total) <= 40.0),
        );
        r.target(
            "packs",
            "≤ 25 %",
            format!("{:.1} %", pct(packs)),
            Some(pct(packs) <= 25.0),
        );
        r.target(
            "search index",
            "≤ 12 %",
            format!("{:.1} %", pct(search)),
            Some(pct(search) <= 12.0),
        );
        r.target(
            "rest of the store",
            "≤ 3 %",
            format!("{:.1} %", pct(rest)),
            Some(pct(rest) <= 3.0),
        );
    }
    let ratio = |r: &Report, a: &str, b: &str| -> Option<(f64, f64, f64)> {
        let (x, y) = (r.m(a)?.secs, r.m(b)?.secs);
        Some((x / y, x, y))
    };
    match ratio(&r, "mk_backup_first", "raw_fetch") {
        Some((q, x, y)) => r.target(
            "first backup vs raw fetch",
            "≤ 2×",
            format!("{q:.2}× ({x:.2} s vs {y:.2} s)"),
            Some(q <= 2.0),
        ),
        None => r.target("first backup vs raw fetch", "≤ 2×", "-".into(), None),
    }
    match ratio(&r, "mk_backup_nochange", "raw_list_status") {
        Some((q, x, y)) => r.target(
            "no-change re-run vs one round trip",
            "≤ 2×",
            format!("{q:.2}× ({:.0} ms vs {:.0} ms)", x * 1e3, y * 1e3),
            Some(q <= 2.0),
        ),
        None => r.target(
            "no-change re-run vs one round trip",
            "≤ 2×",
            "-".into(),
            None,
        ),
    }
    let mk_runs: Vec<(String, u64)> = r
        .med
        .iter()
        .filter(|(k, _)| {
            k.starts_with("mk_")
                || k.starts_with("search_")
                || k.starts_with("restore_mk")
                || k.starts_with("restore30_mk")
        })
        .map(|(k, m)| (k.clone(), m.max_rss_kib))
        .collect();
    if let Some((k, kib)) = mk_runs.iter().max_by_key(|(_, v)| *v) {
        let v = *kib as f64 * 1024.0 / 1e6;
        r.target(
            "peak memory, the whole mailbox",
            "≤ 100 MB",
            format!("{v:.1} MB ({k})"),
            Some(v <= 100.0),
        );
    }
    let big: Vec<(String, u64)> = r
        .med
        .iter()
        .filter(|(k, _)| k.starts_with("big_mk_"))
        .map(|(k, m)| (k.clone(), m.max_rss_kib))
        .collect();
    match big.iter().max_by_key(|(_, v)| *v) {
        Some((k, kib)) => {
            let v = *kib as f64 * 1024.0 / 1e6;
            r.target(
                "peak memory, one big message",
                "≤ 100 MB",
                format!("{v:.1} MB ({k})"),
                Some(v <= 100.0),
            )
        }
        None => r.target("peak memory, one big message", "≤ 100 MB", "-".into(), None),
    }
    let searches: Vec<(String, f64)> = reps
        .iter()
        .filter_map(|k| {
            Some((
                k.trim_start_matches("search_").to_string(),
                r.m(k)?.secs * 1e3,
            ))
        })
        .collect();
    if !searches.is_empty() {
        let worst = searches.iter().map(|(_, v)| *v).fold(0.0, f64::max);
        let list = searches
            .iter()
            .map(|(k, v)| format!("{k} {v:.0} ms"))
            .collect::<Vec<_>>()
            .join(", ");
        let on = if messages < 100_000 {
            format!(" — on {messages} messages, the target is for 100,000")
        } else {
            String::new()
        };
        r.target(
            "search median, every query",
            "≤ 50 ms on 100,000 messages",
            format!("{list}{on}"),
            Some(worst <= 50.0),
        );
    }
    match ratio(&r, "restore_mk", "restore_raw_multi") {
        Some((q, x, y)) => r.target(
            "restore vs raw MULTIAPPEND, loopback",
            "≤ 2×",
            format!("{q:.2}× ({x:.2} s vs {y:.2} s)"),
            Some(q <= 2.0),
        ),
        None => r.target(
            "restore vs raw MULTIAPPEND, loopback",
            "≤ 2×",
            "-".into(),
            None,
        ),
    }
    match ratio(&r, "restore30_raw_single", "restore30_mk") {
        Some((q, x, y)) => r.target(
            "restore at 30 ms vs one APPEND at a time",
            "≥ 20× faster",
            format!("{q:.1}× faster ({y:.2} s vs {x:.2} s)"),
            Some(q >= 20.0),
        ),
        None => r.target(
            "restore at 30 ms vs one APPEND at a time",
            "≥ 20× faster",
            "-".into(),
            None,
        ),
    }
    if let Some(h) = r.m("harness_true") {
        let v = h.secs * 1e3;
        let _ = writeln!(
            r.out,
            "\n(each wall time includes {v:.1} ms of measuring: `/usr/bin/time -v true` took that)"
        );
    }
    print!("{}", r.out);

    if let Some(out) = json_out {
        let medians: serde_json::Map<String, Value> = r
            .med
            .iter()
            .map(|(k, m)| {
                (
                    k.clone(),
                    json!({
                        "wall_s": m.secs,
                        "peak_rss_kib": m.rss_kib,
                        "max_peak_rss_kib": m.max_rss_kib,
                        "messages": m.messages,
                        "bytes": m.bytes,
                        "msg_per_s": if m.messages > 0 { Some(m.messages as f64 / m.secs) } else { None },
                        "mb_per_s": if m.bytes > 0 { Some(mb(m.bytes as f64) / m.secs) } else { None },
                        "cpu_s": m.cpu,
                        "samples": m.samples,
                    }),
                )
            })
            .collect();
        let runs: Vec<Value> = r
            .all
            .iter()
            .map(|m| {
                json!({"name": m.name, "run": m.run, "wall_s": m.secs, "peak_rss_kib": m.rss_kib,
                       "messages": m.messages, "bytes": m.bytes, "cpu_s": m.cpu, "load1": m.load})
            })
            .collect();
        let doc = json!({
            "facts": r.facts,
            "medians": medians,
            "measurements": runs,
            "index_tables_bytes": r.tables.iter().map(|(t, b)| (t.clone(), json!(b))).collect::<serde_json::Map<_, _>>(),
            "sizes": {
                "messages_bytes": base, "store": total, "packs": packs, "index": index,
                "search": search, "rest": rest,
                "mbsync": r.fact_u("size_mbsync"), "offlineimap": r.fact_u("size_offlineimap"),
            },
            "targets": r.targets,
            "table": r.out,
        });
        let text = serde_json::to_string_pretty(&doc).expect("json");
        if let Err(e) = std::fs::write(&out, text + "\n") {
            eprintln!("bench_report: cannot write {out}: {e}");
            std::process::exit(2);
        }
        eprintln!("wrote {out}");
    }
}
