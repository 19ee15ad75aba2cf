//! Shared by the dashboard and the server: the model types, the server functions and the
//! Leptos UI. Feature `ssr` builds the server side, `hydrate` the browser side.
//!
//! # Layout
//! - [`model`]: Marathon's JSON types (apps, tasks, deployments, events), validation, errors.
//! - [`api`]: server functions the dashboard calls, and the [`api::Backend`] trait (ssr) the
//!   server implements for them.
//! - [`ui`]: the pages and components.

pub mod api;
pub mod model;
pub mod ui;
