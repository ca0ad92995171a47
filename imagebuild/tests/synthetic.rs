//! The synthetic package generator: determinism, size, one-class changes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

use ep_imagebuild::package::DeploymentPackage;
use ep_imagebuild::synthetic::{self, SynthError, SynthOptions, CHANGED_CLASS_PATH};

/// (path → (size, crc32)) of every entry of every WAR, plus outer entries.
fn inventory(path: &std::path::Path) -> BTreeMap<String, (u64, u32)> {
    let pkg = DeploymentPackage::open(path).unwrap();
    let mut out = BTreeMap::new();
    for e in pkg.entries() {
        out.insert(e.path.clone(), (e.size, e.crc32.unwrap()));
    }
    for app in pkg.applications() {
        let war = pkg.open_nested(&app.path).unwrap();
        for e in war.entries() {
            out.insert(
                format!("{}!/{}", app.path, e.path),
                (e.size, e.crc32.unwrap()),
            );
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.zip");
    let b = tmp.path().join("b.zip");
    let c = tmp.path().join("c.zip");
    synthetic::write_zip(&SynthOptions::small(11), &a).unwrap();
    synthetic::write_zip(&SynthOptions::small(11), &b).unwrap();
    synthetic::write_zip(&SynthOptions::small(12), &c).unwrap();
    let (a, b, c) = (
        fs::read(a).unwrap(),
        fs::read(b).unwrap(),
        fs::read(c).unwrap(),
    );
    assert!(a == b, "same options must give byte-identical zips");
    assert!(a != c, "another seed must give other bytes");
}

#[test]
fn size_targets_are_roughly_met() {
    let tmp = tempfile::tempdir().unwrap();
    for target in [synthetic::SMALL_TARGET_SIZE, 30_000_000] {
        let out = tmp.path().join(format!("{target}.zip"));
        let opts = SynthOptions {
            target_size: target,
            ..SynthOptions::small(5)
        };
        let report = synthetic::write_zip(&opts, &out).unwrap();
        let ratio = report.bytes as f64 / target as f64;
        assert!(
            (0.85..1.15).contains(&ratio),
            "target {target}, got {}",
            report.bytes
        );
        assert_eq!(report.bytes, fs::metadata(&out).unwrap().len());
    }
}

#[test]
#[ignore = "writes 300 MB; run with --ignored (fast in release)"]
fn default_size_is_about_300_mb() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("big.zip");
    let report = synthetic::write_zip(&SynthOptions::default(), &out).unwrap();
    let ratio = report.bytes as f64 / synthetic::DEFAULT_TARGET_SIZE as f64;
    assert!((0.9..1.1).contains(&ratio), "{}", report.bytes);
}

#[test]
fn changed_class_changes_exactly_one_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.zip");
    let one = tmp.path().join("one.zip");
    let two = tmp.path().join("two.zip");
    synthetic::write_zip(&SynthOptions::small(9), &base).unwrap();
    let changed = |rev| SynthOptions {
        changed_class: Some(rev),
        ..SynthOptions::small(9)
    };
    synthetic::write_zip(&changed(1), &one).unwrap();
    synthetic::write_zip(&changed(2), &two).unwrap();

    let a = inventory(&base);
    let b = inventory(&one);
    let c = inventory(&two);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let differing: Vec<_> = a
        .iter()
        .filter(|(k, v)| b[*k] != **v)
        .map(|(k, _)| k.clone())
        .collect();
    let war = "webapps/ext-cortex-webapp-8.5.0.war";
    let class = format!("{war}!/{CHANGED_CLASS_PATH}");
    assert_eq!(differing, [war.to_string(), class.clone()]);
    assert_eq!(a[&class].0, b[&class].0, "same size");
    assert_eq!(a[war].0, b[war].0, "the WAR keeps its size");
    assert_ne!(b[&class], c[&class], "revisions differ from each other");

    // And the class really is there, a class file.
    let pkg = DeploymentPackage::open(&one).unwrap();
    let nested = pkg.open_nested(war).unwrap();
    let mut head = [0u8; 4];
    nested
        .open_entry(CHANGED_CLASS_PATH)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert_eq!(head, [0xCA, 0xFE, 0xBA, 0xBE]);
}

