//! Memory and throughput measurements (ignored by default; run with
//! `cargo test --release -p ep-imagebuild --test layer_perf -- --ignored --nocapture`).

use std::io::Read;
use std::process::Command;
use std::time::Instant;

use ep_imagebuild::layer::{Compression, LayerOptions, LayerWriter, Meta};

/// An endless, incompressible, deterministic byte stream (xorshift64*).
struct Noise(u64);

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(buf.len())
    }
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs in a fresh process (spawned by `peak_rss_of_500mb_layer`).
#[test]
#[ignore]
fn rss_child() {
    let Ok(comp) = std::env::var("EP_LAYER_RSS_CHILD") else {
        return;
    };
    let compression = match comp.as_str() {
        "zstd" => Compression::Zstd { level: 3 },
        _ => Compression::Gzip { level: 1 },
    };
    let tmp = tempfile::tempdir().unwrap();
    let before = vm_hwm_kib();
    let mut w = LayerWriter::new(
        tmp.path(),
        LayerOptions {
            compression,
            source_date_epoch: 0,
            threads: 2,
        },
    )
    .unwrap();
    // 500 MB: one big file and many 1 MB ones.
    w.add_file(
        "big.bin",
        Meta::default(),
        250 << 20,
        &mut Noise(1).take(250 << 20),
    )
    .unwrap();
    for i in 0..250 {
        w.add_file(
            &format!("lib/{i:04}.jar"),
            Meta::default(),
            1 << 20,
            &mut Noise(i + 2).take(1 << 20),
        )
        .unwrap();
    }
    let out = w.finish().unwrap();
    println!(
        "RSS_RESULT {comp} uncompressed={} compressed={} hwm_before_kib={before} hwm_kib={}",
        out.uncompressed_size,
        out.size,
        vm_hwm_kib()
    );
}

#[test]
#[ignore]
fn peak_rss_of_500mb_layer() {
    for comp in ["gzip", "zstd"] {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe)
            .args(["--ignored", "--exact", "rss_child", "--nocapture"])
            .env("EP_LAYER_RSS_CHILD", comp)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find(|l| l.contains("RSS_RESULT"))
            .unwrap_or_else(|| {
                panic!(
                    "child failed: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        println!("{line}");
        let hwm: u64 = line
            .rsplit("hwm_kib=")
            .next()
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert!(hwm < 64 * 1024, "peak RSS {hwm} KiB");
    }
}

/// ~300 MB shaped like a webapp: ~80 % jar-like incompressible bytes in
/// 0.5–8 MB files, the rest small class-like files that compress well.
fn webapp_like() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut noise = Noise(42);
    let mut total = 0usize;
    let mut i = 0;
    while total < 240 << 20 {
        let size = (512 << 10) + (i * 7919 % 15) * (512 << 10);
        let mut v = vec![0; size];
        noise.read_exact(&mut v).unwrap();
        total += size;
        files.push((format!("WEB-INF/lib/lib-{i:04}.jar"), v));
        i += 1;
    }
    let words: [&[u8]; 8] = [
        b"java/lang/Object",
        b"com/elasticpath/",
        b"<init>",
        b"LineNumberTable",
        b"Ljava/lang/String;",
        b"getValue",
        b"(I)V",
        b"\x00\x01\x02\xca\xfe\xba\xbe",
    ];
    let mut j = 0usize;
    while total < 300 << 20 {
        let size = 2_000 + (j * 104_729 % 18_000);
        let mut v = Vec::with_capacity(size);
        let mut k = j;
        while v.len() < size {
            k = k.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            v.extend_from_slice(words[(k >> 33) % words.len()]);
            v.push((k >> 40) as u8);
        }
        v.truncate(size);
        total += size;
        files.push((format!("WEB-INF/classes/com/ep/C{j:06}.class"), v));
        j += 1;
    }
    files.sort();
    files
}

#[test]
#[ignore]
fn throughput() {
    let files = webapp_like();
    let total: usize = files.iter().map(|f| f.1.len()).sum();
    println!("input: {} files, {:.1} MB", files.len(), total as f64 / 1e6);
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("gzip-1", Compression::Gzip { level: 1 }, 0),
        ("gzip-4", Compression::Gzip { level: 4 }, 0),
        ("gzip-6", Compression::Gzip { level: 6 }, 0),
        ("gzip-1", Compression::Gzip { level: 1 }, 2),
        ("gzip-4", Compression::Gzip { level: 4 }, 2),
        ("gzip-6", Compression::Gzip { level: 6 }, 2),
        ("zstd-3", Compression::Zstd { level: 3 }, 0),
        ("zstd-3", Compression::Zstd { level: 3 }, 1),
        ("zstd-1", Compression::Zstd { level: 1 }, 1),
        ("none", Compression::None, 1),
    ];
    for round in 0..2 {
        for (name, compression, threads) in cases {
            let start = Instant::now();
            let mut w = LayerWriter::new(
                tmp.path(),
                LayerOptions {
                    compression,
                    source_date_epoch: 0,
                    threads,
                },
            )
            .unwrap();
            for (p, data) in &files {
                w.add_file(p, Meta::default(), data.len() as u64, &mut &data[..])
                    .unwrap();
            }
            let out = w.finish().unwrap();
            let secs = start.elapsed().as_secs_f64();
            println!(
                "round {round} {name:7} threads={threads}: {:7.1} MB/s  ratio {:.3}  ({:.2} s)",
                out.uncompressed_size as f64 / 1e6 / secs,
                out.size as f64 / out.uncompressed_size as f64,
                secs
            );
            std::fs::remove_file(&out.path).unwrap();
        }
    }
}
