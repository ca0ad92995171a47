//! Deterministic synthetic deployment packages for tests, demos and benchmarks.
//!
//! Elastic Path's real deployment package cannot be shipped, so this module writes one in the
//! same layout (see [`crate::package`]): six WARs with `WEB-INF/lib` jars and
//! `WEB-INF/classes`, the data population tool zip, the ext-data jar with its environments,
//! the JDBC driver, the ActiveMQ client jars and `ops-spec.json`.
//!
//! The data population tool really works, on a small scale: its `data-population.sh` applies
//! the ext-data jar's SQL change sets (`sql/ext-data-changelog.sql`, Liquibase formatted SQL,
//! different rows per environment through contexts) with the `mysql` client; see
//! `docs/data-population.md` for the contract and [`DATA_POPULATION_LAUNCHER`].
//!
//! Output is a pure function of [`SynthOptions`]: fixed timestamps, sorted entries, and a
//! self-contained PRNG seeded per file (so changing one class never shifts another file's
//! bytes). Jar payloads are random and therefore nearly incompressible, like real jars inside
//! a WAR; third-party jars with the same name are byte-identical across WARs, as in reality.

mod data;
mod layout;
mod rng;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use data::{data_pop_items, ext_data_items, ops_spec};
use layout::{WebappSpec, WEBAPPS};
use rng::Rng;

/// Default total size: about the size of a real package.
pub const DEFAULT_TARGET_SIZE: u64 = 300_000_000;
/// Size of the "small" preset used by fast tests.
pub const SMALL_TARGET_SIZE: u64 = 8_000_000;
/// Smallest target accepted; below it the fixed layout alone exceeds the target.
pub const MIN_TARGET_SIZE: u64 = 1_000_000;
/// Default release version.
pub const DEFAULT_VERSION: &str = "8.5.0";

/// The launcher at the top of the data population tool zip (`data-population.sh`); the zip's
/// `bin/data-population.sh` runs it too.
pub const DATA_POPULATION_LAUNCHER: &str = include_str!("data-population.sh");

/// Path of the SQL changelog inside the ext-data jar.
pub const EXT_DATA_SQL_CHANGELOG: &str = "sql/ext-data-changelog.sql";

/// The class in the cortex WAR that [`SynthOptions::changed_class`] rewrites.
pub const CHANGED_CLASS_PATH: &str =
    "WEB-INF/classes/com/elasticpath/extensions/cortex/CortexExtensionModule.class";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    /// Seed of every byte generated.
    pub seed: u64,
    /// Approximate size of the package zip in bytes.
    pub target_size: u64,
    /// Release version used in file names (`ext-cortex-webapp-<version>.war`, ...).
    pub version: String,
    /// When set, the content of [`CHANGED_CLASS_PATH`] in the cortex WAR is regenerated as
    /// revision `n` (same size); every other file, in the WAR and outside, is byte-identical
    /// to the package generated without it.
    pub changed_class: Option<u32>,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            seed: 1,
            target_size: DEFAULT_TARGET_SIZE,
            version: DEFAULT_VERSION.to_string(),
            changed_class: None,
        }
    }
}

impl SynthOptions {
    /// The small preset (about 8 MB), for fast tests.
    pub fn small(seed: u64) -> Self {
        SynthOptions {
            seed,
            target_size: SMALL_TARGET_SIZE,
            ..SynthOptions::default()
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthReport {
    /// The zip file or directory written.
    pub path: PathBuf,
    /// Bytes written (the zip's size, or the sum of the files for a directory).
    pub bytes: u64,
    /// Relative paths and sizes of the package's files, sorted.
    pub files: Vec<(String, u64)>,
}

/// Generation failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The options cannot produce a package.
    #[error("invalid synthetic package options: {0}")]
    InvalidOptions(String),
    /// Writing the output failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The output path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The zip writer failed.
    #[error("cannot write zip entry {entry}: {source}")]
    Zip {
        /// The entry being written.
        entry: String,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },
}

fn zip_err(entry: &str) -> impl FnOnce(zip::result::ZipError) -> SynthError + '_ {
    move |source| SynthError::Zip {
        entry: entry.to_string(),
        source,
    }
}

fn io_zip_err(entry: &str) -> impl FnOnce(io::Error) -> SynthError + '_ {
    move |e| SynthError::Zip {
        entry: entry.to_string(),
        source: zip::result::ZipError::Io(e),
    }
}

