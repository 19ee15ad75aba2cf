//! Group requests (`/v2/groups`): structural updates, `scaleBy`, rollbacks to a version of the
//! tree, deletion and `enforceRole`, each one deployment (or, with `dryRun`, only its plan).

use super::{unavailable, Service};
use crate::scheduler::deployment::Deployment;
use crate::scheduler::groups::{self, diff, Mode, Refusal, Tree};
use crate::store::RootVersion;
use app::model::{
    path, AppDefinition, DeploymentStep, GroupDefinition, GroupUpdate, ServiceError, Timestamp,
    Violation,
};

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(details) => ServiceError::Invalid(details),
            Refusal::Conflict(message) => ServiceError::Conflict(message),
            Refusal::NotFound(message) => ServiceError::NotFound(message),
        }
    }
}

/// What a group change did: a deployment, or with `dryRun` the steps it would take.
pub enum GroupOutcome {
    Deployed(Deployment),
    DryRun(Vec<DeploymentStep>),
}

/// How a group request changes the tree.
enum Edit {
    /// `POST` or `PUT` with apps, groups, dependencies.
    Structure(Mode),
    /// `{"scaleBy": f}`.
    Scale(f64),
    /// `{"version": v}`: the group as it was then.
    Restore(Tree),
}

impl Service {
    /// `POST`/`PUT /v2/groups[/{id}]`.
    pub async fn change_group(
        &self,
        raw_path: &str,
        update: GroupUpdate,
        mode: Mode,
        force: bool,
        dry_run: bool,
    ) -> Result<GroupOutcome, ServiceError> {
        groups::check_exclusive(&update)?;
        let path_id = path::absolute(raw_path, "/");
        let group = groups::target_of(&path_id, &update);
        let edit = match (update.version, update.scale_by) {
            (Some(version), _) => Edit::Restore(self.tree_at(&group, version).await?),
            (None, Some(factor)) => Edit::Scale(factor),
            (None, None) => Edit::Structure(mode),
        };
        self.on_core(move |core, now| {
            let current = core.snapshot().tree();
            let target = match edit {
                Edit::Structure(mode) => {
                    groups::apply(&current, &group, &update, mode, force, now)?
                }
                Edit::Scale(factor) => groups::scale_by(&current, &group, factor, now)?,
                Edit::Restore(then) => restored(&current, &group, then, now),
            };
            let changes = diff(&current, &target);
            if dry_run {
                return Ok(GroupOutcome::DryRun(core.plan_of(changes, now)?));
            }
            Ok(GroupOutcome::Deployed(
                core.deploy_changes(changes, force, now)?,
            ))
        })
        .await
    }

    /// The tree as stored in root version `version`, for rolling `group` back to it.
    async fn tree_at(&self, group: &str, version: Timestamp) -> Result<Tree, ServiceError> {
        let not_there = || {
            ServiceError::Unprocessable(format!("Group {group} not available in version {version}"))
        };
        let (groups, apps) = self.stored_tree(version).await?.ok_or_else(not_there)?;
        let tree = Tree {
            apps: apps.into_iter().map(|a| (a.id.clone(), a)).collect(),
            groups: groups.into_iter().map(|g| (g.id.clone(), g)).collect(),
        };
        if !tree.group_exists(group) {
            return Err(not_there());
        }
        Ok(tree)
    }

    /// The stored versions of the tree, newest first.
    pub async fn tree_versions(&self) -> Result<Vec<RootVersion>, ServiceError> {
        self.store.root_versions().await.map_err(|e| {
            tracing::error!(error = %e, "reading the versions of the tree failed");
            unavailable()
        })
    }

    /// The groups and apps as stored in root version `version`.
    pub async fn stored_tree(
        &self,
        version: Timestamp,
    ) -> Result<Option<(Vec<GroupDefinition>, Vec<AppDefinition>)>, ServiceError> {
        self.store.tree_at(version).await.map_err(|e| {
            tracing::error!(error = %e, "reading a version of the tree failed");
            unavailable()
        })
    }

    /// `DELETE /v2/groups[/{id}]`: the group and everything in it.
    pub async fn delete_group(
        &self,
        raw_path: &str,
        force: bool,
    ) -> Result<Deployment, ServiceError> {
        let group = path::absolute(raw_path, "/");
        self.on_core(move |core, now| {
            let current = core.snapshot().tree();
            let target = groups::delete(&current, &group)?;
            core.deploy_changes(diff(&current, &target), force, now)
        })
        .await
    }

    /// `PATCH /v2/groups/{id}`: only `enforceRole`, only of a top-level group, no deployment.
    pub async fn patch_group(
        &self,
        raw_path: &str,
        enforce_role: Option<bool>,
    ) -> Result<(), ServiceError> {
        let group = path::absolute(raw_path, "/");
        self.on_core(move |core, now| {
            let snapshot = core.snapshot();
            let Some(existing) = snapshot.groups.get(&group) else {
                return Err(ServiceError::NotFound(format!(
                    "Group '{group}' does not exist"
                )));
            };
            if path::parent(&group) != "/" {
                return Err(ServiceError::Invalid(vec![Violation {
                    path: "/".into(),
                    errors: vec!["Path needs to be top-level".into()],
                }]));
            }
            let mut next = (**existing).clone();
            next.enforce_role = enforce_role.unwrap_or(false);
            let changes = groups::Diff {
                apps: Vec::new(),
                groups: vec![(group.clone(), Some(next))],
            };
            core.deploy_changes(changes, true, now).map(|_| ())
        })
        .await
    }
}

/// The current tree with `group`'s subtree as it was in `then`. An app whose definition of
/// then equals today's is left alone; the others get their old definition with a new version,
/// keeping its configuration time so that instances still running it stay.
fn restored(current: &Tree, group: &str, then: Tree, now: Timestamp) -> Tree {
    let inside = |id: &str| id == group || path::is_within(id, group);
    let mut next = current.clone();
    next.apps.retain(|id, _| !inside(id));
    next.groups.retain(|id, _| !inside(id));
    for (id, app) in then.apps.into_iter().filter(|(id, _)| inside(id)) {
        let app = match current.apps.get(&id) {
            Some(today) if today.version == app.version => today.clone(),
            _ => {
                let mut app = app;
                app.version = now;
                app.version_info.last_scaling_at = Some(now);
                app
            }
        };
        next.apps.insert(id, app);
    }
    next.groups
        .extend(then.groups.into_iter().filter(|(id, _)| inside(id)));
    next
}
