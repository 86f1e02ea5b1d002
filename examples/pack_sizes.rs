//! Measures how small candidate pack layouts would make a set of messages,
//! on a directory of messages (one file each, any depth; e.g. the corpus's
//! `varied/`, or a Maildir written by `examples/bench_gen`):
//!
//!     cargo run --release --example pack_sizes -- DIR [DIR…]
//!
//! Messages are taken folder by folder in file-name order (for a Maildir
//! written by the generator: date order, as a backup stores them). Prints,
//! per layout, the compressed bytes as a share of the messages' bytes and
//! the time to compress: one zstd frame per message (with and without a
//! dictionary trained on a sample spread over all of them, as the store
//! trains its own), and frames that hold consecutive messages up to a size,
//! with the cost of one parity shard per frame added (what repairing any one
//! damaged shard of a frame would need). The figures behind
//! docs/benchmarks.md ("Frames of several messages").

use std::path::{Path, PathBuf};
use std::time::Instant;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The store's sample rule: up to 2,000 messages spread evenly, their first
/// 16 KiB, messages over 256 KiB left out; `size` 0 takes the store's size
/// rule (a 150th of the sample, 16–512 KiB).
fn train(msgs: &[Vec<u8>], size: usize) -> Vec<u8> {
    let small: Vec<&Vec<u8>> = msgs.iter().filter(|m| m.len() <= 256 * 1024).collect();
    let step = (small.len() / 2000).max(1);
    let samples: Vec<&[u8]> = small
        .iter()
        .step_by(step)
        .map(|m| &m[..m.len().min(16 * 1024)])
        .collect();
    let size = if size > 0 {
        size
    } else {
        (samples.iter().map(|s| s.len()).sum::<usize>() / 150).clamp(16 * 1024, 512 * 1024)
    };
    zstd::dict::from_samples(&samples, size).expect("training a dictionary")
}

fn compressor(level: i32, dict: Option<&[u8]>) -> zstd::bulk::Compressor<'static> {
    match dict {
        Some(d) => zstd::bulk::Compressor::with_dictionary(level, d).unwrap(),
        None => zstd::bulk::Compressor::new(level).unwrap(),
    }
}

/// One message's frame, as the store makes it: big messages go without the
/// dictionary.
fn frame_of(c: &mut zstd::bulk::Compressor, with_dict: bool, level: i32, m: &[u8]) -> u64 {
    if with_dict && m.len() > 256 * 1024 {
        zstd::bulk::compress(m, level).unwrap().len() as u64
    } else {
        c.compress(m).unwrap().len() as u64
    }
}

fn per_message(msgs: &[Vec<u8>], level: i32, dict: Option<&[u8]>) -> (u64, f64) {
    let t = Instant::now();
    let mut c = compressor(level, dict);
    let out = msgs
        .iter()
        .map(|m| frame_of(&mut c, dict.is_some(), level, m))
        .sum();
    (out, t.elapsed().as_secs_f64())
}

/// Frames of consecutive messages up to `frame` bytes (a bigger message is a
/// frame alone); each frame pays a table entry per message (an offset and a
/// length, ~4 bytes) and one parity shard of `1 / shards` of its size.
fn framed(
    msgs: &[Vec<u8>],
    level: i32,
    dict: Option<&[u8]>,
    frame: usize,
    shards: u64,
) -> (u64, u64, f64) {
    let t = Instant::now();
    let mut c = compressor(level, dict);
    let (mut out, mut parity) = (0u64, 0u64);
    let mut buf: Vec<u8> = Vec::new();
    let mut n = 0u64;
    let mut flush = |buf: &mut Vec<u8>, n: &mut u64| {
        if buf.is_empty() {
            return;
        }
        let z = c.compress(buf).unwrap().len() as u64;
        out += z + 4 * *n;
        parity += z.div_ceil(shards);
        buf.clear();
        *n = 0;
    };
    for m in msgs {
        if !buf.is_empty() && buf.len() + m.len() > frame {
            flush(&mut buf, &mut n);
        }
        buf.extend_from_slice(m);
        n += 1;
    }
    flush(&mut buf, &mut n);
    (out, parity, t.elapsed().as_secs_f64())
}

/// The store's way over a first backup: no dictionary for the first 1,000
/// messages, then a dictionary trained on all before, a new one each time
/// the count has grown `growth` times; each dictionary's two copies counted.
fn schedule(msgs: &[Vec<u8>], growth: usize, size: usize) -> (u64, u64, usize) {
    let (mut out, mut copies, mut dicts) = (0u64, 0u64, 0usize);
    let mut next = 1000;
    let mut c = compressor(3, None);
    let mut with_dict = false;
    for (i, m) in msgs.iter().enumerate() {
        if i == next {
            let d = train(&msgs[..i], size);
            copies += 2 * d.len() as u64;
            dicts += 1;
            c = compressor(3, Some(&d));
            with_dict = true;
            next *= growth;
        }
        out += frame_of(&mut c, with_dict, 3, m);
    }
    (out, copies, dicts)
}

fn main() {
    let dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        eprintln!("usage: pack_sizes DIR [DIR…]");
        std::process::exit(2);
    }
    let mut paths = Vec::new();
    for d in &dirs {
        files(d, &mut paths);
    }
    let msgs: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let total: u64 = msgs.iter().map(|m| m.len() as u64).sum();
    println!("{} messages, {} bytes", msgs.len(), total);
    let pct = |b: u64| 100.0 * b as f64 / total as f64;
    let mbs = |s: f64| total as f64 / 1e6 / s;

    for (growth, size) in [(8, 0), (8, 512 * 1024), (4, 0), (4, 512 * 1024), (2, 0)] {
        let (b, d, n) = schedule(&msgs, growth, size);
        let size = if size == 0 {
            "a 150th".to_string()
        } else {
            format!("{} KiB", size / 1024)
        };
        println!(
            "as a first backup stores them, a new dictionary ({size}) at {growth}× the count: {:5.1} % + {n} dictionaries {:4.1} % = {:5.1} %",
            pct(b),
            pct(d),
            pct(b + d)
        );
    }
    let (b, s) = per_message(&msgs, 3, None);
    println!(
        "per message, level 3, no dictionary          {:5.1} %  {:6.0} MB/s",
        pct(b),
        mbs(s)
    );
    let mut dicts = Vec::new();
    for size in [512 * 1024, 1024 * 1024] {
        let t = Instant::now();
        let d = train(&msgs, size);
        println!(
            "  trained a {} KiB dictionary in {:.2} s",
            size / 1024,
            t.elapsed().as_secs_f64()
        );
        dicts.push((size, d));
    }
    for (size, d) in &dicts {
        for level in [3, 6, 9] {
            let (b, s) = per_message(&msgs, level, Some(d));
            println!(
                "per message, level {level}, {:4} KiB dictionary    {:5.1} %  {:6.0} MB/s",
                size / 1024,
                pct(b),
                mbs(s)
            );
        }
    }
    let d512 = &dicts[0].1;
    for frame in [64 * 1024, 256 * 1024, 1024 * 1024] {
        for (dict, name) in [
            (None, "no dictionary"),
            (Some(&d512[..]), "512 KiB dictionary"),
        ] {
            for shards in [16u64, 32] {
                let (b, p, s) = framed(&msgs, 3, dict, frame, shards);
                println!(
                    "frames of {:4} KiB, level 3, {name:18}  {:5.1} % + parity 1/{shards}: {:4.1} % = {:5.1} %  {:6.0} MB/s",
                    frame / 1024,
                    pct(b),
                    pct(p),
                    pct(b + p),
                    mbs(s)
                );
            }
        }
    }
}