/// Sizing decisions derived from the target.
#[derive(Debug, Clone)]
struct Plan {
    seed: u64,
    version: String,
    changed_class: Option<u32>,
    /// Bytes per KiB of catalogue weight.
    jar_scale: f64,
    classes_per_weight: u64,
    ext_data_text: u64,
}

const AVG_CLASS_BYTES: u64 = 3_400;
const EXT_CORE_KIB: u64 = 300;

impl Plan {
    fn new(opts: &SynthOptions) -> Result<Self, SynthError> {
        if opts.target_size < MIN_TARGET_SIZE {
            return Err(SynthError::InvalidOptions(format!(
                "target size {} is below the minimum of {MIN_TARGET_SIZE} bytes",
                opts.target_size
            )));
        }
        let version_ok = !opts.version.is_empty()
            && opts.version.starts_with(|c: char| c.is_ascii_digit())
            && opts
                .version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !version_ok {
            return Err(SynthError::InvalidOptions(format!(
                "version {:?} must start with a digit and contain only letters, digits, `.`, `-`, `_`",
                opts.version
            )));
        }
        let target = opts.target_size;
        let classes_per_weight = (target / 4_000_000).clamp(8, 200);
        let class_weights: u64 = WEBAPPS.iter().map(|w| w.class_weight).sum();
        // Classes, plus about one properties/XML file per ten classes.
        let class_bytes = class_weights * classes_per_weight * AVG_CLASS_BYTES * 11 / 10;
        let ext_data_text = target / 20;
        // Liquibase XML deflates about 5:1 inside the jar.
        let fixed = class_bytes + ext_data_text / 5 + 64 * 1024;
        let sum = |list: &[(&str, u64)]| list.iter().map(|(_, k)| k).sum::<u64>();
        let per_war = sum(layout::COMMON_THIRD_PARTY) + sum(layout::COMMON_PROJECT) + EXT_CORE_KIB;
        let mut weight_kib: u64 = WEBAPPS
            .iter()
            .map(|w| per_war + sum(w.third_party) + sum(w.project))
            .sum();
        weight_kib += sum(layout::DATA_POP_THIRD_PARTY)
            + sum(layout::DATA_POP_PROJECT)
            + sum(layout::ACTIVEMQ_LIBS)
            + layout::JDBC_DRIVER.1;
        let jar_budget = target.saturating_sub(fixed).max(target / 4);
        Ok(Plan {
            seed: opts.seed,
            version: opts.version.clone(),
            changed_class: opts.changed_class,
            jar_scale: jar_budget as f64 / (weight_kib as f64 * 1024.0),
            classes_per_weight,
            ext_data_text,
        })
    }

    fn jar_size(&self, kib: u64) -> u64 {
        ((kib as f64 * 1024.0 * self.jar_scale) as u64).max(2048)
    }
}

fn options(method: CompressionMethod, mode: u32) -> SimpleFileOptions {
    let opts = SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(DateTime::default())
        .unix_permissions(mode);
    if method == CompressionMethod::Deflated {
        // Level 1: the payloads are random, better levels only cost time.
        opts.compression_level(Some(1))
    } else {
        opts
    }
}

/// What one zip entry holds; generated when written so a WAR is never held twice.
enum Item {
    Text(String),
    /// `stored` keeps the entry's compressed size fixed whatever its bytes.
    Class {
        size: u64,
        revision: Option<u32>,
        stored: bool,
    },
    Jar {
        file: String,
        size: u64,
    },
    Script(String),
}

