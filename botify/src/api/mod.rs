//! The HTTP API (docs/api.md), on actix-web.
//!
//! Handlers are thin: parse and validate input (`input`), call the
//! [`Engine`], shape the JSON. Every failure is an [`ApiError`] with a 4xx
//! status; nothing here returns a 5xx.

mod admin;
mod error;
mod input;

pub use error::ApiError;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::control::Control;
use crate::engine::Engine;
use crate::events::LogCounters;

/// What every handler can reach.
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The control plane admin changes go through.
    pub control: Arc<Control>,
    /// Bearer token for `/admin`; `None` disables the admin routes.
    pub admin_token: Option<String>,
    /// Event log counters, exported on `/metrics`.
    pub log_counters: Option<Arc<LogCounters>>,
}

type Reply = Result<HttpResponse, ApiError>;

/// Route patterns, shared by the router and the metrics labels.
const NEXT: &str = "/next/{user}";
const LAST: &str = "/last/{user}";
const TRACK: &str = "/track/{track}";
const SIMILAR: &str = "/similar/{track}";

/// Registers every route on an actix app. `/next` and `/last` come first:
/// the router tries patterns in order, and they carry nearly all traffic.
/// They are matched as static prefixes and their `{user}` is parsed by
/// [`user_segment`]: a `{user}` pattern costs two regex runs per request in
/// actix-router, about 3% of the service's CPU under load.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/next").default_service(web::to(next)))
        .service(web::scope("/last").default_service(web::to(last)))
        .route("/", web::get().to(root))
        .service(resource(TRACK).route(web::get().to(track)))
        .service(resource(SIMILAR).route(web::get().to(similar)))
        .service(resource("/top").route(web::get().to(top)))
        .service(resource("/metrics").route(web::get().to(metrics)))
        .service(resource("/health").route(web::get().to(health)));
    admin::configure(cfg);
}

/// The metrics label of a request path: its route pattern. Computed from the
/// first segment rather than with `match_pattern()`, which would run the
/// router's regexes a second time on every request.
fn route_label(path: &str) -> &'static str {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let first = segments.next().unwrap_or("");
    let has_id = segments
        .next()
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    match (first, has_id) {
        ("", false) => "/",
        ("next", true) => NEXT,
        ("last", true) => LAST,
        ("track", true) => TRACK,
        ("similar", true) => SIMILAR,
        ("top", false) => "/top",
        ("metrics", false) => "/metrics",
        ("health", false) => "/health",
        ("admin", _) => "/admin",
        _ => "unmatched",
    }
}

/// A resource that answers a wrong method with a JSON 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> Reply {
    Err(method_not_allowed_error(&req))
}

fn method_not_allowed_error(req: &HttpRequest) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not supported on {}", req.method(), req.path()),
    )
}

/// The app's default service: unknown routes get a JSON 404.
pub async fn not_found(req: HttpRequest) -> Reply {
    Err(not_found_error(&req))
}

fn not_found_error(req: &HttpRequest) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {} {}; routes: GET /, GET /track/{{track}}, POST /next/{{user}}, POST /last/{{user}}, GET /similar/{{track}}, GET /top, GET /metrics, GET /health",
            req.method(),
            req.path()
        ),
    )
}

/// Middleware body: counts every request by route pattern and status and
/// times it, and counts 4xx answers by error code.
pub fn record_request<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let route = route_label(req.path());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let started = Instant::now();
    let response = srv.call(req);
    async move {
        let response = response.await?;
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
}

async fn root(state: web::Data<AppState>) -> Reply {
    let arms: Vec<_> = state
        .engine
        .arm_names()
        .into_iter()
        .map(|(label, name)| format!("{label}={name}"))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "status": "alive",
        "message": format!(
            "botify: {} tracks, experiment {} ({}), state in {}",
            state.engine.catalog().len(),
            state.engine.experiments().active,
            arms.join(", "),
            state.engine.store_kind()
        ),
    })))
}

async fn track(state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let id = input::track_id(&path)?;
    let catalog = state.engine.catalog();
    match catalog.get(id) {
        Some(record) => Ok(HttpResponse::Ok().json(record)),
        None => Err(crate::engine::RequestError::UnknownTrack(id).into()),
    }
}

