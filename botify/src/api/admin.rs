//! The admin API: reload models, add tracks, read and replace filters.
//!
//! Guarded by a bearer token from configuration. Without a configured token
//! the routes do not exist (404), so a deployment cannot expose them by
//! accident; a wrong or missing token is a 401 and changes nothing.
//! [`TokenGuard`] adds those answers and the security scheme to every
//! `/admin` route of the OpenAPI description, so each route's
//! `#[utoipa::path]` describes only its own answers.
//!
//! Changes go through the control plane (`control/`), so every replica
//! serves them and they survive restarts. When its store cannot take a
//! change, the answer is a 409 `control_plane_unavailable` and nothing
//! changed anywhere.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::Modify;

use super::answers::{AddedTrack, NewTrack, ReloadAnswer, TableSize};
use super::app_state::AppState;
use super::error::{ApiError, ErrorBody, Reply};
use super::input;
use super::routes::{method_not_allowed, not_found_error};
use crate::control::{ChangeError, ControlDoc};
use crate::engine::Engine;
use crate::filters::Filters;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .service(resource("/reload", "POST").route(web::post().to(reload)))
            .service(resource("/tracks", "POST").route(web::post().to(add_track)))
            .service(
                resource("/filters", "GET, PUT")
                    .route(web::get().to(get_filters))
                    .route(web::put().to(put_filters)),
            )
            .default_service(web::to(admin_not_found)),
    );
}

/// An admin resource: a method other than `allow` gets a 405 naming the
/// allowed ones, after the token check like everything under `/admin`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(
        move |state: web::Data<AppState>, req: HttpRequest| async move {
            authorize(&state, &req)?;
            Reply::Err(method_not_allowed(&req, allow))
        },
    ))
}

/// Checks the bearer token. `Err` is the answer to send instead.
fn authorize(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(not_found_error(req));
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

/// The body of an admin request, once its token checks out, as a `T`. A
/// body that is not a `T` is a 400 `code` naming the `expected` shape: the
/// token comes first so an unauthorized caller learns nothing from the body.
async fn authorized_body<T: DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    body: web::Payload,
    code: &'static str,
    expected: &str,
) -> Result<T, ApiError> {
    authorize(state, req)?;
    let body = input::read_body(body, input::MAX_ADMIN_BODY_BYTES).await?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(code, format!("{e}; expected {expected}")))
}

/// Makes `edit` through the control plane. A refused edit is its own
/// answer; a store that cannot take the change is a 409 whose message ends
/// with `aftermath` (what that left changed, and what to do).
async fn change<T>(
    state: &AppState,
    edit: impl Fn(&mut ControlDoc, &Engine) -> Result<T, ApiError>,
    aftermath: &str,
) -> Result<T, ApiError> {
    state.control.change(edit).await.map_err(|err| match err {
        ChangeError::Rejected(refusal) => refusal,
        ChangeError::Unavailable(err) => ApiError::new(
            StatusCode::CONFLICT,
            "control_plane_unavailable",
            format!("{err}; {aftermath}"),
        ),
    })
}

/// What a failed change leaves when nothing else happened first.
const NOTHING_CHANGED: &str = "nothing was changed, retry once the control plane store answers";

async fn admin_not_found(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    authorize(&state, &req)?;
    Err(not_found_error(&req))
}

/// The security scheme the admin routes name.
pub const ADMIN_TOKEN: &str = "admin_token";

/// The token guard in the API description, written once as [`authorize`]
/// is: the bearer scheme, named by every `/admin` operation, and what the
/// guard answers on each (401 for a missing or wrong token; 404 when no
/// token is configured, unless the route describes a 404 of its own).
pub struct TokenGuard;

impl Modify for TokenGuard {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token given to botify with --admin-token / BOTIFY_ADMIN_TOKEN",
                    ))
                    .build(),
            ),
        );
        let admin_routes = openapi
            .paths
            .paths
            .iter_mut()
            .filter(|(path, _)| path.starts_with("/admin/"));
        for (_, route) in admin_routes {
            let operations = [&mut route.get, &mut route.put, &mut route.post];
            for operation in operations.into_iter().flatten() {
                operation.security = Some(vec![SecurityRequirement::new(
                    ADMIN_TOKEN,
                    Vec::<String>::new(),
                )]);
                let responses = &mut operation.responses.responses;
                responses.insert(
                    "401".into(),
                    ErrorBody::described("`unauthorized`: missing or wrong bearer token"),
                );
                responses.entry("404".into()).or_insert_with(|| {
                    ErrorBody::described("`not_found`: no admin token is configured")
                });
            }
        }
    }
}

