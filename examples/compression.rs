//! Measures how small messages get with each way of compressing them one
//! frame per message (zstd level, dictionary size, how the dictionary's
//! sample is chosen), on directories of messages (one file each, any depth):
//!
//!     cargo run --release --example compression -- DIR [DIR…]
//!
//! Prints, per setting: the compressed bytes (frames only, and with the
//! store's per-message record overhead) as a share of the raw bytes, and the
//! compression speed on one core. The figures behind docs/benchmarks.md
//! ("Compression").

use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a stored message costs besides its frame: the blob record (header
/// 16, prefix 12, id 32, CRC 4) and a seen event of about 90 bytes.
const PER_MESSAGE: usize = 16 + 12 + 32 + 4 + 90;
/// Messages larger than this are compressed without a dictionary.
const DICT_MAX_MESSAGE: usize = 4 << 20;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// Deterministic choice of `n` of `len` indices.
fn sample(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    let mut s = seed | 1;
    for i in (1..idx.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        idx.swap(i, (s % (i as u64 + 1)) as usize);
    }
    idx.truncate(n.min(len));
    idx.sort_unstable();
    idx
}

fn train(msgs: &[Vec<u8>], pick: &[usize], size: usize, per_sample: usize) -> Vec<u8> {
    let samples: Vec<&[u8]> = pick
        .iter()
        .map(|&i| &msgs[i][..msgs[i].len().min(per_sample)])
        .filter(|m| m.len() <= DICT_MAX_MESSAGE)
        .collect();
    zstd::dict::from_samples(&samples, size).expect("train")
}

fn run(msgs: &[Vec<u8>], raw: usize, name: &str, level: i32, dict: Option<&[u8]>) {
    let mut c = match dict {
        Some(d) => zstd::bulk::Compressor::with_dictionary(level, d).unwrap(),
        None => zstd::bulk::Compressor::new(level).unwrap(),
    };
    let _ = c.include_checksum(false);
    let _ = c.include_dictid(false);
    let mut plain = zstd::bulk::Compressor::new(level).unwrap();
    let t = Instant::now();
    let mut out = 0usize;
    for m in msgs {
        let f = if m.len() > DICT_MAX_MESSAGE {
            plain.compress(m).unwrap()
        } else {
            c.compress(m).unwrap()
        };
        out += f.len();
    }
    let secs = t.elapsed().as_secs_f64();
    let dict_len = dict.map_or(0, |d| d.len() * 2);
    println!(
        "{name:44} {:6.1}% {:6.1}% {:7.1} MB/s",
        (out + dict_len) as f64 * 100.0 / raw as f64,
        (out + dict_len + PER_MESSAGE * msgs.len()) as f64 * 100.0 / raw as f64,
        raw as f64 / 1e6 / secs
    );
}

fn main() {
    let dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    assert!(!dirs.is_empty(), "usage: compression DIR [DIR…]");
    let mut paths = Vec::new();
    for d in &dirs {
        files(d, &mut paths);
    }
    paths.sort();
    let msgs: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let raw: usize = msgs.iter().map(|m| m.len()).sum();
    println!(
        "{} messages, {:.1} MB (median {} B); {} of them: per-message overhead {} B",
        msgs.len(),
        raw as f64 / 1e6,
        {
            let mut l: Vec<usize> = msgs.iter().map(|m| m.len()).collect();
            l.sort_unstable();
            l[l.len() / 2]
        },
        msgs.len(),
        PER_MESSAGE
    );
    println!(
        "{:44} {:>7} {:>7} {:>12}",
        "setting", "frames", "stored", "speed"
    );
    for level in [3, 6, 9] {
        run(
            &msgs,
            raw,
            &format!("level {level}, no dictionary"),
            level,
            None,
        );
    }
    let first: Vec<usize> = (0..msgs.len().min(2000)).collect();
    let d = train(&msgs, &first, 112 * 1024, 16 * 1024);
    run(
        &msgs,
        raw,
        "level 3, 112 KB dict, first 2,000 (0.1)",
        3,
        Some(&d),
    );
    // Big messages (mostly attachments) at a faster level, without the
    // dictionary; the rest at level 3 with one.
    {
        let pick = sample(msgs.len(), 2000, 7);
        let d = train(&msgs, &pick, 256 * 1024, 16 * 1024);
        for (cut, big_level) in [(256 * 1024, 1), (256 * 1024, 3), (64 * 1024, 1)] {
            let mut c = zstd::bulk::Compressor::with_dictionary(3, &d).unwrap();
            let _ = c.include_dictid(false);
            let mut big = zstd::bulk::Compressor::new(big_level).unwrap();
            let t = Instant::now();
            let mut out = 0usize;
            for m in &msgs {
                out += if m.len() > cut {
                    big.compress(m).unwrap().len()
                } else {
                    c.compress(m).unwrap().len()
                };
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{:44} {:6.1}% {:6.1}% {:7.1} MB/s",
                format!("3 + 256 KB dict; over {} KB: level {big_level}", cut / 1024),
                out as f64 * 100.0 / raw as f64,
                (out + PER_MESSAGE * msgs.len()) as f64 * 100.0 / raw as f64,
                raw as f64 / 1e6 / secs
            );
        }
    }
    for (size, label) in [
        (112 * 1024, "112 KB"),
        (512 * 1024, "512 KB"),
        (1 << 20, "1 MB"),
    ] {
        let pick = sample(msgs.len(), 4000, 7);
        let t = Instant::now();
        let d = train(&msgs, &pick, size, 16 * 1024);
        let trained = t.elapsed().as_secs_f64();
        for level in [3, 6, 9] {
            run(
                &msgs,
                raw,
                &format!("level {level}, {label} dict, random 4,000 ({trained:.1} s)"),
                level,
                Some(&d),
            );
        }
    }
}
