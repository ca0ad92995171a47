//! The `ep_database_image` configuration with defaults applied, its
//! validate-time checks (on the attribute), and the data fingerprint.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ep_imagebuild::registry::valid_tag;

use super::model::DatabaseImageModel;
use crate::datapop::content::sha;
use crate::datapop::Secret;
use crate::framework::model::Field;
use crate::framework::{AttrPath, Diagnostic, Diagnostics, Known, Phase, Planning};
use crate::resources::image::args::{parse_base, split_repository, BaseArg};
use crate::resources::rds_snapshot::settings::{
    check_tool_account, DEFAULT_APP_USER, DEFAULT_SCHEMA,
};

/// Default data directory in the image.
pub const DEFAULT_DATA_DIRECTORY: &str = "/var/lib/mysql";
/// Default owner (and group) of the data files: the official images' `mysql`.
pub const DEFAULT_DATA_OWNER: u32 = 999;
/// Default data directory initialiser.
pub const DEFAULT_INSTALL_DB: &str = "mariadb-install-db";
/// Default client.
pub const DEFAULT_CLIENT: &str = "mariadb";

/// Everything the image is built from, wholly known, defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// Repository as written.
    pub repository: String,
    /// Tags to push.
    pub tags: Vec<String>,
    /// The base.
    pub base: BaseArg,
    /// The deployment package.
    pub package: String,
    /// The environment.
    pub environment: String,
    /// The commerce schema.
    pub schema: String,
    /// The application user.
    pub app_user: String,
    /// Its password (part of the fingerprint: the data holds its hash).
    pub password: Secret,
    /// Extra properties for the tool.
    pub extra_properties: BTreeMap<String, String>,
    /// Data directory in the image.
    pub data_directory: String,
    /// Owner of the data files.
    pub uid: u32,
    /// Group of the data files.
    pub gid: u32,
    /// The server binary.
    pub server: PathBuf,
    /// The initialiser.
    pub install_db: PathBuf,
    /// The client.
    pub client: PathBuf,
}

impl Args {
    /// The build inputs of a model, or `None` while any is unknown (tags
    /// may stay unknown: they do not change the image).
    pub fn from_model<P: Phase>(c: &DatabaseImageModel<P>) -> Option<Args> {
        fn k<P: Phase, T: Field>(v: &P::Of<T>) -> Option<T> {
            P::known(v).cloned()
        }
        Some(Args {
            repository: k::<P, _>(&c.repository)?,
            tags: P::known(&c.tags).cloned().flatten().unwrap_or_default(),
            base: parse_base(&k::<P, _>(&c.base)?),
            package: k::<P, _>(&c.deployment_package)?,
            environment: k::<P, _>(&c.environment)?,
            schema: k::<P, _>(&c.schema_name)?.unwrap_or_else(|| DEFAULT_SCHEMA.into()),
            app_user: k::<P, _>(&c.database_username)?.unwrap_or_else(|| DEFAULT_APP_USER.into()),
            password: Secret::new(k::<P, _>(&c.database_password)?),
            extra_properties: k::<P, _>(&c.extra_properties)?.unwrap_or_default(),
            data_directory: k::<P, _>(&c.data_directory)?
                .unwrap_or_else(|| DEFAULT_DATA_DIRECTORY.into()),
            uid: k::<P, _>(&c.data_uid)?.unwrap_or(DEFAULT_DATA_OWNER),
            gid: k::<P, _>(&c.data_gid)?.unwrap_or(DEFAULT_DATA_OWNER),
            server: k::<P, _>(&c.server_binary)?
                .map(PathBuf::from)
                .unwrap_or_else(crate::dbserver::default_server),
            install_db: PathBuf::from(
                k::<P, _>(&c.install_db_binary)?.unwrap_or_else(|| DEFAULT_INSTALL_DB.into()),
            ),
            client: PathBuf::from(
                k::<P, _>(&c.client_binary)?.unwrap_or_else(|| DEFAULT_CLIENT.into()),
            ),
        })
    }
}

fn err(d: &mut Diagnostics, attr: &str, summary: &str, detail: String) {
    d.push(Diagnostic::error(summary, detail).at(AttrPath::root(attr)));
}

