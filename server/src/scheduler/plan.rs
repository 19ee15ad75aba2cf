//! Deployment plans exactly as Marathon builds them (SEMANTICS.md §3): the steps for a set of
//! app changes, layered by dependency depth.
//!
//! 1. one step stopping every removed app;
//! 2. one step "starting" every new app (a no-op Marathon keeps for compatibility);
//! 3. the new and changed apps, one step per dependency depth, dependencies first: new apps and
//!    changes of `instances` only (or to zero instances) scale, anything else restarts.
//!
//! Empty steps are dropped, so a change that changes nothing has no steps.

use app::model::{path, ActionKind, AppDefinition, DeploymentAction, DeploymentStep};
use std::collections::{BTreeMap, BTreeSet};

/// One app's change: how it was and how it will be (`None`: absent).
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    pub id: &'a str,
    pub before: Option<&'a AppDefinition>,
    pub after: Option<&'a AppDefinition>,
}

impl<'a> Change<'a> {
    pub fn new(
        id: &'a str,
        before: Option<&'a AppDefinition>,
        after: Option<&'a AppDefinition>,
    ) -> Self {
        Change { id, before, after }
    }
}

/// The kind of change to one app, which decides its deployment action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Create,
    Scale,
    Restart,
    Delete,
    Nothing,
}

/// What changed between `before` and `after`, Marathon's rule (§3.1): a change of `instances`
/// alone, or to zero instances, scales; anything else (version info included) restarts.
pub fn kind_of(before: Option<&AppDefinition>, after: Option<&AppDefinition>) -> Kind {
    match (before, after) {
        (None, Some(_)) => Kind::Create,
        (Some(_), None) => Kind::Delete,
        (None, None) => Kind::Nothing,
        (Some(b), Some(a)) if b == a => Kind::Nothing,
        (Some(b), Some(a))
            if !b.is_config_change(a)
                && b.version_info.last_config_change_at == a.version_info.last_config_change_at =>
        {
            Kind::Scale
        }
        (Some(_), Some(a)) if a.instances == 0 => Kind::Scale,
        _ => Kind::Restart,
    }
}

