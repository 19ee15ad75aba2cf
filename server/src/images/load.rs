//! `stride image load FILE`: images from an archive into the store, for agents that cannot
//! reach a registry. Two forms, told apart by what the archive holds:
//! - `docker save` (`manifest.json` naming each image's config, tags and layer tars); each
//!   layer is checked against the config's `rootfs.diff_ids`;
//! - an OCI image layout (`index.json`, `blobs/sha256/…`), as `skopeo copy … oci-archive:` or
//!   `docker save` of Docker 25 write it; every blob is checked against its digest.
//!
//! The images are then in the store as if pulled by their reference: a task naming one runs
//! without a registry (unless it asks for `forcePullImage`).

use super::unpack::{self, Compression};
use super::{image_config, write_atomically, Image, ImageError, ImageStore};
use oci_client::Reference;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// `manifest.json` of a `docker save` archive: one entry per image.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ConfigRootfs {
    #[serde(default)]
    rootfs: Option<DiffIds>,
}

#[derive(Deserialize)]
struct DiffIds {
    #[serde(default)]
    diff_ids: Vec<String>,
}

const OCI_INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const REF_NAME_ANNOTATIONS: [&str; 2] = [
    "io.containerd.image.name",
    "org.opencontainers.image.ref.name",
];

impl ImageStore {
    /// Loads every image of the archive `file`; `name` names the image of an archive that
    /// does not (an OCI layout whose only name is a tag) or renames a single one. The
    /// references loaded, in full.
    pub fn load_archive(&self, file: &Path, name: Option<&str>) -> Result<Vec<String>, ImageError> {
        let store_error = |path: &Path| {
            let path = path.to_owned();
            move |source| ImageError::Store { path, source }
        };
        let scratch = self.root.join("downloads").join(format!(
            "load-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&scratch).map_err(store_error(&scratch))?;
        let loaded = (|| {
            let archive = std::fs::File::open(file).map_err(store_error(file))?;
            tar::Archive::new(io::BufReader::new(archive))
                .unpack(&scratch)
                .map_err(|e| archive_error(file, format!("not a tar archive: {e}")))?;
            if scratch.join("manifest.json").exists() && !scratch.join("index.json").exists() {
                self.load_docker_save(file, &scratch, name)
            } else if scratch.join("index.json").exists() {
                self.load_oci_layout(file, &scratch, name)
            } else {
                Err(archive_error(
                    file,
                    "neither a docker save archive (manifest.json) nor an OCI layout (index.json)"
                        .to_owned(),
                ))
            }
        })();
        let _ = std::fs::remove_dir_all(&scratch);
        loaded
    }

    fn load_docker_save(
        &self,
        file: &Path,
        dir: &Path,
        name: Option<&str>,
    ) -> Result<Vec<String>, ImageError> {
        let saved: Vec<SavedImage> = read_json(file, &dir.join("manifest.json"))?;
        let mut loaded = Vec::new();
        for image in &saved {
            let config_bytes = read_inside(file, dir, &image.config)?;
            let config = image_config(&config_bytes).map_err(|e| archive_error(file, e))?;
            let diff_ids = serde_json::from_slice::<ConfigRootfs>(&config_bytes)
                .ok()
                .and_then(|c| c.rootfs)
                .map(|r| r.diff_ids)
                .unwrap_or_default();
            if diff_ids.len() != image.layers.len() {
                return Err(archive_error(
                    file,
                    format!(
                        "{} names {} layers but its config {}",
                        image.config,
                        image.layers.len(),
                        diff_ids.len()
                    ),
                ));
            }
            let mut layers = Vec::new();
            for (layer, diff_id) in image.layers.iter().zip(&diff_ids) {
                let path = inside(file, dir, layer)?;
                let content =
                    content_digest(&path).map_err(|e| archive_error(file, e.to_string()))?;
                if &content != diff_id {
                    return Err(archive_error(
                        file,
                        format!("layer {layer} is {content}, its config says {diff_id}"),
                    ));
                }
                layers.push(self.store_layer(file, &path)?);
            }
            let names: Vec<String> = match name {
                Some(name) => vec![name.to_owned()],
                None => image.repo_tags.clone().unwrap_or_default(),
            };
            if names.is_empty() {
                return Err(archive_error(
                    file,
                    format!("{} has no tag: name it with --name", image.config),
                ));
            }
            let digest = format!("sha256:{}", hex(&Sha256::digest(&config_bytes)));
            for name in names {
                loaded.push(self.record(&name, &digest, &layers, &config)?);
            }
        }
        Ok(loaded)
    }

    fn load_oci_layout(
        &self,
        file: &Path,
        dir: &Path,
        name: Option<&str>,
    ) -> Result<Vec<String>, ImageError> {
        let index: Index = read_json(file, &dir.join("index.json"))?;
        let mut loaded = Vec::new();
        for entry in &index.manifests {
            let mut descriptor_digest = entry.digest.clone();
            let mut manifest_bytes = verified_blob(file, dir, &entry.digest)?;
            if OCI_INDEX_MEDIA_TYPES.contains(&entry.media_type.as_str()) {
                let nested: Index = serde_json::from_slice(&manifest_bytes)
                    .map_err(|e| archive_error(file, format!("index {}: {e}", entry.digest)))?;
                let first = nested.manifests.first().ok_or_else(|| {
                    archive_error(file, format!("index {} lists no image", entry.digest))
                })?;
                descriptor_digest = first.digest.clone();
                manifest_bytes = verified_blob(file, dir, &first.digest)?;
            }
            let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
                .map_err(|e| archive_error(file, format!("manifest {descriptor_digest}: {e}")))?;
            let config_bytes = verified_blob(file, dir, &manifest.config.digest)?;
            let config = image_config(&config_bytes).map_err(|e| archive_error(file, e))?;
            let mut layers = Vec::new();
            for layer in &manifest.layers {
                verified_blob_path(file, dir, &layer.digest)?;
                layers.push(self.store_layer(file, &blob_path(dir, &layer.digest)?)?);
            }
            let annotated = REF_NAME_ANNOTATIONS
                .iter()
                .find_map(|key| entry.annotations.get(*key))
                .filter(|value| value.contains('/') || value.contains(':'));
            let name = name
                .map(str::to_owned)
                .or_else(|| annotated.cloned())
                .ok_or_else(|| {
                    archive_error(
                        file,
                        "the OCI layout does not name its image: give --name".to_owned(),
                    )
                })?;
            loaded.push(self.record(&name, &descriptor_digest, &layers, &config)?);
        }
        Ok(loaded)
    }

    /// Unpacks a layer file into the store, named by the digest of the file; the directory.
    fn store_layer(&self, file: &Path, layer: &Path) -> Result<PathBuf, ImageError> {
        let digest = file_digest(layer).map_err(|e| archive_error(file, e.to_string()))?;
        let target = self.root.join("layers/sha256").join(&digest);
        if target.is_dir() {
            return Ok(target);
        }
        let compression = if is_gzip(layer).map_err(|e| archive_error(file, e.to_string()))? {
            Compression::Gzip
        } else {
            Compression::None
        };
        unpack::unpack_layer(layer, compression, &target).map_err(|e| {
            archive_error(file, format!("cannot unpack layer sha256:{digest}: {e}"))
        })?;
        Ok(target)
    }

    fn record(
        &self,
        name: &str,
        digest: &str,
        layers: &[PathBuf],
        config: &super::ImageConfig,
    ) -> Result<String, ImageError> {
        let reference: Reference = name.parse().map_err(|e| ImageError::Reference {
            name: name.to_owned(),
            reason: format!("{e}"),
        })?;
        let image = Image {
            reference: reference.whole(),
            manifest_digest: digest.to_owned(),
            layers: layers.to_vec(),
            config: config.clone(),
        };
        let path = self.record_path(&image.reference);
        write_atomically(
            &path,
            &serde_json::to_vec_pretty(&image).expect("plain data"),
        )
        .map_err(|source| ImageError::Store { path, source })?;
        Ok(image.reference)
    }
}

fn archive_error(file: &Path, reason: String) -> ImageError {
    ImageError::Archive {
        file: file.to_owned(),
        reason,
    }
}

/// A path the archive names, which must stay inside it.
fn inside(file: &Path, dir: &Path, name: &str) -> Result<PathBuf, ImageError> {
    let relative = Path::new(name);
    if relative.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return Err(archive_error(
            file,
            format!("{name} points outside the archive"),
        ));
    }
    Ok(dir.join(relative))
}

fn read_inside(file: &Path, dir: &Path, name: &str) -> Result<Vec<u8>, ImageError> {
    let path = inside(file, dir, name)?;
    std::fs::read(&path).map_err(|e| archive_error(file, format!("{name}: {e}")))
}

fn read_json<T: serde::de::DeserializeOwned>(file: &Path, path: &Path) -> Result<T, ImageError> {
    let bytes =
        std::fs::read(path).map_err(|e| archive_error(file, format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| archive_error(file, format!("{}: {e}", path.display())))
}

fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ImageError::Reference {
            name: digest.to_owned(),
            reason: "only sha256 digests are supported".to_owned(),
        })?;
    Ok(dir.join("blobs/sha256").join(hex))
}

