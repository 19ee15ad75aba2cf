//! The scheduler core: pure decisions about apps, instances, offers and deployments.
//!
//! Nothing here does IO, reads a clock or draws random numbers; callers pass `now` and ids in.
//!
//! # Words
//! - **instance**: one wanted copy of an app; it keeps its id across relaunches, each launch is a
//!   new *task* (`<instance>._app.<incarnation>`).
//! - **goal**: `Running` (keep it alive) or `Decommissioned` (kill it, then forget it).
//! - **condition**: the state of the instance's current task (`Scheduled` = waiting for an offer).
//! - **current** instances have goal Running and the app's current configuration; **outdated**
//!   ones run an older configuration and are replaced; **stopping** ones are decommissioned with a
//!   live task; **gone** ones are decommissioned and dead, ready to be expunged.
//! - **veto**: why an offer could not take an app's instance (see [`placement::Veto`]).
//! - **gate**: how far a deployment lets an app move right now (see [`converge::Gate`]).
//! - **old** / **new** (during a rolling restart): outdated and current instances.
//! - **healthy and ready**: what a deployment waits for (see [`health`], [`converge::Judgement`]).
//!
//! # Layout
//! - [`instance`]: instances, conditions, goals, task ids.
//! - [`lifecycle`]: every change to an instance, as one pure operation → effect function.
//! - [`status`]: Mesos status updates and Marathon's state → condition mapping.
//! - [`converge`]: per app, which instances to add, stop and forget (with the kill order).
//! - [`upgrade`]: the rolling restart within `upgradeStrategy`.
//! - [`plan`]: deployment plans from app changes, layered by dependencies.
//! - [`groups`]: the tree of groups and apps, and Marathon's group updates applied to it.
//! - [`versioning`]: the version bookkeeping every app change follows.
//! - [`deployment`]: deployment records, gates and step completion.
//! - [`health`]: probe results, health, health kills and their rate bound.
//! - [`placement`]: dividing an offer among waiting instances.
//! - [`constraint`]: typed placement constraints with cached regexes.
//! - [`backoff`]: the launch delay after failures.
//! - [`taskbuild`]: the task (command, resources, environment) launched for an instance.

pub mod backoff;
pub mod constraint;
pub mod converge;
pub mod deployment;
pub mod groups;
pub mod health;
pub mod instance;
pub mod lifecycle;
pub mod placement;
pub mod plan;
pub mod status;
pub mod taskbuild;
#[cfg(test)]
pub mod testing;
pub mod upgrade;
pub mod versioning;
