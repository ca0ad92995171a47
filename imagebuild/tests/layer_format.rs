//! Layer format: strict readers, determinism, errors, cache, round trips.

#[path = "layer_util.rs"]
mod util;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use ep_imagebuild::cache::LayerCache;
use ep_imagebuild::layer::{
    layer_from_dir, layer_from_tar, Compression, Content, LayerBuilder, LayerError, LayerOptions,
    LayerWriter, Meta, SourceOptions,
};
use proptest::prelude::*;
use util::{decompress, read_tar, run, strict_check};

fn opts(c: Compression, threads: usize) -> LayerOptions {
    LayerOptions {
        compression: c,
        source_date_epoch: 1_700_000_000,
        threads,
    }
}

fn sample(builder: &mut LayerBuilder<'_>) {
    let long_dir = format!("opt/{}/{}", "d".repeat(120), "e".repeat(60));
    let very_long = format!("usr/{}", "x".repeat(300));
    builder
        .add_file_bytes("etc/hostname", Meta::default(), b"ep\n".to_vec())
        .unwrap()
        .add_file_bytes(
            "usr/local/bin/run.sh",
            Meta::executable(),
            b"#!/bin/sh\n".to_vec(),
        )
        .unwrap()
        .add_dir("var/tmp", Meta::mode(0o1777))
        .unwrap()
        .add_file_bytes(&format!("{long_dir}/f.txt"), Meta::default(), vec![7; 5000])
        .unwrap()
        .add_file_bytes(&very_long, Meta::default(), b"long".to_vec())
        .unwrap()
        .add_symlink("bin/sh", "/bin/busybox", Meta::default())
        .unwrap()
        .add_symlink("lnk", &format!("/{}", "t".repeat(150)), Meta::default())
        .unwrap()
        .add_file_bytes("bin/busybox", Meta::executable(), vec![1; 70_000])
        .unwrap()
        .add_hardlink("bin/zz", "bin/busybox", Meta::executable())
        .unwrap()
        .add_file(
            "srv/empty",
            Meta {
                mode: None,
                uid: 1000,
                gid: 1000,
            },
            0,
            Content::Bytes(Vec::new()),
        )
        .unwrap();
}

#[test]
fn strict_readers_accept_gzip_zstd_and_plain() {
    let tmp = tempfile::tempdir().unwrap();
    for c in [
        Compression::Gzip { level: 1 },
        Compression::Gzip { level: 6 },
        Compression::Zstd { level: 3 },
        Compression::None,
    ] {
        let mut b = LayerBuilder::new(opts(c, 2));
        sample(&mut b);
        let out = b.finish(tmp.path()).unwrap();
        assert_eq!(out.media_type, c.media_type());
        let listing = strict_check(&out, tmp.path());
        assert!(listing.contains("drwxrwxrwt 0/0"), "{listing}");
        assert!(listing.contains("-rwxr-xr-x 0/0"), "{listing}");
        assert!(listing.contains("1000/1000"), "{listing}");
        assert!(listing.contains("2023-11-14"), "{listing}");
        assert!(listing.contains("bin/zz link to bin/busybox"), "{listing}");

        let entries = read_tar(&decompress(&out));
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        // Sorted depth-first, implicit parents present, dirs end in '/'.
        assert_eq!(&names[..4], ["bin/", "bin/busybox", "bin/sh", "bin/zz"]);
        assert!(names.contains(&"usr/local/bin/"));
        let find = |n: &str| entries.iter().find(|e| e.0 == n).unwrap();
        assert_eq!(find("etc/hostname").2, 0o644);
        assert_eq!(find("etc/").2, 0o755);
        assert_eq!(find("lnk").6.len(), 151);
        assert_eq!(find(&format!("usr/{}", "x".repeat(300))).7, b"long");
        assert!(entries.iter().all(|e| e.5 == 1_700_000_000));
    }
}

#[test]
fn output_does_not_depend_on_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for c in [
        Compression::Gzip { level: 1 },
        Compression::Zstd { level: 3 },
    ] {
        let mut digests = Vec::new();
        for threads in [0, 1, 2, 3] {
            let dir = tmp.path().join(format!("t{threads}"));
            let mut b = LayerBuilder::new(opts(c, threads));
            sample(&mut b);
            b.add_file_bytes("data/big.bin", Meta::default(), big.clone())
                .unwrap();
            let out = b.finish(&dir).unwrap();
            digests.push((out.diff_id.clone(), out.digest.clone()));
            if threads == 2 {
                strict_check(&out, tmp.path());
            }
        }
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    }
}