/// Writes `items` (sorted by name) into an in-memory zip.
fn build_zip(plan: &Plan, items: &BTreeMap<String, Item>) -> Result<Vec<u8>, SynthError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, item) in items {
        let (method, mode, bytes) = match item {
            Item::Text(t) => (CompressionMethod::Deflated, 0o644, t.clone().into_bytes()),
            Item::Script(t) => (CompressionMethod::Deflated, 0o755, t.clone().into_bytes()),
            Item::Class {
                size,
                revision,
                stored,
            } => {
                let key = match revision {
                    Some(r) => format!("class:{name}#rev{r}"),
                    None => format!("class:{name}"),
                };
                let mut rng = Rng::for_item(plan.seed, &key);
                let method = if *stored {
                    CompressionMethod::Stored
                } else {
                    CompressionMethod::Deflated
                };
                (method, 0o644, class_bytes(&mut rng, *size))
            }
            Item::Jar { file, size } => (CompressionMethod::Stored, 0o644, jar(plan, file, *size)?),
        };
        zip.start_file(name.as_str(), options(method, mode))
            .map_err(zip_err(name))?;
        zip.write_all(&bytes).map_err(io_zip_err(name))?;
    }
    Ok(zip
        .finish()
        .map_err(zip_err("<central directory>"))?
        .into_inner())
}

/// Bytes that look like a class file: the magic, then a mix of random bytes and repeated
/// constant-pool-like text, so it deflates about 2:1 like real classes.
fn class_bytes(rng: &mut Rng, size: u64) -> Vec<u8> {
    let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
    rng.fill(&mut buf);
    const POOL: &[u8] = b"java/lang/Object<init>()VCodeLineNumberTableLocalVariableTablethis";
    for block in buf.chunks_mut(128).skip(1).step_by(2) {
        for (d, s) in block.iter_mut().zip(POOL.iter().cycle()) {
            *d = *s;
        }
    }
    for (d, s) in buf.iter_mut().zip([0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 0x37]) {
        *d = s;
    }
    buf
}

/// A jar: a manifest plus stored class entries of random bytes totalling about `size`.
/// Seeded by file name only, so the same jar is identical in every WAR that carries it.
fn jar(plan: &Plan, file: &str, size: u64) -> Result<Vec<u8>, SynthError> {
    let mut rng = Rng::for_item(plan.seed, &format!("jar:{file}"));
    let stem = file.strip_suffix(".jar").unwrap_or(file);
    let package: String = stem
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty() && !s.starts_with(|c: char| c.is_ascii_digit()))
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    let count = (size / 16_384).clamp(1, 256);
    let mut zip = ZipWriter::new(Cursor::new(Vec::with_capacity(size as usize + 4096)));
    let manifest = format!(
        "Manifest-Version: 1.0\r\nCreated-By: Maven JAR Plugin 3.3.0\r\nBuild-Jdk-Spec: 17\r\n\
         Implementation-Title: {stem}\r\n\r\n"
    );
    zip.start_file(
        "META-INF/MANIFEST.MF",
        options(CompressionMethod::Deflated, 0o644),
    )
    .map_err(zip_err(file))?;
    zip.write_all(manifest.as_bytes())
        .map_err(io_zip_err(file))?;
    let mut left = size;
    let mut buf = Vec::new();
    for i in 0..count {
        let share = left / (count - i);
        let this = if i + 1 == count {
            left
        } else {
            rng.range(share * 3 / 4, share * 5 / 4).min(left)
        };
        left -= this;
        buf.resize(usize::try_from(this).unwrap_or(0), 0);
        rng.fill(&mut buf);
        let name = format!("org/{package}/p{}/C{i:04}.class", i % 7);
        zip.start_file(name.as_str(), options(CompressionMethod::Stored, 0o644))
            .map_err(zip_err(file))?;
        zip.write_all(&buf).map_err(io_zip_err(file))?;
    }
    Ok(zip.finish().map_err(zip_err(file))?.into_inner())
}

const CLASS_DIRS: &[&str] = &["resources", "services", "domain", "dao", "util", "config"];
const CLASS_NAMES: &[&str] = &[
    "Product",
    "Cart",
    "Order",
    "Customer",
    "Price",
    "Catalog",
    "Store",
    "Payment",
    "Shipping",
    "Inventory",
    "Promotion",
    "Search",
    "Account",
    "Address",
    "Tax",
];
const CLASS_SUFFIXES: &[&str] = &["Impl", "Resource", "Service", "Helper", "Converter", "Dto"];

