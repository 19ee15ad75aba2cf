//! Groups: the tree of apps and groups, Marathon's group updates applied to it (SEMANTICS.md
//! §3.4), and the rules a tree must keep. Pure: the core applies the resulting tree.

use super::versioning::{versioned, Versioning};
use app::model::{
    path, validate_app_update, AppDefinition, GroupDefinition, GroupUpdate, Timestamp, Violation,
};
use std::collections::{BTreeMap, BTreeSet};

/// Every app and group; the root `/` always exists and is not stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tree {
    pub apps: BTreeMap<String, AppDefinition>,
    pub groups: BTreeMap<String, GroupDefinition>,
}

/// Why a group change is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 422 "Object is not valid".
    Invalid(Vec<Violation>),
    /// 409 with this message.
    Conflict(String),
    /// 404 with this message.
    NotFound(String),
}

fn violation(path: &str, error: impl Into<String>) -> Violation {
    Violation {
        path: path.to_string(),
        errors: vec![error.into()],
    }
}

impl Tree {
    pub fn group_exists(&self, id: &str) -> bool {
        id == "/" || self.groups.contains_key(id)
    }

    /// Creates `id`'s missing ancestors (not `id` itself), as `mkdir -p` does.
    pub fn ensure_parents(&mut self, id: &str, now: Timestamp) {
        let mut parent = path::parent(id);
        while parent != "/" {
            self.groups
                .entry(parent.clone())
                .or_insert_with(|| empty_group(&parent, now));
            parent = path::parent(&parent);
        }
    }

    /// The apps anywhere below `group`.
    pub fn apps_within<'a>(
        &'a self,
        group: &'a str,
    ) -> impl Iterator<Item = &'a AppDefinition> + 'a {
        self.apps
            .values()
            .filter(move |a| path::is_within(&a.id, group))
    }

    /// Removes `group` and everything below it.
    fn remove_subtree(&mut self, group: &str) {
        self.apps.retain(|id, _| !path::is_within(id, group));
        self.groups
            .retain(|id, _| id != group && !path::is_within(id, group));
    }

    /// Each group's dependencies, for the deployment plan.
    pub fn group_dependencies(&self) -> BTreeMap<String, Vec<String>> {
        self.groups
            .values()
            .filter(|g| !g.dependencies.is_empty())
            .map(|g| (g.id.clone(), g.dependencies.clone()))
            .collect()
    }

    /// The rules every tree keeps: one namespace for apps and groups.
    pub fn check(&self) -> Result<(), Refusal> {
        if self.apps.keys().any(|id| self.groups.contains_key(id)) {
            return Err(Refusal::Invalid(vec![violation(
                "/",
                "Groups and Applications may not have the same identifier.",
            )]));
        }
        Ok(())
    }
}

pub fn empty_group(id: &str, now: Timestamp) -> GroupDefinition {
    GroupDefinition {
        id: id.to_string(),
        dependencies: Vec::new(),
        enforce_role: false,
        version: now,
    }
}

/// Whether a POST creates a group or a PUT creates or updates one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Create,
    CreateOrUpdate,
}

/// The group an update addresses: its `id` relative to the path's group, else that group.
pub fn target_of(path_id: &str, update: &GroupUpdate) -> String {
    match &update.id {
        Some(id) => path::absolute(id, path_id),
        None => path_id.to_string(),
    }
}

/// `{"version": …}` and `{"scaleBy": …}` must come alone (Marathon counts every field set).
pub fn check_exclusive(update: &GroupUpdate) -> Result<(), Refusal> {
    let others = update.id.is_some()
        || update.apps.is_some()
        || update.groups.is_some()
        || update.dependencies.is_some()
        || update.enforce_role.is_some();
    let special = update.version.is_some() as u8 + update.scale_by.is_some() as u8;
    if special > 1 || (special == 1 && others) {
        return Err(Refusal::Invalid(vec![violation(
            "/",
            "not allowed in conjunction with other properties.",
        )]));
    }
    Ok(())
}

