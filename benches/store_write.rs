//! The store's write path: hash + compress + append + commit, per message
//! size, with and without a trained dictionary; text, and a base64
//! attachment (a coded blob); and reading a coded blob back.

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

/// A message whose body is a base64 attachment of `size` bytes' worth of
/// random data (stored as a coded blob).
fn with_attachment(i: usize, size: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut m = message(i, 600);
    let mut n = i as u64 + 1;
    let data: Vec<u8> = (0..size * 3 / 4)
        .map(|_| {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            n as u8
        })
        .collect();
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    for line in text.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m
}

fn write_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_write");
    let cases = [
        ("put_blob+commit", 2_000usize, false),
        ("put_blob+commit", 50_000, false),
        ("put_blob+commit", 1_000_000, false),
        ("put_blob+commit, base64 attachment", 50_000, true),
        ("put_blob+commit, base64 attachment", 1_000_000, true),
    ];
    for (name, size, attachment) in cases {
        let batch: Vec<Vec<u8>> = (0..50)
            .map(|i| {
                if attachment {
                    with_attachment(i, size)
                } else {
                    message(i, size)
                }
            })
            .collect();
        group.throughput(Throughput::Bytes((size * batch.len()) as u64));
        group.bench_with_input(BenchmarkId::new(name, size), &batch, |b, batch| {
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
        });
    }
    group.finish();
}

fn read_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_read");
    for (name, m) in [
        ("read_blob, text", message(1, 50_000)),
        (
            "read_blob, base64 attachment",
            with_attachment(1, 1_000_000),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let (id, _) = store.put_blob(&m).unwrap();
        store.commit().unwrap();
        group.throughput(Throughput::Bytes(m.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| assert_eq!(store.read_blob(&id).unwrap().len(), m.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, write_path, read_path);
criterion_main!(benches);
