//! The image store of the built-in agents: container images pulled over the OCI distribution
//! API (the Docker Registry HTTP API v2: manifests, manifest lists resolved by platform, layers
//! by digest, Basic or bearer-token auth) with the `oci-client` crate, kept under
//! `<data-dir>/images` and shared by every agent of this Stride:
//! - `layers/sha256/<hex>/`: one layer unpacked in overlayfs' form ([`unpack`]), named by the
//!   digest of the blob it came from, which `oci-client` verified while it downloaded it;
//! - `refs/<hex of the reference's sha256>.json`: an image ([`Image`]): its reference, manifest
//!   digest, layers (bottom first) and the parts of its configuration a container needs.
//!
//! Images can also come from an archive ([`load`], `stride image load`).
//!
//! Layers are unpacked into a `.partial` directory that is renamed when complete, so a pull
//! cut short leaves nothing that looks whole. Pulls of one reference wait for each other (the
//! second finds the first's result); layers already present are not fetched again.

mod gc;
mod load;
mod unpack;

pub use gc::{collect_periodically, Collected, LAYERS_FILE};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{self, OciDescriptor};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::AsyncWriteExt;
use tracing::info;

/// What a task asks of the store: Mesos' `Image.Docker`, with `cached: false` as `force_pull`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRequest {
    /// The reference as the app gives it: `busybox`, `registry:5000/team/app:1.2`, `…@sha256:…`.
    pub name: String,
    /// Fetch the manifest again even when the image is in the store (`forcePullImage`).
    #[serde(default)]
    pub force_pull: bool,
    /// Basic credentials for the registry (`container.docker.credential`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub principal: String,
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, <secret>)", self.principal)
    }
}

/// An image in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// The reference it was pulled by, in full (`docker.io/library/busybox:latest`).
    pub reference: String,
    pub manifest_digest: String,
    /// Its layers' directories, bottom first.
    pub layers: Vec<PathBuf>,
    pub config: ImageConfig,
}

/// What a container takes from the image's configuration (OCI image spec, `config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, rename = "Entrypoint")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, rename = "Cmd")]
    pub cmd: Option<Vec<String>>,
    /// `NAME=value` entries.
    #[serde(default, rename = "Env")]
    pub env: Option<Vec<String>>,
    #[serde(default, rename = "User")]
    pub user: Option<String>,
    #[serde(default, rename = "WorkingDir")]
    pub working_dir: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference '{name}': {reason}")]
    Reference { name: String, reason: String },
    #[error("pulling {reference} failed: {reason}")]
    Registry { reference: String, reason: String },
    #[error("layer {digest} of {reference}: {reason}")]
    Layer {
        reference: String,
        digest: String,
        reason: String,
    },
    #[error("the archive {}: {reason}", file.display())]
    Archive { file: PathBuf, reason: String },
    #[error("the image store at {}: {source}", path.display())]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How the store reaches registries.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// `HOST:PORT`s spoken to over plain HTTP (`--insecure-registry`).
    pub insecure: Vec<String>,
}

/// The store; cheap to share behind an `Arc`.
pub struct ImageStore {
    root: PathBuf,
    registries: RegistrySettings,
    /// One lock per reference, so that tasks launched together pull an image once.
    pulls: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Pulls under way; garbage collection waits for none.
    pulls_running: AtomicUsize,
}

impl ImageStore {
    pub fn new(root: PathBuf, registries: &RegistrySettings) -> Self {
        Self {
            root,
            registries: registries.clone(),
            pulls: Mutex::new(HashMap::new()),
            pulls_running: AtomicUsize::new(0),
        }
    }

