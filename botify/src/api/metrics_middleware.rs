//! The middleware that counts and times every request for `/metrics`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::app_state::AppState;
use super::error::ApiError;
use super::routes::route_label;

/// Middleware (`from_fn`): counts every request by route pattern and
/// status and times it, and counts 4xx answers by error code.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let route = route_label(req.path());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let started = Instant::now();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let metrics = state.engine.metrics();
        let status = response.status();
        metrics
            .http_requests
            .with_label_values(&[route, status.as_str()])
            .inc();
        metrics
            .http_duration
            .with_label_values(&[route])
            .observe(started.elapsed().as_secs_f64());
        if let Some(err) = response.response().error() {
            if let Some(api) = err.as_error::<ApiError>() {
                metrics.request_errors.with_label_values(&[api.code]).inc();
            }
        }
    }
    Ok(response)
}
