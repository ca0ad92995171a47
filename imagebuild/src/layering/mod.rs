//! Jib-style layering of Elastic Path services: which file of a deployment package lands where
//! in an image, grouped into layers ordered from least to most often changing, so that a
//! typical change (a few classes, a project jar) rebuilds and pushes one small layer.
//!
//! Planning is pure logic over central directories: it never reads file contents of a zip
//! package (only a directory package's top-level files and host files, which have no CRC to
//! read). Each [`LayerPlan`] carries a stable input fingerprint over its entries (destination,
//! mode, owner, size, CRC-32) plus [`LAYERING_VERSION`] and the compression settings: the key
//! of the [`LayerCache`](crate::cache::LayerCache), and something a planner (a Terraform plan)
//! can compute cheaply to predict which layers will change.
//!
//! Web application layers, bottom to top (empty ones are omitted):
//! 1. `tomcat-lib`: JDBC driver(s) and ActiveMQ client jars → `<tomcat lib>/`;
//! 2. `third-party`: `WEB-INF/lib/*.jar` that are neither Elastic Path's nor snapshots;
//! 3. `snapshot`: other `WEB-INF/lib/*-SNAPSHOT.jar`;
//! 4. `project`: Elastic Path's jars (`ep-*`, `ext-*`, or containing `elasticpath`);
//! 5. `resources`: the rest of the WAR except classes;
//! 6. `classes`: `WEB-INF/classes/**/*.class`;
//! 7. `environments`: the ext-data jar's `environments/<env>/**` → `/ep/environments/<env>/**`.
//!
//! The data population tool gets its CLI zip under `/ep/data-population-cli/` (jars split the
//! same way, the JDBC driver added to its `lib/`, `bin/*` and `*.sh` executable), the ext-data
//! jar's Liquibase data under `/ep/ext-data/` and the environments under `/ep/environments/`.

mod accumulator;
mod custom;
mod glob;
mod listing;
mod rules;
mod sources;
mod stream;
mod types;

use sha2::{Digest as _, Sha256};

use crate::layer::Compression;
use crate::package::DeploymentPackage;

pub use custom::plan_custom;
pub use listing::ListingCache;
pub use rules::{plan_service_in, service_warnings};
pub use sources::{SourceStats, Sources};
pub use stream::{
    write_layer, write_layers, LayerJob, StreamOptions, StreamStats, DEFAULT_MEMORY_CAP,
};
pub use types::{
    CustomLayer, CustomSource, EntrySource, LayerPlan, LayerRole, LayeringError, LayoutOptions,
    PlannedEntry, PlannedKind, Service, UnknownService,
};

/// Version of the layering rules, part of every fingerprint: bump it whenever a rule change
/// would put different bytes in a layer built from the same input.
pub const LAYERING_VERSION: u32 = 1;

/// The fingerprint of a layer's entries (sorted in layer order) under these settings: SHA-256
/// over [`LAYERING_VERSION`], the compression's cache id, the source date epoch and each
/// entry's destination, kind, mode, uid, gid, size and CRC-32 (and symlink target).
pub fn fingerprint_entries(
    entries: &[PlannedEntry],
    compression: &Compression,
    source_date_epoch: u64,
) -> String {
    let mut h = Sha256::new();
    h.update(
        format!(
            "ep-imagebuild layering v{LAYERING_VERSION}\n{}\n{source_date_epoch}\n",
            compression.cache_id()
        )
        .as_bytes(),
    );
    for e in entries {
        h.update(e.dest.as_bytes());
        let kind: u8 = match e.kind {
            PlannedKind::File => b'f',
            PlannedKind::Dir => b'd',
            PlannedKind::Symlink { .. } => b'l',
        };
        h.update([0, kind]);
        h.update(e.mode.to_le_bytes());
        h.update(e.uid.to_le_bytes());
        h.update(e.gid.to_le_bytes());
        h.update(e.size.to_le_bytes());
        h.update(e.crc32.to_le_bytes());
        if let PlannedKind::Symlink { target } = &e.kind {
            h.update(target.as_bytes());
            h.update([0]);
        }
    }
    hex::encode(h.finalize())
}

/// Plans the layers of `service`'s image from `package`.
pub fn plan_service(
    package: &DeploymentPackage,
    service: Service,
    opts: &LayoutOptions,
) -> Result<Vec<LayerPlan>, LayeringError> {
    let mut sources = Sources::new(package);
    plan_service_in(&mut sources, service, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_parse() {
        for s in Service::ALL {
            assert_eq!(s.name().parse::<Service>().ok(), Some(s));
        }
        let err = "nope".parse::<Service>().unwrap_err().to_string();
        assert!(
            err.contains("cortex") && err.contains("data-population"),
            "{err}"
        );
    }
}