fn war_items(plan: &Plan, spec: &WebappSpec) -> BTreeMap<String, Item> {
    let v = &plan.version;
    let mut items = BTreeMap::new();
    items.insert(
        "META-INF/MANIFEST.MF".to_string(),
        Item::Text(format!(
            "Manifest-Version: 1.0\r\nCreated-By: Maven WAR Plugin 3.4.0\r\nBuild-Jdk-Spec: 17\r\n\
             Implementation-Title: {}\r\nImplementation-Version: {v}\r\n\r\n",
            spec.artifact_id
        )),
    );
    items.insert(
        "WEB-INF/web.xml".to_string(),
        Item::Text(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<web-app xmlns=\"http://xmlns.jcp.org/xml/ns/javaee\" version=\"4.0\">\n  \
             <display-name>{}</display-name>\n  <context-param>\n    <param-name>contextConfigLocation</param-name>\n    \
             <param-value>classpath:META-INF/spring/{}-context.xml</param-value>\n  </context-param>\n  \
             <listener><listener-class>org.springframework.web.context.ContextLoaderListener</listener-class></listener>\n</web-app>\n",
            spec.artifact_id, spec.name
        )),
    );
    items.insert(
        format!("WEB-INF/classes/META-INF/spring/{}-context.xml", spec.name),
        Item::Text(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<beans xmlns=\"http://www.springframework.org/schema/beans\">\n  \
             <import resource=\"classpath*:META-INF/elasticpath/conf/spring/plugin.xml\"/>\n  <!-- {} -->\n</beans>\n",
            spec.artifact_id
        )),
    );
    let mut rng = Rng::for_item(plan.seed, &format!("classes:{}", spec.name));
    let count = spec.class_weight * plan.classes_per_weight;
    for i in 0..count {
        let dir = CLASS_DIRS[(i as usize) % CLASS_DIRS.len()];
        let name = CLASS_NAMES[(i as usize / CLASS_DIRS.len()) % CLASS_NAMES.len()];
        let suffix = CLASS_SUFFIXES[(i as usize) % CLASS_SUFFIXES.len()];
        let path = format!(
            "WEB-INF/classes/{}/{dir}/{name}{suffix}{i}.class",
            spec.package
        );
        items.insert(
            path,
            Item::Class {
                size: rng.range(800, 6_000),
                revision: None,
                stored: false,
            },
        );
        if i % 10 == 0 {
            items.insert(
                format!(
                    "WEB-INF/classes/{}/{dir}/{name}{i}.properties",
                    spec.package
                ),
                Item::Text(format!(
                    "# {name} settings\n{}.{dir}.enabled=true\n{}.{dir}.cacheSeconds={}\n",
                    spec.name,
                    spec.name,
                    rng.range(10, 3600)
                )),
            );
        }
    }
    if spec.name == "cortex" {
        let size = Rng::for_item(plan.seed, CHANGED_CLASS_PATH).range(2_000, 4_000);
        items.insert(
            CHANGED_CLASS_PATH.to_string(),
            Item::Class {
                size,
                revision: plan.changed_class,
                // Stored, so a new revision leaves the WAR's size and layout unchanged.
                stored: true,
            },
        );
    }
    let mut jar_item = |file: String, kib: u64| {
        let size = plan.jar_size(kib);
        items.insert(format!("WEB-INF/lib/{file}"), Item::Jar { file, size });
    };
    for (file, kib) in layout::COMMON_THIRD_PARTY.iter().chain(spec.third_party) {
        jar_item(file.to_string(), *kib);
    }
    for (name, kib) in layout::COMMON_PROJECT.iter().chain(spec.project) {
        jar_item(format!("{name}-{v}.jar"), *kib);
    }
    jar_item(format!("ext-core-{v}-SNAPSHOT.jar"), EXT_CORE_KIB);
    items
}

/// One top-level file of the package, generated on demand.
enum OuterFile {
    Zip(BTreeMap<String, Item>),
    Jar { file: String, size: u64 },
    Text(String),
}

