//! The built-in single-node Mesos master and its agent, in-process or served over HTTP
//! ([`server`], `stride master`).

pub mod agent;
pub mod checks;
pub mod container;
pub mod disks;
pub mod docker;
pub mod host;
pub mod local;
pub mod server;
mod spawn;
pub mod supervisor;
pub mod topology;
pub mod zygote;
