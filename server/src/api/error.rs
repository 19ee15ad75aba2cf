//! Marathon's error bodies (API.md §0.6).

use app::model::ServiceError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A [`ServiceError`] on its way out as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.0.to_string();
        let (status, body) = match self.0 {
            ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, json!({ "message": message })),
            ServiceError::Invalid(details) | ServiceError::InvalidJson(details) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "message": message, "details": details }),
            ),
            ServiceError::Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "message": message }),
            ),
            ServiceError::BadRequest { details, .. } => (
                StatusCode::BAD_REQUEST,
                match details {
                    Some(details) => json!({ "message": message, "details": details }),
                    None => json!({ "message": message }),
                },
            ),
            ServiceError::Locked(ids) => (
                StatusCode::CONFLICT,
                json!({
                    "message": message,
                    "deployments": ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
                }),
            ),
            ServiceError::Conflict(_) => (StatusCode::CONFLICT, json!({ "message": message })),
            ServiceError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "message": message }),
            ),
        };
        (status, Json(body)).into_response()
    }
}
