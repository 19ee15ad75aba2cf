//! The scheduler core: pure decisions about apps, instances, offers and deployments.
//!
//! Nothing here does IO, reads a clock or draws random numbers; callers pass `now` and ids in.
//!
//! # Words
//! - **instance**: one wanted copy of an app; it keeps its id across relaunches, each launch is a
//!   new *task* (`<instance>._app.<incarnation>`).
//! - **goal**: `Running` (keep it alive), `Decommissioned` (kill it, then forget it) or, for
//!   resident instances only, `Stopped` (kill it, keep its reservation and volumes).
//! - **resident** instances (apps with persistent volumes) hold a *reservation* on one agent:
//!   reserved resources and volumes they relaunch on, there and nowhere else.
//! - **condition**: the state of the instance's current task (`Scheduled` = waiting for an offer).
//! - **current** instances have goal Running and the app's current configuration; **outdated**
//!   ones run an older configuration and are replaced; **stopping** ones are decommissioned with a
//!   live task; **gone** ones are decommissioned and dead, ready to be expunged; **stopped** ones
//!   are resident instances kept for later.
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
//! - [`residency`]: resident instances' reservations, and which reserved resources in an offer
//!   to launch on or give back.
//! - [`service_ports`]: service ports 0 given a cluster-unique port, kept across updates.
//! - [`constraint`]: typed placement constraints with cached regexes.
//! - [`disks`]: PATH and MOUNT disks, and which of them path and mount volumes go on.
//! - [`backoff`]: the launch delay after failures.
//! - [`taskbuild`]: the task (command, resources, environment) launched for an instance.

pub mod backoff;
pub mod constraint;
pub mod converge;
pub mod deployment;
pub mod disks;
pub mod groups;
pub mod health;
pub mod instance;
pub mod lifecycle;
pub mod placement;
pub mod plan;
pub mod residency;
pub mod service_ports;
pub mod status;
pub mod taskbuild;
pub mod taskgroup;
#[cfg(test)]
pub mod testing;
pub mod upgrade;
pub mod versioning;