/// `scaleBy`: every app below `group` gets `ceil(instances × factor)` instances.
pub fn scale_by(tree: &Tree, group: &str, factor: f64, now: Timestamp) -> Result<Tree, Refusal> {
    if !tree.group_exists(group) {
        return Err(Refusal::NotFound(format!("Group '{group}' does not exist")));
    }
    if factor.is_nan() || factor < 0.0 {
        return Err(Refusal::Invalid(vec![violation(
            "/scaleBy",
            format!("got {factor}, expected 0.0 or more"),
        )]));
    }
    let mut next = tree.clone();
    for app in tree.apps_within(group) {
        let mut scaled = app.clone();
        scaled.instances = (app.instances as f64 * factor - 1e-9).ceil().max(0.0) as i64;
        next.apps.insert(
            app.id.clone(),
            versioned(scaled, Some(app), Versioning::Edit, now),
        );
    }
    Ok(next)
}

/// A structural create or update of `group` (SEMANTICS.md §3.4): `apps` and `groups`, when
/// given, replace the group's direct apps and subgroups; `dependencies` replace its own;
/// missing parents are created. `force` is the request's (a resident app's role change needs it).
pub fn apply(
    tree: &Tree,
    group: &str,
    update: &GroupUpdate,
    mode: Mode,
    force: bool,
    now: Timestamp,
) -> Result<Tree, Refusal> {
    if mode == Mode::Create {
        if tree.apps.contains_key(group) {
            return Err(Refusal::Conflict(format!(
                "An app with the path {group} already exists."
            )));
        }
        if tree.group_exists(group) {
            return Err(Refusal::Conflict(format!(
                "Group {group} is already created. Use PUT to change this group."
            )));
        }
    }
    let mut next = tree.clone();
    let mut edit = GroupEdit {
        violations: Vec::new(),
        force,
        now,
    };
    update_group(&mut next, group, update, "", &mut edit);
    let violations = edit.violations;
    if !violations.is_empty() {
        return Err(Refusal::Invalid(violations));
    }
    next.check()?;
    let role_changed = next.groups.iter().any(|(id, g)| {
        tree.groups
            .get(id)
            .is_some_and(|old| old.enforce_role != g.enforce_role)
    });
    let services_changed = next.apps != tree.apps;
    if role_changed && services_changed {
        return Err(Refusal::Invalid(vec![violation(
            "/",
            "enforceRole cannot be modified in a request that adds, removes or modifies services; please make these changes in separate requests.",
        )]));
    }
    Ok(next)
}

/// What one structural update carries down the groups it touches.
struct GroupEdit {
    /// What is wrong with the update, by the path in its body.
    violations: Vec<Violation>,
    /// The request's `force`.
    force: bool,
    now: Timestamp,
}