#[test]
fn shared_jars_are_identical_across_wars() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p.zip");
    synthetic::write_zip(&SynthOptions::small(2), &out).unwrap();
    let inv = inventory(&out);
    let jar = "WEB-INF/lib/spring-core-5.3.39.jar";
    let copies: Vec<_> = inv
        .iter()
        .filter(|(k, _)| k.ends_with(jar))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(copies.len(), 6);
    assert!(copies.windows(2).all(|w| w[0] == w[1]));
    assert!(inv
        .keys()
        .any(|k| k.ends_with("WEB-INF/lib/ext-core-8.5.0-SNAPSHOT.jar")));
    assert!(inv
        .keys()
        .any(|k| k.ends_with("WEB-INF/lib/ep-core-8.5.0.jar")));
}

#[test]
fn version_option_and_bad_options() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("v.zip");
    let opts = SynthOptions {
        version: "8.6.1-SNAPSHOT".into(),
        ..SynthOptions::small(1)
    };
    synthetic::write_zip(&opts, &out).unwrap();
    let pkg = DeploymentPackage::open(&out).unwrap();
    assert_eq!(pkg.version(), Some("8.6.1-SNAPSHOT"));
    assert!(pkg
        .application("cortex")
        .unwrap()
        .path
        .ends_with("-8.6.1-SNAPSHOT.war"));

    let bad = SynthOptions {
        version: "../x".into(),
        ..SynthOptions::small(1)
    };
    assert!(matches!(
        synthetic::write_zip(&bad, &out),
        Err(SynthError::InvalidOptions(_))
    ));
    let tiny = SynthOptions {
        target_size: 10,
        ..SynthOptions::small(1)
    };
    assert!(matches!(
        synthetic::write_zip(&tiny, &out),
        Err(SynthError::InvalidOptions(_))
    ));
}

#[test]
fn data_population_tool_and_sql_changelog() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p.zip");
    synthetic::write_zip(&SynthOptions::small(4), &out).unwrap();
    let pkg = DeploymentPackage::open(&out).unwrap();

    // The tool: an executable launcher at the top (plus the bin/ wrapper) and its jars.
    let tool = pkg
        .open_nested(&pkg.tool("data-population").unwrap().path)
        .unwrap();
    let launcher = tool.entry("data-population.sh").unwrap();
    assert_eq!(launcher.mode, Some(0o755));
    let mut text = String::new();
    tool.open_entry("data-population.sh")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, synthetic::DATA_POPULATION_LAUNCHER);
    assert!(text.starts_with("#!/usr/bin/env bash\n"));
    assert_eq!(
        tool.entry("bin/data-population.sh").unwrap().mode,
        Some(0o755)
    );

    // The ext-data jar: a formatted-SQL changelog with per-environment contexts, and the
    // environments' settings files the tool reads.
    let ext = pkg.open_nested(&pkg.ext_data().unwrap().path).unwrap();
    let mut sql = String::new();
    ext.open_entry(synthetic::EXT_DATA_SQL_CHANGELOG)
        .unwrap()
        .read_to_string(&mut sql)
        .unwrap();
    assert!(sql.starts_with("--liquibase formatted sql\n"));
    assert!(sql.contains("--changeset ep:ext-data-author-1 context:author\n"));
    assert!(sql.contains("--changeset ep:ext-data-live-1 context:live\n"));
    assert_eq!(sql.matches("INSERT INTO TPRODUCTSKU").count(), 12);
    for env in ["author", "live"] {
        assert!(ext
            .entry(&format!("environments/{env}/database.properties"))
            .is_some());
        let mut props = String::new();
        ext.open_entry(&format!("environments/{env}/data-population.properties"))
            .unwrap()
            .read_to_string(&mut props)
            .unwrap();
        assert!(props.contains(&format!("liquibase.contexts=default,{env}")));
    }

    // Deterministic, and the seed changes the catalogue.
    let again = tmp.path().join("again.zip");
    synthetic::write_zip(&SynthOptions::small(4), &again).unwrap();
    assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
    let other = tmp.path().join("other.zip");
    synthetic::write_zip(&SynthOptions::small(5), &other).unwrap();
    let pkg5 = DeploymentPackage::open(&other).unwrap();
    let ext5 = pkg5.open_nested(&pkg5.ext_data().unwrap().path).unwrap();
    let mut sql5 = String::new();
    ext5.open_entry(synthetic::EXT_DATA_SQL_CHANGELOG)
        .unwrap()
        .read_to_string(&mut sql5)
        .unwrap();
    assert_ne!(sql, sql5);
}
