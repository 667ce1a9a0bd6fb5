//! The operations routes: liveness (`/`, `/health`, which also says what
//! the replica serves from), readiness (`/ready`: whether to send it
//! traffic) and the Prometheus metrics.

use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::answers::{
    ControlPlaneHealth, HealthAnswer, HealthStatus, ModelsHealth, RootAnswer, StoreHealth,
};
use super::app_state::AppState;
use super::error::Reply;
use crate::readiness::ReadyStatus;

#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "The service is up", body = RootAnswer))
)]
pub async fn root(state: web::Data<AppState>) -> Reply {
    let arms: Vec<_> = state
        .engine
        .arm_names()
        .into_iter()
        .map(|(label, name)| format!("{label}={name}"))
        .collect();
    Ok(HttpResponse::Ok().json(RootAnswer {
        status: "alive".into(),
        message: format!(
            "botify: {} tracks, experiment {} ({}), state in {}",
            state.engine.catalog().len(),
            state.engine.experiments().active,
            arms.join(", "),
            state.engine.store_kind()
        ),
    }))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4 (docs/api.md#operations names the metrics)", body = String, content_type = "text/plain"))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let metrics = state.engine.metrics();
    if let Some(counters) = &state.log_counters {
        for (gauge, counter) in [
            (&metrics.events_written, &counters.written),
            (&metrics.event_write_errors, &counters.write_errors),
            (&metrics.events_spilled, &counters.spilled),
            (&metrics.events_shipped, &counters.shipped),
        ] {
            gauge.set(counter.load(Ordering::Relaxed) as i64);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Health",
    description = "Liveness, always 200: a degraded replica (state store unreachable) still serves from its fallback.",
    responses((status = 200, description = "What the replica serves from", body = HealthAnswer))
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let engine = &state.engine;
    let reachable = engine.store_reachable().await;
    let models = engine.models();
    let mut tables: Vec<_> = models.tables.keys().cloned().collect();
    tables.sort();
    // Degraded still answers 200: the service keeps serving from its
    // fallback, and a load balancer should not pull a replica for that.
    HttpResponse::Ok().json(HealthAnswer {
        status: if reachable {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        },
        state_store: StoreHealth {
            kind: engine.store_kind().to_string(),
            reachable,
        },
        models: ModelsHealth {
            dir: engine.models_dir().display().to_string(),
            top_tracks: models.top_tracks.is_some(),
            tables,
        },
        catalog_tracks: engine.catalog().len(),
        control_plane: ControlPlaneHealth {
            version: state.control.version(),
            store: state.control.kind().to_string(),
        },
        model_version: models.version.clone(),
    })
}

/// The answer of `GET /ready`.
#[derive(Serialize, ToSchema)]
pub struct ReadyAnswer {
    pub status: ReadyStatus,
}

#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    summary = "Readiness",
    description = "Whether a load balancer should send this replica traffic: 503 while it starts and while it drains after SIGTERM (it still answers then, for the drain delay), 200 otherwise. Liveness is `/health`.",
    responses(
        (status = 200, description = "Serving", body = ReadyAnswer, example = json!({"status": "ready"})),
        (status = 503, description = "Starting or draining: send traffic elsewhere", body = ReadyAnswer, example = json!({"status": "draining"}))
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let status = state.readiness.status();
    let mut answer = match status {
        ReadyStatus::Ready => HttpResponse::Ok(),
        ReadyStatus::Starting | ReadyStatus::Draining => HttpResponse::ServiceUnavailable(),
    };
    answer.json(ReadyAnswer { status })
}
