//! Streaming entries of deflated nested WARs into layers in one sequential pass: the reorder
//! buffer (memory, then spill files) keeps layer order whatever the archive order, and a real
//! build of the default 300 MB synthetic package stays under 64 MB of peak RSS.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use ep_imagebuild::layer::{path_cmp, Compression, LayerOptions, LayerWriter};
use ep_imagebuild::layering::{self, LayerRole, LayoutOptions, Service, Sources, StreamOptions};
use ep_imagebuild::package::DeploymentPackage;
use ep_imagebuild::synthetic::{self, SynthOptions};

fn content(i: usize) -> Vec<u8> {
    // Every fifth class is large, so it cannot wait in a small memory buffer.
    let size = if i.is_multiple_of(5) {
        150_000
    } else {
        3_000 + i
    };
    (0..size).map(|j| (j * 31 + i * 7) as u8).collect()
}

#[test]
fn reversed_war_streams_in_one_pass_with_memory_and_spill_buffering() {
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..120)
        .map(|i| format!("WEB-INF/classes/com/x/{}/C{i}.class", i % 7))
        .collect();
    // Archive order is the reverse of layer order: the worst case for the buffer.
    let mut sorted: Vec<usize> = (0..names.len()).collect();
    sorted.sort_by(|a, b| path_cmp(&names[*a], &names[*b]));
    let mut war_entries = vec![common::deflated("WEB-INF/web.xml", b"<web-app/>")];
    for &i in sorted.iter().rev() {
        war_entries.push(common::deflated(&names[i], &content(i)));
    }
    let war = common::raw_zip(&war_entries);
    let studio = common::tiny_war();
    let pkg_path = tmp.path().join("pkg.zip");
    std::fs::write(
        &pkg_path,
        common::raw_zip(&[
            // Deflated in the package: not seekable, so streamed.
            common::deflated("webapps/ext-cortex-webapp-1.0.war", &war),
            common::deflated("webapps/ep-rest-studio-1.0.war", &studio),
        ]),
    )
    .unwrap();

    let pkg = DeploymentPackage::open(&pkg_path).unwrap();
    let opts = LayoutOptions {
        compression: Compression::None,
        ..LayoutOptions::default()
    };
    let mut sources = Sources::new(&pkg);
    let plans = layering::plan_service_in(&mut sources, Service::Cortex, &opts).unwrap();
    let classes = plans.iter().find(|p| p.role == LayerRole::Classes).unwrap();
    assert!(!sources
        .get("webapps/ext-cortex-webapp-1.0.war")
        .unwrap()
        .is_seekable());

    let spill_dir = tmp.path().join("spill");
    let out_dir = tmp.path().join("out");
    let mut writer = LayerWriter::new(
        &out_dir,
        LayerOptions {
            compression: Compression::None,
            source_date_epoch: 0,
            threads: 0,
        },
    )
    .unwrap();
    let mut bytes = 0u64;
    let stats = layering::write_layer(
        &sources,
        classes,
        &mut writer,
        &StreamOptions {
            memory_cap: 64 << 10,
            spill_dir: spill_dir.clone(),
        },
        &mut |n| bytes += n,
    )
    .unwrap();
    let layer = writer.finish().unwrap();
    assert_eq!(stats.passes, 1, "{stats:?}");
    assert!(stats.buffered_entries > 0, "{stats:?}");
    assert!(stats.spilled_entries > 0, "{stats:?}");
    assert!(stats.peak_buffered_bytes <= 64 << 10, "{stats:?}");
    assert_eq!(bytes, classes.content_bytes());
    let left: Vec<_> = std::fs::read_dir(&spill_dir).unwrap().collect();
    assert!(left.is_empty(), "spill files left behind: {left:?}");

    // The tar holds every class, in layer order, with the right bytes.
    let mut archive = tar::Archive::new(std::fs::File::open(&layer.path).unwrap());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if entry.header().entry_type().is_file() {
            let rel = path
                .strip_prefix("usr/local/tomcat/webapps/cortex/")
                .unwrap()
                .to_string();
            let i = names.iter().position(|n| *n == rel).unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert!(data == content(i), "content of {rel}");
        }
        seen.push(path);
    }
    let mut in_order = seen.clone();
    in_order.sort_by(|a, b| path_cmp(a, b));
    assert_eq!(seen, in_order);
    assert_eq!(
        seen.iter().filter(|p| p.ends_with(".class")).count(),
        names.len()
    );
}

/// Peak RSS (KiB) and output of the CLI under `/usr/bin/time`.
fn measured(args: &[&str], pkg: &Path, work: &Path, out: &Path) -> u64 {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.is_file(),
        "/usr/bin/time missing: apt-get install time"
    );
    let o = Command::new(time)
        .args(["-f", "maxrss_kib=%M"])
        .arg(env!("CARGO_BIN_EXE_ep-imagebuild"))
        .arg("build")
        .args(args)
        .arg("--package")
        .arg(pkg)
        .arg("--work-dir")
        .arg(work)
        .arg("--oci-layout")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "build {args:?} failed: {stderr}");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS in {stderr}"))
}

#[test]
fn default_package_builds_every_service_within_64_mb() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg.zip");
    synthetic::write_zip(&SynthOptions::default(), &pkg).unwrap();
    let work = tmp.path().join("work");
    let opened = DeploymentPackage::open(&pkg).unwrap();
    // The synthetic package has no data-sync WAR (it is optional in real packages too).
    let services = Service::ALL
        .into_iter()
        .filter(|s| s.webapps().iter().all(|a| opened.application(a).is_some()));
    for service in services {
        let name = service.name();
        let kib = measured(
            &["--service", name, "--tag", name],
            &pkg,
            &work,
            &tmp.path().join("layout"),
        );
        eprintln!("{name}: peak RSS {} MiB", kib / 1024);
        assert!(kib < 64 * 1024, "{name}: peak RSS {kib} KiB >= 64 MiB");
    }
}