#[test]
fn writer_rejects_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(Compression::default(), 2);
    let mut w = LayerWriter::new(tmp.path(), o.clone()).unwrap();
    w.add_dir("a", Meta::default()).unwrap();
    assert!(matches!(
        w.add_dir("a", Meta::default()),
        Err(LayerError::Duplicate(_))
    ));
    w.add_file("b", Meta::default(), 1, &mut &b"x"[..]).unwrap();
    assert!(matches!(
        w.add_dir("a/c", Meta::default()),
        Err(LayerError::OutOfOrder { .. })
    ));
    assert!(matches!(
        w.add_dir("b/c", Meta::default()),
        Err(LayerError::NotADirectory { .. })
    ));
    assert!(matches!(
        w.add_file("c", Meta::default(), 5, &mut &b"abc"[..]),
        Err(LayerError::SizeMismatch { actual: 3, .. })
    ));
    drop(w);
    let mut w = LayerWriter::new(tmp.path(), o.clone()).unwrap();
    assert!(matches!(
        w.add_file("c", Meta::default(), 2, &mut &b"abc"[..]),
        Err(LayerError::SizeMismatch { .. })
    ));
    assert!(matches!(
        w.add_dir("../etc", Meta::default()),
        Err(LayerError::InvalidPath(_))
    ));
    drop(w);
    let mut b = LayerBuilder::new(o);
    b.add_dir("x", Meta::default()).unwrap();
    b.add_file_bytes("/x/", Meta::default(), vec![]).unwrap();
    assert!(matches!(
        b.finish(tmp.path()),
        Err(LayerError::Duplicate(_))
    ));
    // Abandoned layers leave no temporary files behind.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

