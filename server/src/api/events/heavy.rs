//! `plan-format=full`: Marathon ≤1.7's heavy plans, whose `plan` also carries the root group
//! before the deployment (`original`) and after it (`target`).
//!
//! Marathon 1.8 dropped them (light plans are all a stream gets without the parameter, as
//! there). They are rebuilt from the stored versions of the tree: the version the plan names,
//! and the one before it, each looked up once per stream.

use crate::service::Service;
use crate::views::{self, GroupEmbed, TreeView};
use app::model::{MarathonEvent, Timestamp};
use serde_json::Value;
use std::collections::HashMap;

/// The trees a stream has looked up, by version (`None`: not stored).
pub struct HeavyPlans {
    service: Service,
    trees: HashMap<Timestamp, Option<Value>>,
    /// The stored versions of the tree, newest first, read at the first deployment event.
    versions: Option<Vec<Timestamp>>,
}

/// Whether an event carries a plan.
pub fn has_plan(event: &MarathonEvent) -> bool {
    matches!(
        event,
        MarathonEvent::DeploymentInfo { .. }
            | MarathonEvent::DeploymentStepSuccess { .. }
            | MarathonEvent::DeploymentStepFailure { .. }
            | MarathonEvent::DeploymentSuccess { .. }
            | MarathonEvent::DeploymentFailed { .. }
    )
}

impl HeavyPlans {
    pub fn new(service: Service) -> HeavyPlans {
        HeavyPlans {
            service,
            trees: HashMap::new(),
            versions: None,
        }
    }

    /// The event's JSON with `original` and `target` in its plan (`null` for a tree that is
    /// no longer stored).
    pub async fn json(&mut self, json: &str) -> String {
        let Ok(mut event) = serde_json::from_str::<Value>(json) else {
            return json.to_string();
        };
        let Some(version) = event["plan"]["version"]
            .as_str()
            .and_then(|v| v.parse::<Timestamp>().ok())
        else {
            return json.to_string();
        };
        let before = self.version_before(version).await;
        let original = match before {
            Some(before) => self.tree(before).await,
            None => Value::Null,
        };
        let target = self.tree(version).await;
        if let Some(plan) = event["plan"].as_object_mut() {
            plan.insert("original".into(), original);
            plan.insert("target".into(), target);
        }
        event.to_string()
    }

    async fn version_before(&mut self, version: Timestamp) -> Option<Timestamp> {
        if self.versions.as_ref().is_none_or(|v| !v.contains(&version)) {
            self.versions = match self.service.tree_versions().await {
                Ok(versions) => Some(versions.into_iter().map(|v| v.version).collect()),
                Err(e) => {
                    tracing::warn!(error = %e, "the versions of the tree could not be read for a heavy plan");
                    None
                }
            };
        }
        self.versions
            .as_ref()?
            .iter()
            .copied()
            .find(|v| *v < version)
    }

    /// The root group as it was at `version`, as `GET /v2/groups/versions/{version}` shows it.
    async fn tree(&mut self, version: Timestamp) -> Value {
        if let Some(tree) = self.trees.get(&version) {
            return tree.clone().unwrap_or(Value::Null);
        }
        let tree = match self.service.stored_tree(version).await {
            Ok(Some((groups, apps))) => {
                let snapshot = self.service.snapshot();
                let then = TreeView {
                    groups: groups.iter().map(|g| (g.id.as_str(), g)).collect(),
                    apps: apps.iter().map(|a| (a.id.as_str(), a)).collect(),
                    version,
                };
                let bare = |a: &app::model::AppDefinition| {
                    views::app_info(&snapshot, a, views::Embed::default())
                };
                let info =
                    views::group_info(&then, "/", GroupEmbed::parse(std::iter::empty()), &bare);
                serde_json::to_value(info).ok()
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, %version, "a version of the tree could not be read for a heavy plan");
                None
            }
        };
        self.trees.insert(version, tree.clone());
        tree.unwrap_or(Value::Null)
    }
}
