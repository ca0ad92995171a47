//! The Elastic Path layering rules: which file of a package goes into which layer of which
//! service's image. The rules people edit when the package or the images change.

use std::io::{self, Read};

use super::accumulator::{dest_dir, file_name, join, Accumulator};
use super::{EntrySource, LayerPlan, LayerRole, LayeringError, LayoutOptions, Service, Sources};
use crate::package::{DeploymentPackage, EntryKind, NestedArchive, PackageError};

/// [`plan_service`] with archives kept open in `sources` for writing afterwards.
pub fn plan_service_in(
    sources: &mut Sources<'_>,
    service: Service,
    opts: &LayoutOptions,
) -> Result<Vec<LayerPlan>, LayeringError> {
    let mut acc = Accumulator::new(opts);
    let pkg = sources.package();
    if service == Service::DataPopulation {
        plan_data_population(sources, service, &mut acc)?;
    } else {
        let lib = dest_dir(&opts.tomcat_lib_dir)?;
        for a in pkg.jdbc_drivers().iter().chain(pkg.activemq_libraries()) {
            let file = file_name(&a.path);
            let crc = top_level_crc(pkg, &a.path)?;
            acc.file(
                LayerRole::TomcatLib,
                &lib,
                file,
                0o644,
                a.size,
                crc,
                EntrySource::Package {
                    path: a.path.clone(),
                },
            )?;
        }
        let webapps = dest_dir(&opts.webapps_dir)?;
        for app in service.webapps() {
            let artifact = match pkg.application(app) {
                Some(a) => a,
                // Reported by `service_warnings`.
                None if service.optional_webapps().contains(app) => continue,
                None => {
                    return Err(LayeringError::MissingApplication {
                        service,
                        application: (*app).to_string(),
                    })
                }
            };
            let root = join(&webapps, app);
            let war = sources.open(&artifact.path)?;
            plan_archive(&mut acc, war, &artifact.path, &root, classify_war)?;
        }
        plan_environments(sources, service, &mut acc, false)?;
    }
    acc.finish()
}

/// What a build of `service` from `pkg` does that the user may not expect: an optional
/// application ([`Service::optional_webapps`]) the package lacks is left out of the image.
pub fn service_warnings(pkg: &DeploymentPackage, service: Service) -> Vec<String> {
    service
        .optional_webapps()
        .iter()
        .filter(|app| pkg.application(app).is_none())
        .map(|app| {
            format!(
                "the package has no {app} application (webapps/*-{app}-*.war): the {service} \
                 image is built without it"
            )
        })
        .collect()
}

fn plan_data_population(
    sources: &mut Sources<'_>,
    service: Service,
    acc: &mut Accumulator<'_>,
) -> Result<(), LayeringError> {
    let pkg = sources.package();
    let opts = acc.opts;
    let tool = pkg
        .tool("data-population")
        .ok_or_else(|| LayeringError::MissingTool {
            service,
            tool: "data-population".into(),
        })?;
    let root = dest_dir(&opts.data_population_dir)?;
    let zip = sources.open(&tool.path)?;
    plan_archive(acc, zip, &tool.path, &root, classify_tool)?;
    let lib = join(&root, "lib");
    for d in pkg.jdbc_drivers() {
        let crc = top_level_crc(pkg, &d.path)?;
        acc.file(
            LayerRole::ThirdParty,
            &lib,
            file_name(&d.path),
            0o644,
            d.size,
            crc,
            EntrySource::Package {
                path: d.path.clone(),
            },
        )?;
    }
    plan_environments(sources, service, acc, true)
}

/// Adds the ext-data jar's environments (and, for the data population image, the rest of the
/// jar under the ext-data directory).
fn plan_environments(
    sources: &mut Sources<'_>,
    service: Service,
    acc: &mut Accumulator<'_>,
    with_data: bool,
) -> Result<(), LayeringError> {
    let pkg = sources.package();
    let Some(ext) = pkg.ext_data() else {
        if with_data {
            return Err(LayeringError::MissingExtData { service });
        }
        // A package without ext-data simply has no environments layer.
        return Ok(());
    };
    let env_root = dest_dir(&acc.opts.environments_dir)?;
    let data_root = dest_dir(&acc.opts.ext_data_dir)?;
    let jar = sources.open(&ext.path)?;
    for e in jar.entries() {
        let (role, root, rel) = match e.path.strip_prefix("environments/") {
            Some(rel) => (LayerRole::Environments, &env_root, rel),
            None if with_data => (LayerRole::ExtData, &data_root, e.path.as_str()),
            None => continue,
        };
        // The manifest says nothing the tool reads; keeping it out keeps the layer stable
        // across rebuilds of an otherwise identical jar.
        if rel.is_empty() || (role == LayerRole::ExtData && rel.starts_with("META-INF/")) {
            continue;
        }
        let source = EntrySource::Nested {
            archive: ext.path.clone(),
            path: e.path.clone(),
        };
        match e.kind {
            EntryKind::Directory => acc.dir(role, root, rel),
            EntryKind::File => {
                acc.file(role, root, rel, 0o644, e.size, e.crc32.unwrap_or(0), source)?
            }
        }
    }
    Ok(())
}

/// Where an entry of a WAR goes.
fn classify_war(path: &str) -> (LayerRole, u32) {
    if let Some(name) = path.strip_prefix("WEB-INF/lib/") {
        if !name.contains('/') && name.ends_with(".jar") {
            return (jar_role(name), 0o644);
        }
    }
    if path.starts_with("WEB-INF/classes/") && path.ends_with(".class") {
        return (LayerRole::Classes, 0o644);
    }
    (LayerRole::Resources, 0o644)
}

