//! Groups (Marathon's `Group`): the tree apps live in, with dependencies between its parts.

use super::app::AppUpdate;
use super::task::AppInfo;
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A group as stored: everything but its apps and subgroups, which are found by their ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDefinition {
    pub id: String,
    /// Absolute ids of apps or groups that everything in this group depends on.
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub enforce_role: bool,
    pub version: Timestamp,
}

/// The body of `POST`/`PUT /v2/groups`: every field optional; `apps` and `groups`, when
/// present, replace the group's direct apps and subgroups (SEMANTICS.md §3.4).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<AppUpdate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupUpdate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_by: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_role: Option<bool>,
}

/// A group as the API shows it, with what the request embeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<AppInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupInfo>>,
    pub dependencies: Vec<String>,
    pub version: Timestamp,
    pub enforce_role: bool,
}
