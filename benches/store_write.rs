//! The store's write path: hash + compress + append + commit, per message
//! size, with and without a trained dictionary.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mailkeep::store::Store;

fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "Return-Path: <sender{i}@example.com>\r\nReceived: from mx{i}.example.com by mail.example.org\r\n\
         From: Sender {i} <sender{i}@example.com>\r\nTo: taro@example.org\r\n\
         Subject: Quarterly report {i}\r\nMessage-ID: <{i}.bench@example.com>\r\n\
         Date: Mon, 1 Jan 2024 09:00:00 +0900\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    .into_bytes();
    let mut n = i as u64;
    while m.len() < size {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        m.extend_from_slice(
            format!("line {} of the body, value {}\r\n", m.len(), n >> 40).as_bytes(),
        );
    }
    m
}

fn write_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_write");
    for size in [2_000usize, 50_000, 1_000_000] {
        let batch: Vec<Vec<u8>> = (0..50).map(|i| message(i, size)).collect();
        group.throughput(Throughput::Bytes((size * batch.len()) as u64));
        group.bench_with_input(
            BenchmarkId::new("put_blob+commit", size),
            &batch,
            |b, batch| {
                let dir = tempfile::tempdir().unwrap();
                let mut store = Store::open(dir.path()).unwrap();
                let mut round = 0usize;
                b.iter(|| {
                    round += 1;
                    for m in batch {
                        // Distinct bytes each round, so nothing is deduplicated.
                        let mut m = m.clone();
                        m.extend_from_slice(format!("{round}\r\n").as_bytes());
                        store.put_blob(&m).unwrap();
                    }
                    store.commit().unwrap();
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, write_path);
criterion_main!(benches);