/// Checks whatever is known of the configuration (the package is checked
/// separately, off the async threads).
pub fn validate(c: &DatabaseImageModel<Planning>) -> Diagnostics {
    let mut d = Diagnostics::new();
    if let Known::Known(r) = &c.repository {
        if r.is_empty() || split_repository(r).1.is_empty() {
            err(
                &mut d,
                "repository",
                "Invalid repository",
                format!("{r:?} names no repository."),
            );
        }
    }
    if let Some(tags) = c.tags.present() {
        for (i, t) in tags.iter().enumerate() {
            if !valid_tag(t) {
                d.push(
                    Diagnostic::error("Invalid tag", format!("{t:?} is not a valid image tag."))
                        .at(AttrPath::root("tags").index(i)),
                );
            }
        }
    }
    if let Known::Known(b) = &c.base {
        if matches!(parse_base(b), BaseArg::Scratch) {
            err(
                &mut d,
                "base",
                "A database image needs a server",
                "`scratch` has no MySQL/MariaDB server to run the data; name a MariaDB or MySQL \
                 image, or `dir:`/`tar:` root filesystem."
                    .into(),
            );
        }
    }
    check_tool_account(
        &mut d,
        c.schema_name.present().map(String::as_str),
        c.database_username.present().map(String::as_str),
        c.database_password.get().map(String::as_str),
    );
    if let Some(dir) = c.data_directory.present() {
        let ok = dir.starts_with('/')
            && dir.len() > 1
            && dir
                .trim_start_matches('/')
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != "..");
        if !ok {
            err(
                &mut d,
                "data_directory",
                "Invalid data directory",
                format!("{dir:?} is not an absolute directory such as `/var/lib/mysql`."),
            );
        }
    }
    d
}

/// What the data fingerprint covers besides the package.
#[derive(Clone, Debug)]
pub struct FingerprintInputs<'a> {
    /// [`crate::datapop::content::package_data_hash`] of the package.
    pub package_hash: &'a str,
    /// The resolved settings.
    pub args: &'a Args,
    /// The server's version.
    pub server_version: &'a str,
    /// The base's identity: its manifest digest, or a local root filesystem's content identity.
    pub base_identity: &'a str,
}

/// The data fingerprint: equal exactly when a build would put the same
/// database on the same base.
pub fn fingerprint(i: &FingerprintInputs<'_>) -> String {
    let a = i.args;
    let extra: Vec<String> = a
        .extra_properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let (uid, gid) = (a.uid.to_string(), a.gid.to_string());
    let mut parts = vec![
        "ep_database_image/v1",
        i.package_hash,
        &a.environment,
        &a.schema,
        &a.app_user,
        // The data holds the application user's password hash, so another
        // password is other data (and a cached data directory is never
        // reused with a stale password).
        a.password.expose(),
        i.server_version,
        i.base_identity,
        &a.data_directory,
        &uid,
        &gid,
    ];
    parts.extend(extra.iter().map(String::as_str));
    sha(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args {
            repository: "r/db".into(),
            tags: vec![],
            base: BaseArg::Image("mariadb:10.11".into()),
            package: "/p.zip".into(),
            environment: "author".into(),
            schema: "commercedb".into(),
            app_user: "ep".into(),
            password: Secret::new("pw"),
            extra_properties: BTreeMap::new(),
            data_directory: DEFAULT_DATA_DIRECTORY.into(),
            uid: 999,
            gid: 999,
            server: "mariadbd".into(),
            install_db: "mariadb-install-db".into(),
            client: "mariadb".into(),
        }
    }

    #[test]
    fn the_fingerprint_follows_what_changes_the_data() {
        let a = args();
        let fp = |a: &Args, v: &str, b: &str| {
            fingerprint(&FingerprintInputs {
                package_hash: "pkg",
                args: a,
                server_version: v,
                base_identity: b,
            })
        };
        let base = fp(&a, "10.11.6", "sha256:1");
        assert_eq!(base.len(), 64);
        let mut moved = a.clone();
        moved.package = "/elsewhere/p.zip".into();
        moved.tags = vec!["v2".into()];
        moved.server = "/opt/mariadbd".into();
        assert_eq!(
            fp(&moved, "10.11.6", "sha256:1"),
            base,
            "paths and tags do not count"
        );
        assert_ne!(fp(&a, "10.11.7", "sha256:1"), base, "server version");
        assert_ne!(fp(&a, "10.11.6", "sha256:2"), base, "base");
        let mut live = a.clone();
        live.environment = "live".into();
        assert_ne!(fp(&live, "10.11.6", "sha256:1"), base, "environment");
        let mut password = a.clone();
        password.password = Secret::new("other");
        assert_ne!(fp(&password, "10.11.6", "sha256:1"), base, "password");
        let mut owner = a.clone();
        owner.uid = 27;
        assert_ne!(fp(&owner, "10.11.6", "sha256:1"), base, "owner");
        let mut extra = a;
        extra.extra_properties.insert("k".into(), "v".into());
        assert_ne!(fp(&extra, "10.11.6", "sha256:1"), base, "extra properties");
    }
}
