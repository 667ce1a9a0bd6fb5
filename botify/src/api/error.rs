//! The one error shape every 4xx carries:
//! `{"error": "<code>", "message": "<what was wrong and what is expected>"}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::ToSchema;

use crate::engine::RequestError;

/// What a handler answers: its JSON, or the 4xx of what was wrong.
pub type Reply = Result<HttpResponse, ApiError>;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The methods a 405 names in its `Allow` header (RFC 9110 requires it).
    pub allow: Option<&'static str>,
}

/// The body of every 4xx answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid_time", "message": "time must be a finite number in 0..=1, got 1.5"}))]
pub struct ErrorBody {
    /// A stable, machine-readable code (docs/api.md#errors lists them).
    pub error: String,
    /// What was wrong and what is expected, for people.
    pub message: String,
}

impl ErrorBody {
    /// A 4xx answer in the API description, for the answers a `Modify`
    /// adds to several routes at once.
    pub fn described(description: &str) -> RefOr<Response> {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            )
            .into()
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 405 for `method` on `path`, whose resource answers `allow`
    /// (comma-separated methods).
    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Self {
        ApiError {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not supported on {path}; use {allow}"),
            )
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, allow));
        }
        response.json(ErrorBody {
            error: self.code.to_string(),
            message: self.message.clone(),
        })
    }
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::UnknownTrack(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_track",
                format!("{err}; use a track id from the catalog (GET /track/{{id}})"),
            ),
            RequestError::InvalidTime(_) => ApiError::bad_request("invalid_time", err.to_string()),
        }
    }
}