/// The package's files, sorted by path.
fn outer_files(plan: &Plan) -> BTreeMap<String, OuterFile> {
    let v = &plan.version;
    let mut files = BTreeMap::new();
    for spec in WEBAPPS {
        files.insert(
            format!("webapps/{}-{v}.war", spec.artifact_id),
            OuterFile::Zip(war_items(plan, spec)),
        );
    }
    files.insert(
        format!("tools/ext-data-population-cli-{v}-package.zip"),
        OuterFile::Zip(data_pop_items(plan)),
    );
    for (file, kib) in layout::ACTIVEMQ_LIBS {
        files.insert(
            format!("tools/activemq/lib/{file}"),
            OuterFile::Jar {
                file: file.to_string(),
                size: plan.jar_size(*kib),
            },
        );
    }
    files.insert(
        format!("database/ext-data-{v}.jar"),
        OuterFile::Zip(ext_data_items(plan)),
    );
    let (driver, kib) = layout::JDBC_DRIVER;
    files.insert(
        format!("database/jdbc/{driver}"),
        OuterFile::Jar {
            file: driver.to_string(),
            size: plan.jar_size(kib),
        },
    );
    files.insert("ops-spec.json".to_string(), OuterFile::Text(ops_spec(plan)));
    files
}

fn render(plan: &Plan, file: &OuterFile) -> Result<Vec<u8>, SynthError> {
    match file {
        OuterFile::Zip(items) => build_zip(plan, items),
        OuterFile::Jar { file, size } => jar(plan, file, *size),
        OuterFile::Text(t) => Ok(t.clone().into_bytes()),
    }
}

/// Generates the package's files in a helper thread (one ahead) and hands each to `sink`:
/// on two cores, generating the next WAR overlaps compressing the current one.
fn generate(
    opts: &SynthOptions,
    mut sink: impl FnMut(&str, Vec<u8>) -> Result<(), SynthError>,
) -> Result<(), SynthError> {
    let plan = Plan::new(opts)?;
    let files = outer_files(&plan);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<(String, Result<Vec<u8>, SynthError>)>(1);
        let plan = &plan;
        let files = &files;
        scope.spawn(move || {
            for (path, file) in files {
                let rendered = render(plan, file);
                let failed = rendered.is_err();
                if tx.send((path.clone(), rendered)).is_err() || failed {
                    break;
                }
            }
        });
        for (path, rendered) in rx {
            sink(&path, rendered?)?;
        }
        Ok(())
    })
}

/// Writes the package as a zip at `out` (outer entries deflated, as Maven's assembly does).
pub fn write_zip(opts: &SynthOptions, out: &Path) -> Result<SynthReport, SynthError> {
    let io_err = |source| SynthError::Io {
        path: out.to_path_buf(),
        source,
    };
    let file = fs::File::create(out).map_err(io_err)?;
    let mut zip = ZipWriter::new(io::BufWriter::with_capacity(1 << 20, file));
    let mut files = Vec::new();
    generate(opts, |path, bytes| {
        zip.start_file(path, options(CompressionMethod::Deflated, 0o644))
            .map_err(zip_err(path))?;
        zip.write_all(&bytes).map_err(io_zip_err(path))?;
        files.push((path.to_string(), bytes.len() as u64));
        Ok(())
    })?;
    let mut writer = zip.finish().map_err(zip_err("<central directory>"))?;
    writer.flush().map_err(io_err)?;
    let bytes = fs::metadata(out).map_err(io_err)?.len();
    Ok(SynthReport {
        path: out.to_path_buf(),
        bytes,
        files,
    })
}

/// Writes the package unpacked into the directory `out` (created if missing; existing files
/// with the same names are overwritten).
pub fn write_dir(opts: &SynthOptions, out: &Path) -> Result<SynthReport, SynthError> {
    let mut files = Vec::new();
    let mut total = 0;
    generate(opts, |path, bytes| {
        let dest = out.join(path);
        let io_err = |source| SynthError::Io {
            path: dest.clone(),
            source,
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err)?;
        }
        fs::write(&dest, &bytes).map_err(io_err)?;
        total += bytes.len() as u64;
        files.push((path.to_string(), bytes.len() as u64));
        Ok(())
    })?;
    Ok(SynthReport {
        path: out.to_path_buf(),
        bytes: total,
        files,
    })
}
