//! Shared by the dashboard and the server: the model types and the Leptos UI.
//!
//! # Layout
//! - [`model`]: Marathon's JSON types (apps, tasks, deployments, events) and validation.

pub mod model;
