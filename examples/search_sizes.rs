//! Measures how big and how fast candidate layouts of the search index are,
//! on a directory of messages (one file each, any depth; e.g. the corpus's
//! `varied/`, or a Maildir written by `benches/compare.sh`):
//!
//!     cargo run --release --example search_sizes -- DIR [DIR…]
//!
//! Each message is decoded as mailkeep decodes it (`search::extract`), its
//! text folded for matching, then written into one SQLite file per layout.
//! Prints, per layout: size on disk (after VACUUM) as a share of the
//! messages' bytes, time to build, and the median time of a few queries.
//! The figures behind docs/benchmarks.md ("Search index").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mailkeep::search::extract;
use mailkeep::search::fold::index_form;
use rusqlite::{params, Connection};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let e = e.unwrap();
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A message's text for the index: (head fields, body).
struct Doc {
    subject: String,
    from: String,
    to: String,
    body: String,
}

/// Words as they are; runs of CJK characters as overlapping bigrams (a run
/// of one character as itself), so that any substring of 2 or more CJK
/// characters is found by the bigrams it is made of.
fn bigrams(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len() + folded.len() / 2);
    let mut run: Vec<char> = Vec::new();
    let flush = |run: &mut Vec<char>, out: &mut String| {
        match run.len() {
            0 => {}
            1 => {
                out.push(' ');
                out.push(run[0]);
            }
            _ => {
                for w in run.windows(2) {
                    out.push(' ');
                    out.push(w[0]);
                    out.push(w[1]);
                }
            }
        }
        run.clear();
    };
    for c in folded.chars() {
        if is_cjk(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF
        | 0xAC00..=0xD7AF | 0xFF66..=0xFF9F | 0x20000..=0x3FFFF)
}

struct Layout {
    name: &'static str,
    ddl: &'static str,
    /// Inserts one document (rowid, doc).
    insert: fn(&Connection, i64, &Doc) -> rusqlite::Result<()>,
    /// Queries: (what, SQL with one `?1`, the parameter).
    queries: fn() -> Vec<(&'static str, &'static str, String)>,
}

fn trigram_insert(c: &Connection, id: i64, d: &Doc) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO f (rowid, subject, sender, recipients, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        index_form(&d.subject),
        index_form(&d.from),
        index_form(&d.to),
        index_form(&d.body)
    ])?;
    Ok(())
}

fn trigram_queries() -> Vec<(&'static str, &'static str, String)> {
    vec![
        (
            "word",
            "SELECT count(*) FROM f WHERE f MATCH ?1",
            "\"message\"".into(),
        ),
        (
            "CJK 2",
            "SELECT count(*) FROM f WHERE body LIKE ?1",
            "%会議%".into(),
        ),
        (
            "field",
            "SELECT count(*) FROM f WHERE f MATCH ?1",
            "sender: \"example\"".into(),
        ),
    ]
}

fn words_insert(c: &Connection, id: i64, d: &Doc) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO f (rowid, subject, sender, recipients, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        bigrams(&index_form(&d.subject)),
        bigrams(&index_form(&d.from)),
        bigrams(&index_form(&d.to)),
        bigrams(&index_form(&d.body))
    ])?;
    Ok(())
}

fn words_queries() -> Vec<(&'static str, &'static str, String)> {
    vec![
        (
            "word",
            "SELECT count(*) FROM f WHERE f MATCH ?1",
            "message".into(),
        ),
        (
            "prefix",
            "SELECT count(*) FROM f WHERE f MATCH ?1",
            "mess*".into(),
        ),
        (
            "CJK 2",
            "SELECT count(*) FROM f WHERE f MATCH ?1",
            "会議".into(),
        ),
        (
            "CJK 4",
            "SELECT count(*) FROM f WHERE f MATCH ?1",
            "会議 議の の資".into(),
        ),
    ]
}

fn split_insert(c: &Connection, id: i64, d: &Doc) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO h (rowid, subject, sender, recipients) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            id,
            bigrams(&index_form(&d.subject)),
            bigrams(&index_form(&d.from)),
            bigrams(&index_form(&d.to))
        ])?;
    c.prepare_cached("INSERT INTO b (rowid, body) VALUES (?1, ?2)")?
        .execute(params![id, bigrams(&index_form(&d.body))])?;
    Ok(())
}

fn split_queries() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("word", "SELECT count(*) FROM (SELECT rowid FROM h WHERE h MATCH ?1 UNION SELECT rowid FROM b WHERE b MATCH ?1)", "message".into()),
        ("prefix", "SELECT count(*) FROM (SELECT rowid FROM h WHERE h MATCH ?1 UNION SELECT rowid FROM b WHERE b MATCH ?1)", "mess*".into()),
        ("CJK 2", "SELECT count(*) FROM (SELECT rowid FROM h WHERE h MATCH ?1 UNION SELECT rowid FROM b WHERE b MATCH ?1)", "会議".into()),
        ("field", "SELECT count(*) FROM h WHERE h MATCH ?1", "sender : example".into()),
    ]
}