/// The steps for `changes`; `depth` gives an app's dependency depth in the target (1 = depends
/// on nothing).
pub fn steps(changes: &[Change<'_>], depth: &dyn Fn(&str) -> usize) -> Vec<DeploymentStep> {
    let action = |kind: ActionKind, id: &str| DeploymentAction {
        action: kind,
        app: id.to_string(),
    };
    let mut stop = Vec::new();
    let mut start = Vec::new();
    let mut layers: BTreeMap<usize, Vec<DeploymentAction>> = BTreeMap::new();
    for change in changes {
        let kind = kind_of(change.before, change.after);
        let layered = match kind {
            Kind::Delete => {
                stop.push(action(ActionKind::StopApplication, change.id));
                None
            }
            Kind::Create => {
                start.push(action(ActionKind::StartApplication, change.id));
                Some(ActionKind::ScaleApplication)
            }
            Kind::Scale => Some(ActionKind::ScaleApplication),
            Kind::Restart => Some(ActionKind::RestartApplication),
            Kind::Nothing => None,
        };
        if let Some(kind) = layered {
            layers
                .entry(depth(change.id))
                .or_default()
                .push(action(kind, change.id));
        }
    }
    [stop, start]
        .into_iter()
        .chain(layers.into_values())
        .filter(|actions| !actions.is_empty())
        .map(|actions| DeploymentStep { actions })
        .collect()
}

/// The dependency graph has a cycle (422 `Dependency graph has cyclic dependencies.`).
#[derive(Debug, PartialEq, Eq)]
pub struct Cycle;

/// Every app's dependency depth (§3.3): the length of the longest dependency chain starting at
/// it. A dependency naming a group stands for every app in it; `group_dependencies` are the
/// dependencies of groups, which every app inside them inherits.
pub fn dependency_depths<'a>(
    apps: impl Iterator<Item = &'a AppDefinition>,
    group_dependencies: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, usize>, Cycle> {
    let apps: Vec<&AppDefinition> = apps.collect();
    let ids: BTreeSet<&str> = apps.iter().map(|a| a.id.as_str()).collect();
    let expand = |target: &str| -> Vec<String> {
        if ids.contains(target) {
            return vec![target.to_string()];
        }
        let prefix = if target == "/" {
            "/".to_string()
        } else {
            format!("{target}/")
        };
        ids.iter()
            .filter(|id| id.starts_with(&prefix))
            .map(|id| id.to_string())
            .collect()
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for app in &apps {
        let mut deps: BTreeSet<String> = app.dependencies.iter().flat_map(|d| expand(d)).collect();
        for (group, group_deps) in group_dependencies {
            if path::is_within(&app.id, group) {
                deps.extend(group_deps.iter().flat_map(|d| expand(d)));
            }
        }
        deps.remove(&app.id);
        edges.insert(app.id.clone(), deps);
    }
    let mut depths: BTreeMap<String, usize> = BTreeMap::new();
    let mut visiting: BTreeSet<String> = BTreeSet::new();
    fn visit(
        id: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        depths: &mut BTreeMap<String, usize>,
        visiting: &mut BTreeSet<String>,
    ) -> Result<usize, Cycle> {
        if let Some(d) = depths.get(id) {
            return Ok(*d);
        }
        if !visiting.insert(id.to_string()) {
            return Err(Cycle);
        }
        let mut depth = 1;
        for dep in edges.get(id).into_iter().flatten() {
            depth = depth.max(1 + visit(dep, edges, depths, visiting)?);
        }
        visiting.remove(id);
        depths.insert(id.to_string(), depth);
        Ok(depth)
    }
    for id in edges.keys() {
        visit(id, &edges, &mut depths, &mut visiting)?;
    }
    Ok(depths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::app_with;

    fn named(id: &str, deps: &[&str]) -> AppDefinition {
        let mut a = app_with(1, 10);
        a.id = id.to_string();
        a.dependencies = deps.iter().map(|d| d.to_string()).collect();
        a
    }

    fn names(steps: &[DeploymentStep]) -> Vec<Vec<String>> {
        steps
            .iter()
            .map(|s| {
                s.actions
                    .iter()
                    .map(|a| format!("{} {}", a.action.name(), a.app))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn classifies_changes_like_marathon() {
        let a = app_with(1, 10);
        let mut scaled = a.clone();
        scaled.instances = 3;
        assert_eq!(kind_of(None, Some(&a)), Kind::Create);
        assert_eq!(kind_of(Some(&a), Some(&scaled)), Kind::Scale);
        assert_eq!(kind_of(Some(&a), Some(&app_with(1, 20))), Kind::Restart);
        assert_eq!(kind_of(Some(&a), Some(&app_with(0, 20))), Kind::Scale);
        assert_eq!(kind_of(Some(&a), None), Kind::Delete);
        assert_eq!(kind_of(Some(&a), Some(&a)), Kind::Nothing);
    }

    #[test]
    fn steps_stop_start_then_layer_by_dependency_depth() {
        let db = named("/prod/db", &[]);
        let api = named("/prod/api", &["/prod/db"]);
        let web = named("/prod/web", &["/prod/api"]);
        let old = named("/prod/old", &[]);
        let depths = dependency_depths([&db, &api, &web].into_iter(), &BTreeMap::new()).unwrap();
        assert_eq!(depths["/prod/web"], 3);
        let changes = [
            Change::new("/prod/web", None, Some(&web)),
            Change::new("/prod/api", None, Some(&api)),
            Change::new("/prod/db", None, Some(&db)),
            Change::new("/prod/old", Some(&old), None),
        ];
        let plan = steps(&changes, &|id| depths.get(id).copied().unwrap_or(1));
        assert_eq!(
            names(&plan),
            vec![
                vec!["StopApplication /prod/old"],
                vec![
                    "StartApplication /prod/web",
                    "StartApplication /prod/api",
                    "StartApplication /prod/db"
                ],
                vec!["ScaleApplication /prod/db"],
                vec!["ScaleApplication /prod/api"],
                vec!["ScaleApplication /prod/web"],
            ]
        );
        assert!(steps(&[Change::new("/prod/db", Some(&db), Some(&db))], &|_| 1).is_empty());
    }

    #[test]
    fn group_dependencies_and_cycles() {
        let db = named("/data/db", &[]);
        let web = named("/front/web", &[]);
        let groups = BTreeMap::from([("/front".to_string(), vec!["/data".to_string()])]);
        let depths = dependency_depths([&db, &web].into_iter(), &groups).unwrap();
        assert_eq!((depths["/data/db"], depths["/front/web"]), (1, 2));
        let a = named("/a", &["/b"]);
        let b = named("/b", &["/a"]);
        assert_eq!(
            dependency_depths([&a, &b].into_iter(), &BTreeMap::new()),
            Err(Cycle)
        );
    }
}
