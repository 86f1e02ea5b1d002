//! A full backup of a generated mailbox from a local Dovecot over TLS, through
//! the real binary, into a fresh store each time: what a first backup costs.

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use support::{gen_message, Dovecot, DovecotOptions, Env};

const MESSAGES: usize = 2_000;
const SIZE: usize = 8_000;

fn full_backup(c: &mut Criterion) {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut client = srv.client("alice");
    client.create("Archive/2020");
    let mut bytes = 0u64;
    for i in 0..MESSAGES {
        let m = gen_message(i, SIZE, "benchmark");
        bytes += m.len() as u64;
        let folder = if i % 2 == 0 { "INBOX" } else { "Archive/2020" };
        client.append(folder, &["\\Seen"], None, &m);
    }
    let mut group = c.benchmark_group("backup");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(
        format!("first backup, {MESSAGES} messages of {SIZE} B"),
        |b| {
            b.iter(|| {
                let env = Env::new();
                env.add_account("bench", &srv, "alice");
                let out = env.run(&["backup", "bench"]);
                assert_eq!(out.code, 0, "{out}");
            });
        },
    );
    let env = Env::new();
    env.add_account("bench", &srv, "alice");
    assert_eq!(env.run(&["backup", "bench"]).code, 0);
    group.bench_function("second backup, nothing new", |b| {
        b.iter(|| {
            let out = env.run(&["backup", "bench"]);
            assert_eq!(out.code, 0, "{out}");
        });
    });
    group.finish();
}

criterion_group!(benches, full_backup);
criterion_main!(benches);
