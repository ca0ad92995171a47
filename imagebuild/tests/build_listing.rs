//! The listing cache and the shared pass: planning a package whose WARs did not change
//! inflates nothing, a damaged cached listing is a miss, and writing all of a WAR's layers in
//! one pass gives the same bytes as writing them one by one while inflating the WAR once.

mod common;

use std::path::Path;

use ep_imagebuild::layer::{path_cmp, Compression, LayerOptions, LayerOutput, LayerWriter};
use ep_imagebuild::layering::{
    self, LayerJob, LayerPlan, LayoutOptions, ListingCache, Service, Sources, StreamOptions,
};
use ep_imagebuild::package::DeploymentPackage;
use ep_imagebuild::synthetic::{self, SynthOptions};

fn plan(pkg: &DeploymentPackage, listings: &Path) -> (Vec<LayerPlan>, usize, usize) {
    let mut sources = Sources::with_listing_cache(pkg, ListingCache::new(listings));
    let plans = layering::plan_service_in(&mut sources, Service::Cortex, &LayoutOptions::default())
        .unwrap();
    let stats = sources.stats().clone();
    (plans, stats.listing_hits, stats.listing_misses)
}

#[test]
fn second_plan_of_an_unchanged_package_inflates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg_path = tmp.path().join("pkg.zip");
    synthetic::write_zip(&SynthOptions::small(7), &pkg_path).unwrap();
    let listings = tmp.path().join("listings");

    let pkg = DeploymentPackage::open(&pkg_path).unwrap();
    let (first, hits, misses) = plan(&pkg, &listings);
    assert_eq!(hits, 0);
    // cortex, studio and the ext-data jar, all deflated in the synthetic package.
    assert_eq!(misses, 3);
    assert!(pkg.inflated_bytes() > 0);

    // A new process, in effect: a fresh package handle, the same cache directory.
    let pkg = DeploymentPackage::open(&pkg_path).unwrap();
    let (second, hits, misses) = plan(&pkg, &listings);
    assert_eq!((hits, misses), (3, 0));
    assert_eq!(pkg.inflated_bytes(), 0, "a cached plan inflated something");
    assert_eq!(first, second);

    // Without the cache the same plan costs the inflation again.
    let pkg = DeploymentPackage::open(&pkg_path).unwrap();
    let uncached =
        layering::plan_service(&pkg, Service::Cortex, &LayoutOptions::default()).unwrap();
    assert!(pkg.inflated_bytes() > 0);
    assert_eq!(first, uncached);
}

#[test]
fn a_changed_war_misses_and_damaged_listings_are_misses() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("pkg.zip");
    let changed = tmp.path().join("changed.zip");
    synthetic::write_zip(&SynthOptions::small(3), &base).unwrap();
    synthetic::write_zip(
        &SynthOptions {
            changed_class: Some(1),
            ..SynthOptions::small(3)
        },
        &changed,
    )
    .unwrap();
    let listings = tmp.path().join("listings");
    let pkg = DeploymentPackage::open(&base).unwrap();
    plan(&pkg, &listings);

    // Only the cortex WAR changed: studio and ext-data come from the cache.
    let pkg = DeploymentPackage::open(&changed).unwrap();
    let (plans, hits, misses) = plan(&pkg, &listings);
    assert_eq!((hits, misses), (2, 1));
    let fresh = layering::plan_service(&pkg, Service::Cortex, &LayoutOptions::default()).unwrap();
    assert_eq!(plans, fresh);

    // Truncate one listing and flip a byte in another: both are misses, the plan is right.
    let mut files: Vec<_> = std::fs::read_dir(&listings)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() / 2]).unwrap();
    let mut bytes = std::fs::read(&files[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&files[1], &bytes).unwrap();
    for f in &files[2..] {
        std::fs::write(f, b"garbage").unwrap();
    }
    let pkg = DeploymentPackage::open(&changed).unwrap();
    let (again, hits, misses) = plan(&pkg, &listings);
    assert_eq!((hits, misses), (0, 3));
    assert_eq!(again, fresh);
    // The misses rewrote the listings.
    let pkg = DeploymentPackage::open(&changed).unwrap();
    let (_, hits, _) = plan(&pkg, &listings);
    assert_eq!(hits, 3);
    assert_eq!(pkg.inflated_bytes(), 0);
}

fn content(i: usize) -> Vec<u8> {
    let size = if i.is_multiple_of(4) {
        120_000
    } else {
        2_000 + i
    };
    (0..size).map(|j| (j * 13 + i * 5) as u8).collect()
}

