//! The admin API: reload models, add tracks, read and replace filters.
//!
//! Guarded by a bearer token from configuration. Without a configured token
//! the routes do not exist (404), so a deployment cannot expose them by
//! accident; a wrong or missing token is a 401 and changes nothing.
//!
//! Changes go through the control plane (`control/`), so every replica
//! serves them and they survive restarts. When its store cannot take a
//! change, the answer is a 409 `control_plane_unavailable` and nothing
//! changed anywhere.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::{input, not_found, AppState, Reply};
use crate::catalog::Track;
use crate::control::ChangeError;
use crate::filters::Filters;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("/reload", web::post().to(reload))
            .route("/tracks", web::post().to(add_track))
            .route("/filters", web::get().to(get_filters))
            .route("/filters", web::put().to(put_filters))
            .default_service(web::to(admin_not_found)),
    );
}

/// Checks the bearer token. `Err` is the answer to send instead.
async fn authorize(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(not_found(req.clone()).await.unwrap_err());
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin routes need the header `Authorization: Bearer <token>` with the configured admin token",
        ))
    }
}

/// Comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn admin_not_found(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    authorize(&state, &req).await?;
    not_found(req).await
}

async fn reload(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    authorize(&state, &req).await?;
    let engine = state.engine.clone();
    let loaded = web::block(move || engine.reload_models())
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "shutting_down", e.to_string()))?;
    match loaded {
        Ok(models) => {
            // Every replica follows the version this one now serves.
            let version = models.version.clone();
            state
                .control
                .change(|doc, _| {
                    doc.models_version = version.clone();
                    Ok::<_, ApiError>(())
                })
                .await
                .map_err(|err| match err {
                    ChangeError::Unavailable(err) => ApiError::new(
                        StatusCode::CONFLICT,
                        "control_plane_unavailable",
                        format!("{err}; the models were reloaded on this replica only, retry to reach every replica"),
                    ),
                    ChangeError::Rejected(refusal) => refusal,
                })?;
            let mut tables: Vec<_> = models
                .tables
                .iter()
                .map(|(name, t)| json!({"name": name, "tracks": t.len()}))
                .collect();
            tables.sort_by_key(|t| t["name"].as_str().unwrap_or_default().to_string());
            Ok(HttpResponse::Ok().json(json!({
                "reloaded": true,
                "model_version": models.version,
                "top_tracks": models.top_tracks.as_ref().map(Vec::len),
                "tables": tables,
            })))
        }
        Err(err) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_models",
            format!("{err}; the previous models keep serving"),
        )),
    }
}

async fn add_track(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    authorize(&state, &req).await?;
    let body = input::read_body(body, input::MAX_ADMIN_BODY_BYTES).await?;
    let invalid = |e: serde_json::Error| {
        ApiError::bad_request(
            "invalid_track_record",
            format!("{e}; expected {{\"artist\": \"...\", \"title\": \"...\", \"genre\": \"...\"}} (\"track\" optional: the next free id)"),
        )
    };
    let record: serde_json::Value = serde_json::from_slice(&body).map_err(invalid)?;
    let id = state
        .control
        .change(|doc, engine| {
            let mut record = record.clone();
            if let Some(fields) = record.as_object_mut() {
                // Without an explicit id the track takes the next free one.
                let next_id = engine.catalog().len();
                fields.entry("track").or_insert_with(|| json!(next_id));
            }
            let track: Track = serde_json::from_value(record).map_err(invalid)?;
            let expected = engine.catalog().len();
            if track.track as usize != expected {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "track_id_taken",
                    format!(
                        "track id {} is not the next free id; track ids are contiguous, use {expected}",
                        track.track
                    ),
                ));
            }
            let id = track.track;
            doc.tracks.push(track);
            Ok(id)
        })
        .await
        .map_err(change_error)?;
    let similar = state.engine.similar(id, 10).unwrap_or_default();
    Ok(HttpResponse::Created().json(json!({"track": id, "similar": similar})))
}

async fn get_filters(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    authorize(&state, &req).await?;
    Ok(HttpResponse::Ok().json(&*state.engine.filters()))
}

async fn put_filters(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    authorize(&state, &req).await?;
    let body = input::read_body(body, input::MAX_ADMIN_BODY_BYTES).await?;
    let filters: Filters = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_filters",
            format!("{e}; expected {{\"blocked_tracks\": [..], \"blocked_artists\": [..], \"promoted_tracks\": [..], \"promote_rate\": 0.1}}"),
        )
    })?;
    filters
        .validate("request body")
        .and_then(|()| filters.check_known(&state.engine.catalog(), "request body"))
        .map_err(|e| ApiError::bad_request("invalid_filters", e.to_string()))?;
    state
        .control
        .change(|doc, _| {
            doc.filters = filters.clone();
            Ok::<_, ApiError>(())
        })
        .await
        .map_err(change_error)?;
    Ok(HttpResponse::Ok().json(&*state.engine.filters()))
}

/// A refused edit is its own answer; a store that cannot take the change
/// is a 409: nothing changed, and the operator may retry.
fn change_error(err: ChangeError<ApiError>) -> ApiError {
    match err {
        ChangeError::Rejected(refusal) => refusal,
        ChangeError::Unavailable(err) => ApiError::new(
            StatusCode::CONFLICT,
            "control_plane_unavailable",
            format!("{err}; nothing was changed, retry once the control plane store answers"),
        ),
    }
}
