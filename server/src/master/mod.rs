//! The built-in single-node Mesos master and its agent.

pub mod agent;
pub mod host;
pub mod local;
pub mod supervisor;
pub mod zygote;