/// A cortex WAR deflated in the package whose archive order is the reverse of layer order,
/// with classes, third-party, snapshot and project jars and resources.
fn reversed_package(path: &Path) {
    let mut names: Vec<String> = Vec::new();
    for i in 0..40 {
        names.push(format!("WEB-INF/classes/com/x/{}/C{i}.class", i % 5));
    }
    for i in 0..12 {
        names.push(format!("WEB-INF/lib/lib{i}-1.0.jar"));
        names.push(format!("WEB-INF/lib/ep-core{i}-1.0.jar"));
        names.push(format!("WEB-INF/lib/snap{i}-1.0-SNAPSHOT.jar"));
        names.push(format!("WEB-INF/res/r{i}.xml"));
    }
    names.sort_by(|a, b| path_cmp(a, b));
    let mut entries = vec![common::deflated("WEB-INF/web.xml", b"<web-app/>")];
    for (i, n) in names.iter().enumerate().rev() {
        entries.push(common::deflated(n, &content(i)));
    }
    let war = common::raw_zip(&entries);
    std::fs::write(
        path,
        common::raw_zip(&[
            common::deflated("webapps/ext-cortex-webapp-1.0.war", &war),
            common::deflated("webapps/ep-rest-studio-1.0.war", &common::tiny_war()),
        ]),
    )
    .unwrap();
}

fn layer_opts() -> LayerOptions {
    LayerOptions {
        compression: Compression::Gzip { level: 1 },
        source_date_epoch: 0,
        threads: 1,
    }
}

#[test]
fn one_shared_pass_writes_the_same_layers_and_inflates_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg_path = tmp.path().join("pkg.zip");
    reversed_package(&pkg_path);
    let war = "webapps/ext-cortex-webapp-1.0.war";
    let stream = StreamOptions {
        // Small enough that the shared budget overflows into spill files.
        memory_cap: 256 << 10,
        spill_dir: tmp.path().join("spill"),
    };

    // One layer at a time.
    let pkg = DeploymentPackage::open(&pkg_path).unwrap();
    let mut sources = Sources::new(&pkg);
    let plans = layering::plan_service_in(&mut sources, Service::Cortex, &LayoutOptions::default())
        .unwrap();
    assert!(plans.len() >= 5, "{:?}", plans.iter().map(|p| &p.name));
    let war_size = pkg.entry(war).unwrap().size;
    let opened = pkg.inflated_bytes();
    let mut single: Vec<LayerOutput> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let mut w = LayerWriter::new(&tmp.path().join(format!("one-{i}")), layer_opts()).unwrap();
        layering::write_layer(&sources, p, &mut w, &stream, &mut |_| {}).unwrap();
        single.push(w.finish().unwrap());
    }
    let one_by_one = pkg.inflated_bytes() - opened;

    // All at once.
    let pkg = DeploymentPackage::open(&pkg_path).unwrap();
    let mut sources = Sources::new(&pkg);
    layering::plan_service_in(&mut sources, Service::Cortex, &LayoutOptions::default()).unwrap();
    let opened = pkg.inflated_bytes();
    let jobs = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| LayerJob {
            plan,
            writer: LayerWriter::new(&tmp.path().join(format!("all-{i}")), layer_opts()).unwrap(),
        })
        .collect();
    let mut shared: Vec<Option<LayerOutput>> = vec![None; plans.len()];
    let mut progressed = vec![0u64; plans.len()];
    let mut passes = 0;
    layering::write_layers::<layering::LayeringError>(
        &sources,
        jobs,
        &stream,
        &mut |i, n| progressed[i] += n,
        &mut |i, w, stats| {
            passes += stats.passes;
            shared[i] = Some(w.finish()?);
            Ok(())
        },
    )
    .unwrap();
    let at_once = pkg.inflated_bytes() - opened;

    for (i, p) in plans.iter().enumerate() {
        let s = shared[i].as_ref().unwrap();
        assert_eq!(s.digest, single[i].digest, "layer {}", p.name);
        assert_eq!(s.diff_id, single[i].diff_id, "layer {}", p.name);
        assert_eq!(progressed[i], p.content_bytes(), "layer {}", p.name);
    }
    // The cortex WAR's layers shared passes: at most one full inflation of it (plus the
    // small studio WAR), where one layer at a time inflated it once per layer.
    assert!(
        at_once <= war_size + 64 * 1024,
        "{at_once} > {war_size} (one by one: {one_by_one})"
    );
    assert!(one_by_one > 2 * war_size, "{one_by_one} vs {war_size}");
    assert!(passes >= 4, "{passes}");
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("spill"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "spill files left behind: {left:?}");
}
