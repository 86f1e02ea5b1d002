//! The search index's hot paths: indexing stored messages (decode, fold,
//! tokenize, insert) and answering a query (candidates from the index, each
//! checked against its message), on a store of generated English and
//! Japanese mail imported from an mbox.

use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mailkeep::formats::mbox::Quoting;
use mailkeep::ops::import::{self, Format};
use mailkeep::ops::search::{self, SearchOptions};
use mailkeep::store::Store;

const MESSAGES: usize = 2_000;

const WORDS: &[&str] = &[
    "the",
    "report",
    "meeting",
    "quarterly",
    "budget",
    "invoice",
    "schedule",
    "project",
    "review",
    "customer",
    "reconcile",
    "reconciliation",
    "shipping",
    "contract",
    "draft",
    "minutes",
    "agenda",
    "travel",
    "expense",
    "forecast",
    "release",
    "holiday",
    "office",
    "team",
    "update",
    "question",
];
const JAPANESE: &[&str] = &[
    "会議",
    "資料",
    "請求書",
    "見積もり",
    "打ち合わせ",
    "日程",
    "ご確認",
    "よろしくお願いします",
    "取引先",
    "納品",
];

fn next(n: &mut u64) -> usize {
    *n = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*n >> 33) as usize
}

/// An mbox of `MESSAGES` messages, 1 in 5 in Japanese, 2–8 KB of body each.
fn mbox() -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = 7u64;
    for i in 0..MESSAGES {
        let japanese = i % 5 == 0;
        let from = if i % 7 == 0 { "tanaka" } else { "smith" };
        write!(
            out,
            "From {from}@example.jp Mon Jan  1 09:00:00 2024\n\
             From: {from} <{from}@example.jp>\nTo: taro@example.org\n\
             Subject: {} {i}\nMessage-ID: <{i}.search-bench@example.jp>\n\
             Date: Mon, 1 Jan 2024 09:00:00 +0900\n\
             Content-Type: text/plain; charset=utf-8\n\n",
            WORDS[next(&mut n) % WORDS.len()]
        )
        .unwrap();
        let size = 2_000 + next(&mut n) % 6_000;
        let start = out.len();
        while out.len() - start < size {
            let w = if japanese {
                JAPANESE[next(&mut n) % JAPANESE.len()]
            } else {
                WORDS[next(&mut n) % WORDS.len()]
            };
            out.extend_from_slice(w.as_bytes());
            out.push(if japanese { b'\n' } else { b' ' });
        }
        out.extend_from_slice(b"\n\n");
    }
    out
}

fn store_with_mail(dir: &std::path::Path) -> Store {
    let path = dir.join("bench.mbox");
    std::fs::write(&path, mbox()).unwrap();
    let mut store = Store::open(&dir.join("store")).unwrap();
    let plan = import::plan(&path, Format::Mbox).unwrap();
    import::run(&mut store, "bench", &plan, Quoting::Rd, &mut |_, _| {}).unwrap();
    store
}

fn indexing(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_mail(dir.path());
    let mut group = c.benchmark_group("search_index");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("reindex", |b| {
        b.iter(|| {
            let r = search::reindex(&mut store, &mut |_, _| {}).unwrap();
            assert_eq!(r.indexed, MESSAGES as u64);
        })
    });
    group.finish();
}

fn queries(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_mail(dir.path());
    search::reindex(&mut store, &mut |_, _| {}).unwrap();
    let opts = SearchOptions {
        limit: 50,
        ..SearchOptions::default()
    };
    let mut group = c.benchmark_group("search_query");
    for (name, query) in [
        ("word", "quarterly"),
        ("prefix", "reconc"),
        ("japanese", "会議"),
        ("field", "from:tanaka"),
        ("nothing", "zzyzx"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| search::search(&store, query, &opts).unwrap().hits.len())
        });
    }
    group.finish();
}

criterion_group!(benches, indexing, queries);
criterion_main!(benches);
