//! What a request that fails answers, and the lookups every handler shares (a job by id, or
//! a 404): one place that both the JSON handlers (`api`) and the file handlers (`files`) use.

use crate::App;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sweep_core::store::{JobRow, StoreError};

/// A failed request: 404 for what does not exist, 500 (with the store's message) otherwise.
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        let missing = matches!(
            e.downcast_ref::<StoreError>(),
            Some(StoreError::NoSuchSweep { .. } | StoreError::NoSuchJob { .. })
        );
        let status = if missing {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, format!("{e:#}"))
    }
}

pub(crate) fn not_found_error(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, what)
}

pub(crate) async fn not_found() -> ApiError {
    not_found_error("no such page".into())
}

/// The job with this id (a number is also a hash prefix to `find_job`: only the id counts).
pub(crate) async fn job_row(app: &App, id: i64) -> Result<JobRow, ApiError> {
    let row = app.store.find_job(&id.to_string()).await?;
    if row.job_id != id {
        return Err(not_found_error(format!("no job {id}")));
    }
    Ok(row)
}
