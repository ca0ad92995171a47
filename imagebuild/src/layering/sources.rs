//! The archives nested in a package that a build reads, each opened once.
//!
//! Opening a WAR that is deflated inside the package zip inflates it once to reach its central
//! directory, so planning and writing share one opened [`NestedArchive`] per WAR instead of
//! re-opening it for every layer.

use std::collections::HashMap;

use crate::package::{DeploymentPackage, NestedArchive, PackageError};

/// A package and the nested archives opened from it so far.
#[derive(Debug)]
pub struct Sources<'p> {
    package: &'p DeploymentPackage,
    archives: HashMap<String, NestedArchive<'p>>,
}

impl<'p> Sources<'p> {
    /// No archive opened yet.
    pub fn new(package: &'p DeploymentPackage) -> Self {
        Sources {
            package,
            archives: HashMap::new(),
        }
    }

    /// The package.
    pub fn package(&self) -> &'p DeploymentPackage {
        self.package
    }

    /// Opens the nested archive at `path` (package-relative) unless already open.
    pub fn open(&mut self, path: &str) -> Result<&NestedArchive<'p>, PackageError> {
        if !self.archives.contains_key(path) {
            let archive = self.package.open_nested(path)?;
            self.archives.insert(path.to_string(), archive);
        }
        self.archives
            .get(path)
            .ok_or_else(|| PackageError::EntryNotFound {
                archive: self.package.path().display().to_string(),
                entry: path.to_string(),
            })
    }

    /// An archive opened earlier, if any.
    pub fn get(&self, path: &str) -> Option<&NestedArchive<'p>> {
        self.archives.get(path)
    }
}
