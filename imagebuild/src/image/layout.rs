//! OCI image layout directories (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`) and deterministic tarballs of them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciImageManifest};

use super::{
    annotation, io_err, BaseImage, Built, BuiltImage, ImageConfig, ImageError, Platform, OCI_INDEX,
};
use crate::digest::Digest;

fn temp_in(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ))
}

fn put_bytes(blobs: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dest = blobs.join(Digest::of(bytes).hex());
    if fs::metadata(&dest).is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok(());
    }
    let tmp = temp_in(blobs);
    fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    fs::rename(&tmp, &dest).map_err(io_err(&dest))
}

fn put_file(blobs: &Path, digest: &str, size: i64, src: Option<&Path>) -> Result<(), ImageError> {
    let missing = || ImageError::MissingBlob {
        digest: digest.to_owned(),
    };
    let hex = digest.strip_prefix("sha256:").ok_or_else(missing)?;
    let dest = blobs.join(hex);
    let size = size.max(0) as u64;
    if fs::metadata(&dest).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let src = src.ok_or_else(missing)?;
    let actual = match fs::metadata(src) {
        Ok(m) => m.len(),
        Err(_) => return Err(missing()),
    };
    if actual != size {
        return Err(ImageError::BlobSize {
            path: src.to_owned(),
            expected: size,
            actual,
        });
    }
    let tmp = temp_in(blobs);
    // A hardlink costs nothing; other file systems need a copy.
    if fs::hard_link(src, &tmp).is_err() {
        fs::copy(src, &tmp).map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &dest).map_err(io_err(&dest))
}

fn put_image(blobs: &Path, img: &BuiltImage) -> Result<(), ImageError> {
    for l in &img.layers {
        put_file(
            blobs,
            &l.descriptor.digest,
            l.descriptor.size,
            l.path.as_deref(),
        )?;
    }
    put_bytes(blobs, &img.config_json)?;
    put_bytes(blobs, &img.manifest_json)
}

/// Writes an OCI image layout at `dir` holding each `(tag, image)`; the tag
/// becomes the `org.opencontainers.image.ref.name` annotation in
/// `index.json` (whose entries keep the given order). Every layer blob must be
/// on disk: ours always are; a base's only with [`BaseImage::blob_dir`],
/// otherwise [`ImageError::MissingBlob`]. Existing blobs are kept;
/// `index.json` is replaced. Docker-format images can be written too, but
/// skopeo's and umoci's `oci:` readers only list OCI manifests: use
/// [`ManifestFormat::Oci`](super::ManifestFormat::Oci) for layouts meant for
/// them.
pub fn write_oci_layout(dir: &Path, tagged: &[(&str, &Built)]) -> Result<(), ImageError> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let mut manifests = Vec::new();
    for (tag, built) in tagged {
        for img in built.images() {
            put_image(&blobs, img)?;
        }
        if let Built::Index(ix) = built {
            put_bytes(&blobs, &ix.index_json)?;
        }
        let d = built.descriptor();
        // Platform on the entry helps tools pick without reading.
        let platform = match built {
            Built::Image(img) => img.index_entry().platform,
            Built::Index(_) => None,
        };
        manifests.push(ImageIndexEntry {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            platform,
            annotations: Some(BTreeMap::from([(
                annotation::REF_NAME.to_owned(),
                (*tag).to_owned(),
            )])),
            artifact_type: None,
        });
    }
    let index = OciImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_owned()),
        manifests,
        artifact_type: None,
        annotations: None,
    };
    let json = serde_json::to_vec(&index).map_err(|source| ImageError::Json {
        what: "index.json".into(),
        source,
    })?;
    for (name, bytes) in [
        ("oci-layout", &br#"{"imageLayoutVersion":"1.0.0"}"#[..]),
        ("index.json", &json[..]),
    ] {
        let tmp = temp_in(dir);
        let dest = dir.join(name);
        fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    }
    Ok(())
}

/// Writes a deterministic tar of the layout at `layout` to `out` (entries
/// sorted, mtime `source_date_epoch`, owner 0:0, modes 0644/0755), e.g. for
/// `skopeo copy oci-archive:` or `docker load`-style tooling.
pub fn write_layout_tar(
    layout: &Path,
    out: &Path,
    source_date_epoch: u64,
) -> Result<(), ImageError> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = temp_in(parent);
    let res = (|| {
        let f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut w = std::io::BufWriter::new(f);
        crate::layer::write_plain_tar(layout, source_date_epoch, &mut w)?;
        w.flush().map_err(io_err(&tmp))?;
        fs::rename(&tmp, out).map_err(io_err(out))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Reads the image tagged `tag` from an OCI layout as a [`BaseImage`] whose
/// blobs stay in the layout (so a locally built base can be built upon and
/// written out again). An index is resolved to `platform`.
pub fn read_oci_layout_image(
    dir: &Path,
    tag: &str,
    platform: &Platform,
) -> Result<BaseImage, ImageError> {
    let bad = |reason: String| ImageError::BadLayout {
        path: dir.to_owned(),
        reason,
    };
    let blobs = dir.join("blobs").join("sha256");
    let read_blob = |digest: &str| -> Result<Vec<u8>, ImageError> {
        let d: Digest = digest
            .parse()
            .map_err(|_| bad(format!("bad digest {digest}")))?;
        let p = blobs.join(d.hex());
        let bytes = fs::read(&p).map_err(io_err(&p))?;
        if Digest::of(&bytes) != d {
            return Err(bad(format!("blob {d} does not match its digest")));
        }
        Ok(bytes)
    };
    let json = |what: &str, bytes: &[u8]| -> Result<serde_json::Value, ImageError> {
        serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            what: what.to_owned(),
            source,
        })
    };
    let index_path = dir.join("index.json");
    let index_bytes = fs::read(&index_path).map_err(io_err(&index_path))?;
    let index: OciImageIndex =
        serde_json::from_value(json("index.json", &index_bytes)?).map_err(|source| {
            ImageError::Json {
                what: "index.json".into(),
                source,
            }
        })?;
    let entry = index
        .manifests
        .iter()
        .find(|m| {
            m.annotations
                .as_ref()
                .and_then(|a| a.get(annotation::REF_NAME))
                .is_some_and(|t| t == tag)
        })
        .ok_or_else(|| bad(format!("no image tagged {tag:?}")))?;
    let mut manifest_digest = entry.digest.clone();
    let mut bytes = read_blob(&manifest_digest)?;
    let v = json("manifest", &bytes)?;
    if v.get("manifests").is_some() {
        let ix: OciImageIndex = serde_json::from_value(v).map_err(|source| ImageError::Json {
            what: "image index".into(),
            source,
        })?;
        let m = platform
            .find_in(&ix)
            .ok_or_else(|| bad(format!("no {platform} image in index {tag:?}")))?;
        manifest_digest = m.digest.clone();
        bytes = read_blob(&manifest_digest)?;
    }
    let manifest: OciImageManifest =
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: "image manifest".into(),
            source,
        })?;
    let config_bytes = read_blob(&manifest.config.digest)?;
    let config = ImageConfig::from_json(&config_bytes).map_err(ImageError::BadConfig)?;
    Ok(BaseImage {
        reference: tag.to_owned(),
        digest: manifest_digest.parse().ok(),
        config,
        layers: manifest.layers,
        blob_dir: Some(blobs),
    })
}