fn update_group(tree: &mut Tree, id: &str, update: &GroupUpdate, at: &str, edit: &mut GroupEdit) {
    let now = edit.now;
    let errors_at = |field: &str| format!("{at}/{field}");
    if id != "/" {
        tree.ensure_parents(id, now);
        tree.groups
            .entry(id.to_string())
            .or_insert_with(|| empty_group(id, now));
    }
    if let Some(enforce) = update.enforce_role {
        let top_level = path::parent(id) == "/" && id != "/";
        if !top_level {
            edit.violations.push(violation(
                &errors_at("enforceRole"),
                format!(
                    "enforceRole can only be set for top-level groups, and {id} is not top-level"
                ),
            ));
        } else if let Some(g) = tree.groups.get_mut(id) {
            g.enforce_role = enforce;
        }
    }
    if let Some(dependencies) = &update.dependencies {
        let resolved: Vec<String> = dependencies.iter().map(|d| path::absolute(d, id)).collect();
        if let Some(g) = tree.groups.get_mut(id) {
            g.dependencies = resolved;
        }
    }
    if let Some(apps) = &update.apps {
        let mut listed = BTreeSet::new();
        for (n, app_update) in apps.iter().enumerate() {
            let app_at = format!("{at}/apps({n})");
            let Some(raw_id) = app_update.id.clone() else {
                edit.violations
                    .push(violation(&format!("{app_at}/id"), "error.path.missing"));
                continue;
            };
            let app_id = path::absolute(&raw_id, id);
            if path::parent(&app_id) != id {
                edit.violations.push(violation(
                    &format!("{app_at}/id"),
                    format!("Identifier is not child of '{id}'"),
                ));
                continue;
            }
            let mut app = AppDefinition::create(app_id.clone(), app_update.clone(), now);
            app.dependencies = app
                .dependencies
                .iter()
                .map(|d| path::absolute(d, id))
                .collect();
            // A resident app's resources and volumes cannot change here either (Marathon checks
            // them for every deployment plan, whichever endpoint made it).
            let before = tree.apps.get(&app_id);
            if let Err(errors) = validate_app_update(before, &app, &raw_id, edit.force) {
                edit.violations
                    .extend(errors.into_iter().map(|v| Violation {
                        path: format!(
                            "{app_at}{}",
                            if v.path == "/" { String::new() } else { v.path }
                        ),
                        errors: v.errors,
                    }));
                continue;
            }
            let next = versioned(app, tree.apps.get(&app_id), Versioning::Edit, now);
            listed.insert(app_id.clone());
            tree.apps.insert(app_id, next);
        }
        tree.apps
            .retain(|app_id, _| path::parent(app_id) != id || listed.contains(app_id));
    }
    if let Some(groups) = &update.groups {
        let mut listed = BTreeSet::new();
        for (n, sub) in groups.iter().enumerate() {
            let sub_at = format!("{at}/groups({n})");
            let Some(raw_id) = &sub.id else {
                edit.violations
                    .push(violation(&format!("{sub_at}/id"), "error.path.missing"));
                continue;
            };
            let sub_id = path::absolute(raw_id, id);
            if path::parent(&sub_id) != id || sub_id == id {
                edit.violations.push(violation(
                    &format!("{sub_at}/id"),
                    format!("Identifier is not child of '{id}'"),
                ));
                continue;
            }
            listed.insert(sub_id.clone());
            update_group(tree, &sub_id, sub, &sub_at, edit);
        }
        let dropped: Vec<String> = tree
            .groups
            .keys()
            .filter(|g| path::parent(g) == id && !listed.contains(*g))
            .cloned()
            .collect();
        for g in dropped {
            tree.remove_subtree(&g);
        }
    }
}

/// Deleting `group` and everything in it (`/`: everything).
pub fn delete(tree: &Tree, group: &str) -> Result<Tree, Refusal> {
    if !tree.group_exists(group) {
        return Err(Refusal::NotFound(format!("Group '{group}' does not exist")));
    }
    let mut next = tree.clone();
    if group == "/" {
        next = Tree::default();
    } else {
        next.remove_subtree(group);
    }
    Ok(next)
}

/// The changes from `before` to `after`: apps that differ, groups that differ.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diff {
    pub apps: Vec<(String, Option<AppDefinition>)>,
    pub groups: Vec<(String, Option<GroupDefinition>)>,
}

