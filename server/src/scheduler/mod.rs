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
//!
//! # Layout
//! - [`instance`]: instances, conditions, goals, task ids.
//! - [`converge`]: per app, which instances to add, stop and forget (with the kill order).
//! - [`placement`]: dividing an offer among waiting instances; constraint checks.
//! - [`status`]: applying a Mesos status update to an instance as an effect.
//! - [`backoff`]: the launch delay after failures.
//! - [`deployment`]: deployment records, their steps and completion.
//! - [`taskbuild`]: the task (command, resources, environment) launched for an instance.

pub mod backoff;
pub mod converge;
pub mod deployment;
pub mod instance;
pub mod placement;
pub mod status;
pub mod taskbuild;
#[cfg(test)]
pub mod testing;