    /// A client for one pull: `oci-client` keeps the first credentials it was given for a
    /// registry (and the tokens they got), so pulls with other credentials need a client of
    /// their own.
    fn client(&self) -> Client {
        Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.registries.insecure.clone()),
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        })
    }

    /// The image `request` names: from the store when it is there (and not `force_pull`),
    /// otherwise pulled from its registry.
    pub async fn pull(&self, request: &ImageRequest) -> Result<Image, ImageError> {
        let reference: Reference = request.name.parse().map_err(|e| ImageError::Reference {
            name: request.name.clone(),
            reason: format!("{e}"),
        })?;
        let full = reference.whole();
        let lock = self
            .pulls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(full.clone())
            .or_default()
            .clone();
        let _pulling = lock.lock().await;
        let _running = Running::start(&self.pulls_running);
        if !request.force_pull {
            if let Some(image) = self.stored(&full) {
                // The record's time is when the image was last asked for (for the collector).
                let _ = std::fs::File::options()
                    .append(true)
                    .open(self.record_path(&full))
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                return Ok(image);
            }
        }
        let image = self.fetch(&reference, request).await?;
        let record = self.record_path(&full);
        write_atomically(
            &record,
            &serde_json::to_vec_pretty(&image).expect("plain data"),
        )
        .map_err(|source| ImageError::Store {
            path: record,
            source,
        })?;
        Ok(image)
    }

    /// The stored image of `reference` if its record and every layer are there.
    fn stored(&self, reference: &str) -> Option<Image> {
        let image: Image =
            serde_json::from_slice(&std::fs::read(self.record_path(reference)).ok()?).ok()?;
        image.layers.iter().all(|dir| dir.is_dir()).then_some(image)
    }

    async fn fetch(
        &self,
        reference: &Reference,
        request: &ImageRequest,
    ) -> Result<Image, ImageError> {
        let whole = reference.whole();
        let registry_error = |e: oci_client::errors::OciDistributionError| ImageError::Registry {
            reference: whole.clone(),
            reason: e.to_string(),
        };
        let auth = match &request.credential {
            Some(credential) => {
                RegistryAuth::Basic(credential.principal.clone(), credential.secret.clone())
            }
            None => RegistryAuth::Anonymous,
        };
        let started = std::time::Instant::now();
        let client = self.client();
        let (manifest, manifest_digest) = client
            .pull_image_manifest(reference, &auth)
            .await
            .map_err(registry_error)?;
        let mut config = Vec::new();
        client
            .pull_blob(reference, &manifest.config, &mut config)
            .await
            .map_err(registry_error)?;
        let config = image_config(&config).map_err(|reason| ImageError::Registry {
            reference: whole.clone(),
            reason: format!("its configuration is not an image configuration: {reason}"),
        })?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            layers.push(self.layer(&client, reference, layer).await?);
        }
        info!(
            reference = %whole,
            layers = layers.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pulled image"
        );
        Ok(Image {
            reference: whole,
            manifest_digest,
            layers,
            config,
        })
    }

    /// The directory of `layer`, downloaded and unpacked unless it is there already.
    async fn layer(
        &self,
        client: &Client,
        reference: &Reference,
        layer: &OciDescriptor,
    ) -> Result<PathBuf, ImageError> {
        let layer_error = |reason: String| ImageError::Layer {
            reference: reference.whole(),
            digest: layer.digest.clone(),
            reason,
        };
        let hex = layer
            .digest
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| layer_error("only sha256 digests are supported".to_owned()))?;
        let compression = compression_of(&layer.media_type).map_err(layer_error)?;
        let dir = self.root.join("layers/sha256").join(hex);
        if dir.is_dir() {
            return Ok(dir);
        }
        let store_error = |path: &Path| {
            let path = path.to_owned();
            move |source| ImageError::Store { path, source }
        };
        let downloads = self.root.join("downloads");
        std::fs::create_dir_all(&downloads).map_err(store_error(&downloads))?;
        let blob = downloads.join(hex);
        let mut file = tokio::fs::File::create(&blob)
            .await
            .map_err(store_error(&blob))?;
        // oci-client checks the blob against its digest as it streams, and fails on a mismatch.
        let pulled = client.pull_blob(reference, layer, &mut file).await;
        let flushed = file.flush().await;
        drop(file);
        if let Err(e) = pulled {
            let _ = std::fs::remove_file(&blob);
            return Err(layer_error(e.to_string()));
        }
        flushed.map_err(store_error(&blob))?;
        let target = dir.clone();
        let unpacked = tokio::task::spawn_blocking(move || {
            let result = unpack::unpack_layer(&blob, compression, &target);
            let _ = std::fs::remove_file(&blob);
            result
        })
        .await
        .map_err(|e| layer_error(format!("unpacking stopped: {e}")))?;
        unpacked.map_err(|e| layer_error(format!("cannot unpack it: {e}")))?;
        Ok(dir)
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        let hash = Sha256::digest(reference.as_bytes());
        let name: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.root.join("refs").join(format!("{name}.json"))
    }
}

/// Counts one pull under way for as long as it lives.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a layer's blob is compressed, from its media type.
fn compression_of(media_type: &str) -> Result<unpack::Compression, String> {
    match media_type {
        manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE | manifest::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE => {
            Ok(unpack::Compression::Gzip)
        }
        manifest::IMAGE_LAYER_MEDIA_TYPE | manifest::IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE => {
            Ok(unpack::Compression::None)
        }
        other => Err(format!("layers of media type {other} are not supported")),
    }
}

/// The `config` part of an image configuration blob.
fn image_config(blob: &[u8]) -> Result<ImageConfig, String> {
    #[derive(Deserialize)]
    struct Blob {
        #[serde(default)]
        config: Option<ImageConfig>,
    }
    let blob: Blob = serde_json::from_slice(blob).map_err(|e| e.to_string())?;
    Ok(blob.config.unwrap_or_default())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_configuration_gives_its_process_fields() {
        let blob = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh"],
            "Cmd":["-c","echo hi"],"Env":["PATH=/bin","A=b"],"User":"1000:1000",
            "WorkingDir":"/srv"},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config = image_config(blob).unwrap();
        assert_eq!(config.entrypoint, Some(vec!["/bin/sh".to_owned()]));
        assert_eq!(config.cmd.unwrap().len(), 2);
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(
            image_config(br#"{"os":"linux"}"#).unwrap(),
            ImageConfig::default()
        );
    }

    #[test]
    fn only_tar_layers_with_or_without_gzip_are_taken() {
        assert!(compression_of(manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE).is_ok());
        assert!(compression_of(manifest::IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE).is_ok());
        let zstd = compression_of("application/vnd.oci.image.layer.v1.tar+zstd").unwrap_err();
        assert!(zstd.contains("tar+zstd"), "{zstd}");
    }
}
