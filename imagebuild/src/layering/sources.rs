//! The archives nested in a package that a build reads, each opened once.
//!
//! Opening a WAR that is deflated inside the package zip inflates it once to reach its central
//! directory, so planning and writing share one opened [`NestedArchive`] per WAR instead of
//! re-opening it for every layer; with a [`ListingCache`], a WAR whose entry in the package did
//! not change since an earlier build is reopened from its stored listing without inflating.

use std::collections::HashMap;

use serde::Serialize;

use super::listing::ListingCache;
use crate::package::{DeploymentPackage, NestedArchive, PackageError};

/// How the nested archives were opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceStats {
    /// Deflated archives reopened from a cached listing (nothing inflated).
    pub listing_hits: usize,
    /// Deflated archives whose central directory had to be inflated.
    pub listing_misses: usize,
}

/// A package and the nested archives opened from it so far.
#[derive(Debug)]
pub struct Sources<'p> {
    package: &'p DeploymentPackage,
    archives: HashMap<String, NestedArchive<'p>>,
    listings: Option<ListingCache>,
    stats: SourceStats,
}

impl<'p> Sources<'p> {
    /// No archive opened yet, no listing cache.
    pub fn new(package: &'p DeploymentPackage) -> Self {
        Sources {
            package,
            archives: HashMap::new(),
            listings: None,
            stats: SourceStats::default(),
        }
    }

    /// Like [`new`](Self::new), reusing and recording the listings of deflated archives in
    /// `listings`.
    pub fn with_listing_cache(package: &'p DeploymentPackage, listings: ListingCache) -> Self {
        Sources {
            listings: Some(listings),
            ..Sources::new(package)
        }
    }

    /// The package.
    pub fn package(&self) -> &'p DeploymentPackage {
        self.package
    }

    /// How archives were opened so far.
    pub fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// Opens the nested archive at `path` (package-relative) unless already open.
    pub fn open(&mut self, path: &str) -> Result<&NestedArchive<'p>, PackageError> {
        if !self.archives.contains_key(path) {
            let archive = self.open_new(path)?;
            self.archives.insert(path.to_string(), archive);
        }
        self.archives
            .get(path)
            .ok_or_else(|| PackageError::EntryNotFound {
                archive: self.package.path().display().to_string(),
                entry: path.to_string(),
            })
    }

    fn open_new(&mut self, path: &str) -> Result<NestedArchive<'p>, PackageError> {
        let (archive, listed) = open_one(self.package, self.listings.as_ref(), path);
        self.count(listed);
        archive
    }

    fn count(&mut self, listed: Listed) {
        match listed {
            Listed::Hit => self.stats.listing_hits += 1,
            Listed::Miss => self.stats.listing_misses += 1,
            Listed::NotCached => {}
        }
    }

    /// An archive opened earlier, if any.
    pub fn get(&self, path: &str) -> Option<&NestedArchive<'p>> {
        self.archives.get(path)
    }
}

/// Whether an archive came from the listing cache.
#[derive(Debug, Clone, Copy)]
enum Listed {
    Hit,
    Miss,
    NotCached,
}

/// Opens one nested archive, from its cached listing when there is an intact one.
fn open_one<'p>(
    package: &'p DeploymentPackage,
    listings: Option<&ListingCache>,
    path: &str,
) -> (Result<NestedArchive<'p>, PackageError>, Listed) {
    // Only a deflated archive is worth a listing: a stored one (or a file of a package
    // directory) has its central directory read in place, by seeking.
    let coding = package.entry_coding(path).filter(|c| c.is_deflated());
    let (Some(cache), Some(coding)) = (listings, coding) else {
        return (package.open_nested(path), Listed::NotCached);
    };
    if let Some(listing) = cache.load(path, &coding) {
        // A stored listing that no longer passes the checks (stricter limits, damage the
        // checksum missed) is a miss: a fresh read then reports what is really wrong.
        if let Ok(archive) = package.open_nested_listed(path, &listing) {
            return (Ok(archive), Listed::Hit);
        }
    }
    let archive = package.open_nested(path);
    if let Ok(a) = &archive {
        // Best effort: failing to store only costs the next build this inflation again.
        let _ = cache.store(path, &coding, a.listing());
    }
    (archive, Listed::Miss)
}