/// Where an entry of the data population tool's zip goes (after its top folder, if any, is
/// stripped).
fn classify_tool(path: &str) -> (LayerRole, u32) {
    let executable = path.starts_with("bin/") || path.ends_with(".sh");
    let mode = if executable { 0o755 } else { 0o644 };
    if let Some(name) = path.strip_prefix("lib/") {
        if !name.contains('/') && name.ends_with(".jar") {
            return (jar_role(name), mode);
        }
    }
    (LayerRole::Resources, mode)
}

/// Elastic Path's own jars by name; snapshots of anything else; the rest third-party.
fn jar_role(name: &str) -> LayerRole {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("ep-") || lower.starts_with("ext-") || lower.contains("elasticpath") {
        LayerRole::Project
    } else if name.ends_with("-SNAPSHOT.jar") {
        LayerRole::Snapshot
    } else {
        LayerRole::ThirdParty
    }
}

/// Places every entry of `archive` under `root` by `classify`. A single top-level folder
/// holding everything (as tool zips often have) is stripped.
fn plan_archive(
    acc: &mut Accumulator<'_>,
    archive: &NestedArchive<'_>,
    archive_path: &str,
    root: &str,
    classify: fn(&str) -> (LayerRole, u32),
) -> Result<(), LayeringError> {
    let strip = common_top_folder(archive, archive_path.ends_with(".zip"));
    let mut explicit_dirs = Vec::new();
    for e in archive.entries() {
        let rel = match &strip {
            Some(top) => match e.path.strip_prefix(top.as_str()) {
                Some(r) => r.trim_start_matches('/'),
                None => continue,
            },
            None => e.path.as_str(),
        };
        if rel.is_empty() {
            continue;
        }
        match e.kind {
            EntryKind::Directory => explicit_dirs.push(rel.to_string()),
            EntryKind::File => {
                let (role, mode) = classify(rel);
                acc.file(
                    role,
                    root,
                    rel,
                    mode,
                    e.size,
                    e.crc32.unwrap_or(0),
                    EntrySource::Nested {
                        archive: archive_path.to_string(),
                        path: e.path.clone(),
                    },
                )?;
            }
        }
    }
    // Directories only the zip lists (empty ones, say) go with the resources, unless a layer
    // already creates them as parents of its files.
    acc.dir(LayerRole::Resources, root, "");
    for d in explicit_dirs {
        let dest = join(root, &d);
        if !acc.has_dir(&dest) {
            acc.dir(LayerRole::Resources, root, &d);
        }
    }
    Ok(())
}

/// For tool zips: the one top-level folder every entry is below, if there is one and no file
/// sits at the top.
fn common_top_folder(archive: &NestedArchive<'_>, enabled: bool) -> Option<String> {
    if !enabled {
        return None;
    }
    let mut top: Option<&str> = None;
    for e in archive.entries() {
        let (first, rest) = e.path.split_once('/')?;
        if rest.is_empty() && e.kind == EntryKind::File {
            return None;
        }
        match top {
            None => top = Some(first),
            Some(t) if t == first => {}
            Some(_) => return None,
        }
    }
    // A "folder" that is really `bin/` or `lib/` of a flat zip must stay.
    top.filter(|t| !matches!(*t, "bin" | "lib" | "config" | "conf"))
        .map(str::to_string)
}

/// The CRC-32 of a top-level package file: from the zip's central directory, or read (a
/// directory package has no CRCs; these files are small jars).
pub(super) fn top_level_crc(pkg: &DeploymentPackage, path: &str) -> Result<u32, LayeringError> {
    if let Some(crc) = pkg.entry(path).and_then(|e| e.crc32) {
        return Ok(crc);
    }
    let mut reader = pkg.open_entry(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PackageError::from_io(e, path).into()),
        }
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            classify_war("WEB-INF/lib/guava-33.jar").0,
            LayerRole::ThirdParty
        );
        assert_eq!(
            classify_war("WEB-INF/lib/foo-1.0-SNAPSHOT.jar").0,
            LayerRole::Snapshot
        );
        assert_eq!(
            classify_war("WEB-INF/lib/ext-core-1.0-SNAPSHOT.jar").0,
            LayerRole::Project
        );
        assert_eq!(
            classify_war("WEB-INF/lib/ep-core-8.jar").0,
            LayerRole::Project
        );
        assert_eq!(
            classify_war("WEB-INF/lib/com.elasticpath.x.jar").0,
            LayerRole::Project
        );
        assert_eq!(
            classify_war("WEB-INF/lib/sub/a.jar").0,
            LayerRole::Resources
        );
        assert_eq!(
            classify_war("WEB-INF/classes/a/B.class").0,
            LayerRole::Classes
        );
        assert_eq!(
            classify_war("WEB-INF/classes/a/b.properties").0,
            LayerRole::Resources
        );
        assert_eq!(classify_war("index.html").0, LayerRole::Resources);
        assert_eq!(classify_tool("bin/run"), (LayerRole::Resources, 0o755));
        assert_eq!(classify_tool("x/run.sh"), (LayerRole::Resources, 0o755));
        assert_eq!(classify_tool("lib/ep-x.jar"), (LayerRole::Project, 0o644));
    }
}