/// Checks the blob against its digest.
fn verified_blob_path(file: &Path, dir: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let path = blob_path(dir, digest)?;
    let actual =
        file_digest(&path).map_err(|e| archive_error(file, format!("blob {digest}: {e}")))?;
    if format!("sha256:{actual}") != digest {
        return Err(archive_error(
            file,
            format!("blob {digest} does not match its digest (it is sha256:{actual})"),
        ));
    }
    Ok(path)
}

fn verified_blob(file: &Path, dir: &Path, digest: &str) -> Result<Vec<u8>, ImageError> {
    let path = verified_blob_path(file, dir, digest)?;
    std::fs::read(&path).map_err(|e| archive_error(file, format!("blob {digest}: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_of(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// The hex sha256 of the file.
fn file_digest(path: &Path) -> io::Result<String> {
    digest_of(io::BufReader::new(std::fs::File::open(path)?))
}

/// `sha256:<hex>` of the layer's tar, uncompressed: what `diff_ids` name.
fn content_digest(path: &Path) -> io::Result<String> {
    let file = io::BufReader::new(std::fs::File::open(path)?);
    let digest = match is_gzip(path)? {
        true => digest_of(flate2::read::GzDecoder::new(file))?,
        false => digest_of(file)?,
    };
    Ok(format!("sha256:{digest}"))
}

fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let read = std::fs::File::open(path)?.read(&mut magic)?;
    Ok(read == 2 && magic == [0x1f, 0x8b])
}