pub fn diff(before: &Tree, after: &Tree) -> Diff {
    let mut out = Diff::default();
    for (id, app) in &after.apps {
        if before.apps.get(id) != Some(app) {
            out.apps.push((id.clone(), Some(app.clone())));
        }
    }
    for id in before
        .apps
        .keys()
        .filter(|id| !after.apps.contains_key(*id))
    {
        out.apps.push((id.clone(), None));
    }
    for (id, group) in &after.groups {
        if before.groups.get(id) != Some(group) {
            out.groups.push((id.clone(), Some(group.clone())));
        }
    }
    for id in before
        .groups
        .keys()
        .filter(|id| !after.groups.contains_key(*id))
    {
        out.groups.push((id.clone(), None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::AppUpdate;

    fn app_update(id: &str, deps: &[&str]) -> AppUpdate {
        AppUpdate {
            id: Some(id.into()),
            cmd: Some("sleep 100".into()),
            dependencies: (!deps.is_empty()).then(|| deps.iter().map(|d| d.to_string()).collect()),
            ..Default::default()
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_millis(1000)
    }

    #[test]
    fn nested_groups_with_relative_ids_are_created_with_their_parents() {
        let update = GroupUpdate {
            id: Some("prod".into()),
            groups: Some(vec![
                GroupUpdate {
                    id: Some("db".into()),
                    apps: Some(vec![app_update("db1", &[])]),
                    ..Default::default()
                },
                GroupUpdate {
                    id: Some("service".into()),
                    apps: Some(vec![app_update("api", &["../db/db1"])]),
                    dependencies: Some(vec!["../db".into()]),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let group = target_of("/", &update);
        let tree = apply(
            &Tree::default(),
            &group,
            &update,
            Mode::Create,
            false,
            now(),
        )
        .unwrap();
        assert!(tree.groups.contains_key("/prod/db") && tree.groups.contains_key("/prod/service"));
        assert_eq!(
            tree.apps["/prod/service/api"].dependencies,
            vec!["/prod/db/db1"]
        );
        assert_eq!(tree.groups["/prod/service"].dependencies, vec!["/prod/db"]);
        assert!(matches!(
            apply(
                &tree,
                "/prod",
                &GroupUpdate::default(),
                Mode::Create,
                false,
                now()
            ),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn listed_apps_and_groups_replace_the_old_ones_and_absent_lists_keep_them() {
        let mut tree = Tree::default();
        for id in ["/a/x", "/a/y", "/a/sub/z"] {
            let app = AppDefinition::create(id.into(), app_update(id, &[]), now());
            tree.ensure_parents(id, now());
            tree.apps.insert(id.into(), app);
        }
        let keep_x = GroupUpdate {
            apps: Some(vec![app_update("x", &[])]),
            ..Default::default()
        };
        let next = apply(&tree, "/a", &keep_x, Mode::CreateOrUpdate, false, now()).unwrap();
        assert_eq!(
            next.apps.keys().collect::<Vec<_>>(),
            vec!["/a/sub/z", "/a/x"]
        );
        assert_eq!(
            next.apps["/a/x"], tree.apps["/a/x"],
            "an unchanged app keeps its version"
        );
        let no_groups = GroupUpdate {
            groups: Some(vec![]),
            ..Default::default()
        };
        let next = apply(&tree, "/a", &no_groups, Mode::CreateOrUpdate, false, now()).unwrap();
        assert!(!next.groups.contains_key("/a/sub") && !next.apps.contains_key("/a/sub/z"));
        let d = diff(&tree, &next);
        assert_eq!(d.apps, vec![("/a/sub/z".to_string(), None)]);
    }

    #[test]
    fn rules_of_the_tree() {
        let bad_child = GroupUpdate {
            apps: Some(vec![app_update("/elsewhere/x", &[])]),
            ..Default::default()
        };
        let Err(Refusal::Invalid(v)) = apply(
            &Tree::default(),
            "/a",
            &bad_child,
            Mode::Create,
            false,
            now(),
        ) else {
            panic!("not a child")
        };
        assert_eq!(v[0].path, "/apps(0)/id");
        let same_id = GroupUpdate {
            apps: Some(vec![app_update("/a/b", &[])]),
            groups: Some(vec![GroupUpdate {
                id: Some("b".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert!(matches!(
            apply(&Tree::default(), "/a", &same_id, Mode::Create, false, now()),
            Err(Refusal::Invalid(_))
        ));
        let deep_role = GroupUpdate {
            groups: Some(vec![GroupUpdate {
                id: Some("b".into()),
                enforce_role: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let Err(Refusal::Invalid(v)) = apply(
            &Tree::default(),
            "/a",
            &deep_role,
            Mode::Create,
            false,
            now(),
        ) else {
            panic!("enforceRole below the top level")
        };
        assert_eq!(v[0].path, "/groups(0)/enforceRole");
        let mixed = GroupUpdate {
            version: Some(now()),
            scale_by: Some(2.0),
            ..Default::default()
        };
        assert!(check_exclusive(&mixed).is_err());
    }

    #[test]
    fn scale_by_rounds_up_every_app_inside() {
        let mut tree = Tree::default();
        let mut app = AppDefinition::create("/a/b/web".into(), app_update("/a/b/web", &[]), now());
        app.instances = 3;
        tree.ensure_parents(&app.id, now());
        tree.apps.insert(app.id.clone(), app);
        let scaled = scale_by(&tree, "/a", 1.5, Timestamp::from_millis(2000)).unwrap();
        assert_eq!(scaled.apps["/a/b/web"].instances, 5);
        assert!(matches!(
            scale_by(&tree, "/nope", 2.0, now()),
            Err(Refusal::NotFound(_))
        ));
    }
}