fn layouts() -> Vec<Layout> {
    vec![
        Layout {
            name: "trigram, with content (as in 0.1)",
            ddl: "CREATE VIRTUAL TABLE f USING fts5(subject, sender, recipients, body, tokenize = 'trigram')",
            insert: trigram_insert,
            queries: trigram_queries,
        },
        Layout {
            name: "trigram, contentless",
            ddl: "CREATE VIRTUAL TABLE f USING fts5(subject, sender, recipients, body, tokenize = 'trigram', content = '')",
            insert: trigram_insert,
            queries: || trigram_queries().into_iter().filter(|q| q.0 != "CJK 2").collect(),
        },
        Layout {
            name: "words + CJK bigrams, contentless, detail=full",
            ddl: "CREATE VIRTUAL TABLE f USING fts5(subject, sender, recipients, body, tokenize = 'unicode61 remove_diacritics 0', content = '', columnsize = 0)",
            insert: words_insert,
            queries: words_queries,
        },
        Layout {
            name: "words + CJK bigrams, contentless, detail=column",
            ddl: "CREATE VIRTUAL TABLE f USING fts5(subject, sender, recipients, body, tokenize = 'unicode61 remove_diacritics 0', content = '', columnsize = 0, detail = column)",
            insert: words_insert,
            queries: words_queries,
        },
        Layout {
            name: "words + CJK bigrams, contentless, detail=none",
            ddl: "CREATE VIRTUAL TABLE f USING fts5(subject, sender, recipients, body, tokenize = 'unicode61 remove_diacritics 0', content = '', columnsize = 0, detail = none)",
            insert: words_insert,
            queries: words_queries,
        },
        Layout {
            name: "head detail=column + body detail=none",
            ddl: "CREATE VIRTUAL TABLE h USING fts5(subject, sender, recipients, tokenize = 'unicode61 remove_diacritics 0', content = '', columnsize = 0, detail = column);
                  CREATE VIRTUAL TABLE b USING fts5(body, tokenize = 'unicode61 remove_diacritics 0', content = '', columnsize = 0, detail = none)",
            insert: split_insert,
            queries: split_queries,
        },
    ]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    assert!(!dirs.is_empty(), "usage: search_sizes DIR [DIR…]");
    let mut paths = Vec::new();
    for d in &dirs {
        files(d, &mut paths);
    }
    paths.sort();
    let started = Instant::now();
    let mut raw = 0u64;
    let mut docs = Vec::with_capacity(paths.len());
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        raw += bytes.len() as u64;
        let e = extract(&bytes[..bytes.len().min(4 << 20)]);
        let mut body = String::new();
        for t in e.texts.iter().chain(&e.nested_text) {
            body.push_str(t);
            body.push('\n');
        }
        for a in &e.attachments {
            body.push_str(&a.name);
            body.push('\n');
        }
        docs.push(Doc {
            subject: e.subject,
            from: e.from,
            to: format!("{} {}", e.to, e.cc),
            body,
        });
    }
    let text: usize = docs
        .iter()
        .map(|d| d.subject.len() + d.from.len() + d.to.len() + d.body.len())
        .sum();
    println!(
        "{} messages, {:.1} MB; decoded text {:.1} MB; decoding took {:.1} s",
        docs.len(),
        raw as f64 / 1e6,
        text as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:48} {:>9} {:>7} {:>8}  queries (median of 20)",
        "layout", "size", "of mail", "build"
    );
    for l in layouts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(l.ddl).unwrap();
        let t = Instant::now();
        c.execute_batch("BEGIN").unwrap();
        for (i, d) in docs.iter().enumerate() {
            (l.insert)(&c, i as i64 + 1, d).unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
        for table in ["f", "h", "b"] {
            let _ = c.execute(
                &format!("INSERT INTO {table}({table}) VALUES ('optimize')"),
                [],
            );
        }
        let build = t.elapsed();
        c.execute_batch("VACUUM").unwrap();
        let size: i64 = c
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut q = Vec::new();
        for (what, sql, arg) in (l.queries)() {
            let mut times = Vec::new();
            let mut hits = 0i64;
            for _ in 0..20 {
                let t = Instant::now();
                hits = c.query_row(sql, [&arg], |r| r.get(0)).unwrap();
                times.push(t.elapsed());
            }
            q.push(format!(
                "{what} {hits} in {:.2} ms",
                median(times).as_secs_f64() * 1e3
            ));
        }
        println!(
            "{:48} {:>6.1} MB {:>6.1}% {:>6.2} s  {}",
            l.name,
            size as f64 / 1e6,
            size as f64 * 100.0 / raw as f64,
            build.as_secs_f64(),
            q.join("; ")
        );
    }
}
