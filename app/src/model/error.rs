//! The errors a request can end in, shared by the REST API (which renders Marathon's bodies) and
//! the dashboard (which shows them next to the form or button that caused them).

use super::validate::Violation;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ServiceError {
    /// 404 with this message.
    #[error("{0}")]
    NotFound(String),
    /// 422 "Object is not valid" with these details.
    #[error("Object is not valid")]
    Invalid(Vec<Violation>),
    /// 422 "Invalid JSON": the body had the wrong shape.
    #[error("Invalid JSON")]
    InvalidJson(Vec<Violation>),
    /// 422 with only a message.
    #[error("{0}")]
    Unprocessable(String),
    /// 400 with this message (and for unparsable JSON, the parser's text as details).
    #[error("{message}")]
    BadRequest {
        message: String,
        details: Option<String>,
    },
    /// 409: the app is locked by running deployments.
    #[error("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{}'.", .0.first().map(String::as_str).unwrap_or_default())]
    Locked(Vec<String>),
    /// 409 with this message (e.g. the app already exists).
    #[error("{0}")]
    Conflict(String),
    /// 503: the scheduler could not take the request (stopping, or its store failed).
    #[error("{0}")]
    Unavailable(String),
}

impl ServiceError {
    pub fn app_not_found(id: &str) -> ServiceError {
        ServiceError::NotFound(format!("App '{id}' does not exist"))
    }
}