#[utoipa::path(
    post,
    path = "/admin/reload",
    tag = "admin",
    summary = "Reload the trained models",
    description = "Reloads every model file from --models and swaps them in atomically; requests in flight finish on the old models.",
    responses(
        (status = 200, description = "The models now serving", body = ReloadAnswer),
        (status = 409, description = "`shutting_down`: the server is stopping", body = ErrorBody),
        (status = 422, description = "`invalid_models`: a model file is corrupt; the previous models keep serving", body = ErrorBody),
    )
)]
pub async fn reload(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    authorize(&state, &req)?;
    let engine = state.engine.clone();
    let loaded = web::block(move || engine.reload_models())
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "shutting_down", e.to_string()))?;
    match loaded {
        Ok(models) => {
            // Every replica follows the version this one now serves.
            let version = models.version.clone();
            change(
                &state,
                |doc, _| {
                    doc.models_version = version.clone();
                    Ok(())
                },
                "the models were reloaded on this replica only, retry to reach every replica",
            )
            .await?;
            let mut tables: Vec<_> = models
                .tables
                .iter()
                .map(|(name, t)| TableSize {
                    name: name.clone(),
                    tracks: t.len(),
                })
                .collect();
            tables.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(HttpResponse::Ok().json(ReloadAnswer {
                reloaded: true,
                model_version: models.version.clone(),
                top_tracks: models.top_tracks.as_ref().map(Vec::len),
                tables,
            }))
        }
        Err(err) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_models",
            format!("{err}; the previous models keep serving"),
        )),
    }
}

#[utoipa::path(
    post,
    path = "/admin/tracks",
    tag = "admin",
    summary = "Add a track to the catalog",
    description = "The track is servable at once. Lost on restart: add it to tracks.jsonl too.",
    request_body(content = NewTrack, content_type = "application/json"),
    responses(
        (status = 201, description = "The new track's id and its metadata neighbours", body = AddedTrack),
        (status = 400, description = "`invalid_track_record`, `invalid_body`", body = ErrorBody),
        (status = 409, description = "`track_id_taken`: an explicit id that is not the next free one", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over 1 MiB", body = ErrorBody),
    )
)]
pub async fn add_track(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Reply {
    let record: NewTrack = authorized_body(
        &state,
        &req,
        body,
        "invalid_track_record",
        r#"{"artist": "...", "title": "...", "genre": "..."} ("track" optional: the next free id)"#,
    )
    .await?;
    let id = change(
        &state,
        |doc, engine| {
            let expected = engine.catalog().len() as crate::catalog::TrackId;
            let track = record.clone().into_track(expected);
            if track.track != expected {
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
        },
        NOTHING_CHANGED,
    )
    .await?;
    let similar = state.engine.similar(id, 10).unwrap_or_default();
    Ok(HttpResponse::Created().json(AddedTrack { track: id, similar }))
}

#[utoipa::path(
    get,
    path = "/admin/filters",
    tag = "admin",
    summary = "The current filters",
    responses(
        (status = 200, description = "Blocked and promoted tracks", body = Filters),
    )
)]
pub async fn get_filters(state: web::Data<AppState>, req: HttpRequest) -> Reply {
    authorize(&state, &req)?;
    Ok(HttpResponse::Ok().json(&*state.engine.filters()))
}

#[utoipa::path(
    put,
    path = "/admin/filters",
    tag = "admin",
    summary = "Replace the filters",
    description = "Every field is optional (empty or 0 by default). Nothing changes unless the whole body is accepted.",
    request_body(content = Filters, content_type = "application/json"),
    responses(
        (status = 200, description = "The new filters", body = Filters),
        (status = 400, description = "`invalid_filters`: not filters (a wrong type, an unknown field, promote_rate outside 0..=1); `invalid_body`", body = ErrorBody),
        (status = 404, description = "`not_found`: no admin token is configured; `unknown_filter_entries`: track ids or artist names the catalog does not have, all named", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over 1 MiB", body = ErrorBody),
    )
)]
pub async fn put_filters(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Reply {
    let filters: Filters = authorized_body(
        &state,
        &req,
        body,
        "invalid_filters",
        r#"{"blocked_tracks": [..], "blocked_artists": [..], "promoted_tracks": [..], "promote_rate": 0.1}"#,
    )
    .await?;
    filters
        .validate("request body")
        .map_err(|e| ApiError::bad_request("invalid_filters", e.to_string()))?;
    // Well-formed, but naming what does not exist: like an unknown track on
    // `/next`, a 404.
    filters
        .check_known(&state.engine.catalog(), "request body")
        .map_err(|e| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_filter_entries",
                e.to_string(),
            )
        })?;
    change(
        &state,
        |doc, _| {
            doc.filters = filters.clone();
            Ok(())
        },
        NOTHING_CHANGED,
    )
    .await?;
    Ok(HttpResponse::Ok().json(&*state.engine.filters()))
}
