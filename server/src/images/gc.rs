//! Garbage collection of the image store: an image no container uses, and none has asked for
//! in a while, goes, and with it every layer no remaining image or container holds. What the
//! containers use is read off the disk (each container's directory lists its layers in
//! [`LAYERS_FILE`]), so it is right after a restart or a crash too, with no count to keep.

use super::{Image, ImageStore};
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// In a container's directory: the layer directories its root file system stacks.
pub const LAYERS_FILE: &str = "layers.json";

/// Sweeps the store every `unused_for` (at most a minute apart, at least a second), for the
/// agents whose containers are in `container_dirs`; for the life of the process.
pub async fn collect_periodically(
    store: Arc<ImageStore>,
    container_dirs: Vec<PathBuf>,
    unused_for: Duration,
) {
    let every = unused_for.clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (store, dirs) = (store.clone(), container_dirs.clone());
        let swept =
            tokio::task::spawn_blocking(move || store.collect_garbage(&dirs, unused_for)).await;
        match swept {
            Ok(Ok(collected)) if collected != Collected::default() => tracing::info!(
                images = ?collected.images,
                layers = collected.layers,
                "removed images no container used"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("collecting unused images failed: {e}"),
            Err(e) => tracing::warn!("collecting unused images stopped: {e}"),
        }
    }
}

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub images: Vec<String>,
    pub layers: usize,
}

impl ImageStore {
    /// Removes the images that no container under `container_dirs` (each agent's
    /// `containers/`) uses and that nobody pulled for `unused_for`, then the layers left
    /// without an image or container. Does nothing while a pull runs, whose layers have no
    /// image yet.
    pub fn collect_garbage(
        &self,
        container_dirs: &[PathBuf],
        unused_for: Duration,
    ) -> io::Result<Collected> {
        if self.pulls_running.load(Ordering::SeqCst) > 0 {
            return Ok(Collected::default());
        }
        let in_containers = layers_of_containers(container_dirs);
        let now = SystemTime::now();
        let mut kept_layers: HashSet<PathBuf> = in_containers.iter().flatten().cloned().collect();
        let mut collected = Collected::default();
        for (record, image) in self.records()? {
            let used = in_containers.contains(&image.layers);
            let idle = std::fs::metadata(&record)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|idle| idle >= unused_for);
            if used || !idle {
                kept_layers.extend(image.layers);
                continue;
            }
            std::fs::remove_file(&record)?;
            collected.images.push(image.reference);
        }
        let layers_dir = self.root.join("layers/sha256");
        for entry in read_dir_or_empty(&layers_dir)? {
            let path = entry?.path();
            // A `.partial` layer is being unpacked.
            if path.extension().is_some() || kept_layers.contains(&path) {
                continue;
            }
            std::fs::remove_dir_all(&path)?;
            collected.layers += 1;
        }
        Ok(collected)
    }

    /// Every image record, with its path.
    fn records(&self) -> io::Result<Vec<(PathBuf, Image)>> {
        let mut records = Vec::new();
        for entry in read_dir_or_empty(&self.root.join("refs"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                if let Some(image) = std::fs::read(&path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Image>(&bytes).ok())
                {
                    records.push((path, image));
                }
            }
        }
        Ok(records)
    }
}

/// The layer stacks of the containers there: each names the image it was made of.
fn layers_of_containers(container_dirs: &[PathBuf]) -> HashSet<Vec<PathBuf>> {
    container_dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .filter_map(|entry| std::fs::read(entry.path().join(LAYERS_FILE)).ok())
        .filter_map(|bytes| serde_json::from_slice::<Vec<PathBuf>>(&bytes).ok())
        .collect()
}

fn read_dir_or_empty(
    dir: &Path,
) -> io::Result<Box<dyn Iterator<Item = io::Result<std::fs::DirEntry>>>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ImageConfig, RegistrySettings};
    use super::*;

    fn stored(store: &ImageStore, reference: &str, layers: &[&str]) -> Vec<PathBuf> {
        let layers: Vec<PathBuf> = layers
            .iter()
            .map(|hex| store.root.join("layers/sha256").join(hex))
            .collect();
        for layer in &layers {
            std::fs::create_dir_all(layer).unwrap();
        }
        let image = Image {
            reference: reference.into(),
            manifest_digest: "sha256:m".into(),
            layers: layers.clone(),
            config: ImageConfig::default(),
        };
        let record = store.record_path(reference);
        std::fs::create_dir_all(record.parent().unwrap()).unwrap();
        std::fs::write(record, serde_json::to_vec(&image).unwrap()).unwrap();
        layers
    }

    #[test]
    fn only_images_no_container_uses_go_and_shared_layers_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path().join("images"), &RegistrySettings::default());
        let used = stored(&store, "r/used:1", &["base", "app"]);
        let unused = stored(&store, "r/unused:1", &["base", "old"]);
        stored(&store, "r/fresh:1", &["new"]);
        let containers = dir.path().join("agent/containers");
        std::fs::create_dir_all(containers.join("task-1")).unwrap();
        std::fs::write(
            containers.join("task-1").join(LAYERS_FILE),
            serde_json::to_vec(&used).unwrap(),
        )
        .unwrap();

        // Nothing has been unused for an hour yet.
        let none = store
            .collect_garbage(std::slice::from_ref(&containers), Duration::from_secs(3600))
            .unwrap();
        assert_eq!(none, Collected::default());

        let mut swept = store
            .collect_garbage(std::slice::from_ref(&containers), Duration::ZERO)
            .unwrap();
        swept.images.sort();
        assert_eq!(swept.images, ["r/fresh:1", "r/unused:1"]);
        assert_eq!(swept.layers, 2, "old and new");
        assert!(
            used.iter().all(|layer| layer.is_dir()),
            "the container's layers stay"
        );
        assert!(unused[0].is_dir(), "a layer shared with a used image stays");
        assert!(
            !unused[1].exists(),
            "a layer only the unused image had goes"
        );
        assert!(store.stored("r/used:1").is_some());
        assert!(store.stored("r/unused:1").is_none());

        // Once the container is gone, so is its image.
        std::fs::remove_dir_all(containers.join("task-1")).unwrap();
        let swept = store
            .collect_garbage(&[containers], Duration::ZERO)
            .unwrap();
        assert_eq!(swept.images, ["r/used:1"]);
        assert!(!used[0].exists() && !used[1].exists());
    }
}