fn make_rootfs(root: &Path, mtime: i64) {
    let p = |s: &str| root.join(s);
    std::fs::create_dir_all(p("bin")).unwrap();
    std::fs::create_dir_all(p("usr/local/tomcat/webapps/cortex/WEB-INF/lib")).unwrap();
    std::fs::create_dir_all(p("tmp")).unwrap();
    std::fs::write(p("bin/busybox"), vec![0x7f; 10_000]).unwrap();
    std::fs::write(
        p("usr/local/tomcat/webapps/cortex/WEB-INF/lib/a.jar"),
        vec![3; 123_456],
    )
    .unwrap();
    std::fs::write(p("usr/local/tomcat/webapps/cortex/index.html"), b"<html/>").unwrap();
    std::fs::hard_link(p("bin/busybox"), p("bin/busybox2")).unwrap();
    std::os::unix::fs::symlink("busybox", p("bin/sh")).unwrap();
    std::os::unix::fs::symlink("/bin/busybox", p("bin/ls")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p("bin/busybox"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(p("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    // A FIFO is skipped by rule.
    run(Command::new("mkfifo").arg(p("tmp/fifo")));
    let t = filetime::FileTime::from_unix_time(mtime, 0);
    for e in [
        "bin",
        "bin/busybox",
        "usr/local/tomcat/webapps/cortex/index.html",
        "tmp",
        "usr",
    ] {
        filetime::set_file_mtime(p(e), t).unwrap();
    }
}

#[test]
fn layers_from_dirs_are_reproducible() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    make_rootfs(&a.path().join("deep/er/rootfs"), 1_000_000);
    make_rootfs(&b.path().join("r"), 1_600_000_000);
    let src = SourceOptions::default();
    let o = opts(Compression::default(), 2);
    let la = layer_from_dir(
        &a.path().join("deep/er/rootfs"),
        &src,
        o.clone(),
        &a.path().join("out"),
    )
    .unwrap();
    let lb = layer_from_dir(&b.path().join("r"), &src, o, &b.path().join("out")).unwrap();
    assert_eq!(la.diff_id, lb.diff_id);
    assert_eq!(la.digest, lb.digest);
    assert_eq!(la.size, lb.size);
    let listing = strict_check(&la, a.path());
    assert!(
        listing.contains("bin/busybox2 link to bin/busybox"),
        "{listing}"
    );
    assert!(listing.contains("bin/sh -> busybox"), "{listing}");
    assert!(listing.contains("drwxrwxrwt"), "{listing}");
    assert!(!listing.contains("fifo"), "{listing}");

    // The same tree from a tarball (GNU tar with its own order, owners and
    // mtimes) gives the same layer.
    let tarball = a.path().join("rootfs.tar.gz");
    run(Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(b.path().join("r"))
        .arg("."));
    let lt = layer_from_tar(
        &tarball,
        &src,
        opts(Compression::default(), 2),
        &a.path().join("out2"),
    )
    .unwrap();
    assert_eq!(lt.diff_id, la.diff_id);

    // With a prefix and normalised modes.
    let src2 = SourceOptions {
        prefix: "/usr/local/ep".into(),
        preserve_modes: false,
        preserve_ownership: false,
    };
    let lp = layer_from_dir(
        &b.path().join("r"),
        &src2,
        opts(Compression::default(), 2),
        &b.path().join("out"),
    )
    .unwrap();
    let entries = read_tar(&decompress(&lp));
    assert_eq!(entries[0].0, "usr/");
    let tmp = entries.iter().find(|e| e.0 == "usr/local/ep/tmp/").unwrap();
    assert_eq!(tmp.2, 0o755);
}

#[test]
fn cache_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(&tmp.path().join("cache")).unwrap();
    let o = opts(Compression::default(), 2);
    assert!(cache.get("webapp-cortex:abc", &o).unwrap().is_none());
    let mut b = LayerBuilder::new(o.clone());
    sample(&mut b);
    let out = b.finish(&cache.work_dir()).unwrap();
    let stored = cache.put("webapp-cortex:abc", &o, out.clone()).unwrap();
    assert_eq!(stored.digest, out.digest);
    let got = cache.get("webapp-cortex:abc", &o).unwrap().unwrap();
    assert_eq!(got, stored);
    // Other settings are another key.
    let z = opts(Compression::Zstd { level: 3 }, 2);
    assert!(cache.get("webapp-cortex:abc", &z).unwrap().is_none());
    // A second process's cache handle sees it; a truncated blob is a miss.
    let again = LayerCache::open(&tmp.path().join("cache")).unwrap();
    assert!(again.get("webapp-cortex:abc", &o).unwrap().is_some());
    std::fs::write(&got.path, b"short").unwrap();
    assert!(again.get("webapp-cortex:abc", &o).unwrap().is_none());
    // Nothing left in the work dir.
    assert_eq!(std::fs::read_dir(cache.work_dir()).unwrap().count(), 0);
}

fn arb_tree() -> impl Strategy<Value = BTreeMap<String, (Vec<u8>, u32)>> {
    let name = "[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,11}";
    let path = prop::collection::vec(name, 1..4).prop_map(|v| v.join("/"));
    let content = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2000),
        (0usize..3_000_000).prop_map(|n| vec![b'z'; n]),
    ];
    let mode = prop_oneof![Just(0o644u32), Just(0o755), Just(0o600), Just(0o4755)];
    prop::collection::btree_map(path, (content, mode), 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_trees_round_trip(tree in arb_tree(), zstd in any::<bool>()) {
        // Drop paths that are also a prefix directory of another path.
        let files: Vec<_> = tree
            .iter()
            .filter(|(p, _)| !tree.keys().any(|q| q.starts_with(&format!("{p}/"))))
            .collect();
        let c = if zstd { Compression::Zstd { level: 1 } } else { Compression::Gzip { level: 1 } };
        let tmp = tempfile::tempdir().unwrap();
        let mut b = LayerBuilder::new(opts(c, 2));
        for (p, (data, mode)) in &files {
            b.add_file_bytes(p, Meta::mode(*mode), data.clone()).unwrap();
        }
        let out = b.finish(tmp.path()).unwrap();
        let tar = decompress(&out);
        prop_assert_eq!(ep_imagebuild::digest::Digest::of(&tar), out.diff_id.clone());
        let entries = read_tar(&tar);
        let got: BTreeMap<String, (Vec<u8>, u32)> = entries
            .iter()
            .filter(|e| e.1 == b'0')
            .map(|e| (e.0.clone(), (e.7.clone(), e.2)))
            .collect();
        let want: BTreeMap<String, (Vec<u8>, u32)> =
            files.iter().map(|(p, v)| ((*p).clone(), (*v).clone())).collect();
        prop_assert_eq!(got, want);
        // Every parent directory is present, before its children.
        for (i, e) in entries.iter().enumerate() {
            if let Some((parent, _)) = e.0.trim_end_matches('/').rsplit_once('/') {
                let pos = entries.iter().position(|d| d.0 == format!("{parent}/"));
                prop_assert!(pos.is_some_and(|p| p < i), "{} lacks its parent", e.0);
            }
        }
    }
}

#[test]
fn incompressible_data_does_not_grow() {
    // xorshift noise: deflate cannot shrink it, stored blocks take over.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..3_500_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let mut b = LayerBuilder::new(opts(Compression::Gzip { level: 1 }, 2));
    b.add_file_bytes("lib/x.jar", Meta::default(), noise)
        .unwrap();
    let out = b.finish(tmp.path()).unwrap();
    assert!(
        (out.size as f64) < out.uncompressed_size as f64 * 1.001,
        "{} > {}",
        out.size,
        out.uncompressed_size
    );
    strict_check(&out, tmp.path());
}