/// The `{user}` of `/next/{user}` or `/last/{user}`, from what the prefix
/// scope left of the path (`/42`). Only POST is served there.
fn user_segment(req: &HttpRequest) -> Result<u64, ApiError> {
    let user = req
        .match_info()
        .unprocessed()
        .strip_prefix('/')
        .filter(|segment| !segment.is_empty() && !segment.contains('/'));
    match user {
        None => Err(not_found_error(req)),
        Some(_) if req.method() != actix_web::http::Method::POST => {
            Err(method_not_allowed_error(req))
        }
        Some(user) => input::user_id(user),
    }
}

#[derive(serde::Serialize)]
struct NextAnswer {
    user: u64,
    track: crate::catalog::TrackId,
}

#[derive(serde::Serialize)]
struct LastAnswer {
    user: u64,
}

async fn next(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let user = user_segment(&req)?;
    let listen = input::listen(&input::read_body(body, input::MAX_BODY_BYTES).await?)?;
    let mut rng = rand::thread_rng();
    let answer = state
        .engine
        .next(user, listen.track, listen.time, &mut rng)
        .await?;
    Ok(HttpResponse::Ok().json(NextAnswer {
        user,
        track: answer.track,
    }))
}

async fn last(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let user = user_segment(&req)?;
    let listen = input::listen(&input::read_body(body, input::MAX_BODY_BYTES).await?)?;
    state.engine.last(user, listen.track, listen.time).await?;
    Ok(HttpResponse::Ok().json(LastAnswer { user }))
}

async fn similar(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Reply {
    let id = input::track_id(&path)?;
    let k = input::k_param(query.get("k"), 10)?;
    let similar = state.engine.similar(id, k)?;
    Ok(HttpResponse::Ok().json(json!({"track": id, "similar": similar})))
}

async fn top(state: web::Data<AppState>, query: web::Query<HashMap<String, String>>) -> Reply {
    let k = input::k_param(query.get("k"), 5)?;
    let genre = query.get("genre").map(String::as_str);
    if let Some(genre) = genre {
        let catalog = state.engine.catalog();
        if catalog.tracks_of_genre(genre).is_empty() {
            let mut known: Vec<&str> = catalog.genres().collect();
            known.sort();
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_genre",
                format!(
                    "genre {genre:?} is not in the catalog; known: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    let tracks = state.engine.top(genre, k);
    Ok(HttpResponse::Ok().json(json!({"genre": genre, "tracks": tracks})))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let metrics = state.engine.metrics();
    if let Some(counters) = &state.log_counters {
        metrics
            .events_written
            .set(counters.written.load(Ordering::Relaxed) as i64);
        metrics
            .event_write_errors
            .set(counters.write_errors.load(Ordering::Relaxed) as i64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let engine = &state.engine;
    let reachable = engine.store_reachable().await;
    let models = engine.models();
    let mut tables: Vec<_> = models.tables.keys().cloned().collect();
    tables.sort();
    // Degraded still answers 200: the service keeps serving from its
    // fallback, and a load balancer should not pull a replica for that.
    HttpResponse::Ok().json(json!({
        "status": if reachable { "ok" } else { "degraded" },
        "state_store": {"kind": engine.store_kind(), "reachable": reachable},
        "models": {
            "dir": engine.models_dir().display().to_string(),
            "top_tracks": models.top_tracks.is_some(),
            "tables": tables,
        },
        "catalog_tracks": engine.catalog().len(),
        "control_plane": {"version": state.control.version(), "store": state.control.kind()},
        "model_version": models.version,
    }))
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_labels_match_the_router_patterns() {
        assert_eq!(route_label("/next/42"), "/next/{user}");
        assert_eq!(route_label("/last/7"), "/last/{user}");
        assert_eq!(route_label("/track/3"), "/track/{track}");
        assert_eq!(route_label("/similar/3"), "/similar/{track}");
        assert_eq!(route_label("/"), "/");
        assert_eq!(route_label("/top"), "/top");
        assert_eq!(route_label("/admin/reload"), "/admin");
        assert_eq!(route_label("/next/"), "unmatched");
        assert_eq!(route_label("/next/1/2"), "unmatched");
        assert_eq!(route_label("/nothing"), "unmatched");
    }
}
