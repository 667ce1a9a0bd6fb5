//! The HTTP API (docs/api.md), on actix-web.
//!
//! Handlers are thin: parse and validate input (`input`), call the
//! [`Engine`], shape the JSON (`answers`). Every failure is an [`ApiError`]
//! with a 4xx status; nothing here returns a 5xx. Each handler carries its
//! OpenAPI description (`#[utoipa::path]`), gathered in `openapi`.

mod admin;
mod answers;
mod error;
mod input;
mod listener;
mod openapi;
mod player;

pub use error::{ApiError, ErrorBody};

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use self::answers::{
    ControlPlaneHealth, HealthAnswer, HealthStatus, LastAnswer, ModelsHealth, NextAnswer,
    RootAnswer, SimilarAnswer, StoreHealth, TopAnswer,
};
use self::input::Listen;
use crate::catalog::Track;
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
    /// Whether events take their time from the `X-Simulated-Time` header
    /// (`--simulated-clock`, a test mode for simulations).
    pub simulated_clock: bool,
}

type Reply = Result<HttpResponse, ApiError>;

/// Route patterns, shared by the router and the metrics labels.
const NEXT: &str = "/next/{user}";
const LAST: &str = "/last/{user}";
const TRACK: &str = "/track/{track}";
const SIMILAR: &str = "/similar/{track}";
const USER: &str = "/user/{user}";

/// Registers every route on an actix app. `/next` and `/last` come first:
/// the router tries patterns in order, and they carry nearly all traffic.
/// They are matched as static prefixes and their `{user}` is parsed by
/// [`user_segment`]: a `{user}` pattern costs two regex runs per request in
/// actix-router, about 3% of the service's CPU under load.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/next").default_service(web::to(next)))
        .service(web::scope("/last").default_service(web::to(last)))
        .service(resource("/", "GET").route(web::get().to(root)))
        .service(resource(TRACK, "GET").route(web::get().to(track)))
        .service(resource(SIMILAR, "GET").route(web::get().to(similar)))
        .service(resource("/top", "GET").route(web::get().to(top)))
        .service(resource("/tracks", "GET").route(web::get().to(listener::search)))
        .service(resource(USER, "GET").route(web::get().to(listener::user)))
        .service(resource("/metrics", "GET").route(web::get().to(metrics)))
        .service(resource("/health", "GET").route(web::get().to(health)))
        .service(resource("/openapi.json", "GET").route(web::get().to(openapi::serve)));
    player::configure(cfg);
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
        ("user", true) => USER,
        ("top", false) => "/top",
        ("tracks", false) => "/tracks",
        ("openapi.json", false) => "/openapi.json",
        ("player", _) => "/player",
        ("metrics", false) => "/metrics",
        ("health", false) => "/health",
        ("admin", _) => "/admin",
        _ => "unmatched",
    }
}

/// A resource that answers a method other than `allow` (comma-separated)
/// with a JSON 405 naming the allowed ones.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Reply::Err(ApiError::method_not_allowed(
            req.method().as_str(),
            req.path(),
            allow,
        ))
    }))
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
            "no route {} {}; routes: GET /, GET /track/{{track}}, POST /next/{{user}}, POST /last/{{user}}, GET /similar/{{track}}, GET /top, GET /tracks?q=, GET /user/{{user}}, GET /player, GET /openapi.json, GET /metrics, GET /health",
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

#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "The service is up", body = RootAnswer))
)]
async fn root(state: web::Data<AppState>) -> Reply {
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
    path = "/track/{track}",
    tag = "catalog",
    summary = "A track's catalog record",
    params(openapi::TrackPath),
    responses(
        (status = 200, description = "The catalog record", body = Track),
        (status = 400, description = "`invalid_track`: the id is not a non-negative 32-bit integer", body = ErrorBody),
        (status = 404, description = "`unknown_track`: no such track; `not_found`: no track id in the path", body = ErrorBody),
    )
)]
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
        Some(_) if req.method() != actix_web::http::Method::POST => Err(
            ApiError::method_not_allowed(req.method().as_str(), req.path(), "POST"),
        ),
        Some(user) => input::user_id(user),
    }
}

#[utoipa::path(
    post,
    path = "/next/{user}",
    tag = "listen",
    summary = "Report a listen, get the next track",
    description = "The listener heard `time` of `track` (the first track of a session: the listener's pick, with `time` 1.0); botify records it and answers the track to play next. docs/api.md#client-protocol.",
    params(openapi::UserPath),
    request_body(content = Listen, content_type = "application/json"),
    responses(
        (status = 200, description = "The track to play next", body = NextAnswer),
        (status = 400, description = "`malformed_json`, `wrong_type`, `missing_field`, `invalid_time`, `invalid_user`, `invalid_body`", body = ErrorBody),
        (status = 404, description = "`unknown_track`: the track is not in the catalog; `not_found`: no user id in the path", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over 4096 bytes", body = ErrorBody),
    )
)]
async fn next(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let user = user_segment(&req)?;
    let at = input::simulated_time(&req, state.simulated_clock)?;
    let listen = input::listen(&input::read_body(body, input::MAX_BODY_BYTES).await?)?;
    let mut rng = rand::thread_rng();
    let answer = state
        .engine
        .next_at(user, listen.track, listen.time, at, &mut rng)
        .await?;
    Ok(HttpResponse::Ok().json(NextAnswer {
        user,
        track: answer.track,
    }))
}

#[utoipa::path(
    post,
    path = "/last/{user}",
    tag = "listen",
    summary = "Report the last listen: the session ends",
    description = "Sent instead of `/next` when the listener leaves: records the final listen and forgets the session.",
    params(openapi::UserPath),
    request_body(content = Listen, content_type = "application/json"),
    responses(
        (status = 200, description = "The session is over", body = LastAnswer),
        (status = 400, description = "`malformed_json`, `wrong_type`, `missing_field`, `invalid_time`, `invalid_user`, `invalid_body`", body = ErrorBody),
        (status = 404, description = "`unknown_track`: the track is not in the catalog; `not_found`: no user id in the path", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over 4096 bytes", body = ErrorBody),
    )
)]
async fn last(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let user = user_segment(&req)?;
    let at = input::simulated_time(&req, state.simulated_clock)?;
    let listen = input::listen(&input::read_body(body, input::MAX_BODY_BYTES).await?)?;
    state
        .engine
        .last_at(user, listen.track, listen.time, at)
        .await?;
    Ok(HttpResponse::Ok().json(LastAnswer { user }))
}

#[utoipa::path(
    get,
    path = "/similar/{track}",
    tag = "catalog",
    summary = "Tracks like this one",
    description = "The trained item-to-item neighbours first, then the same artist's and the same genre's tracks by popularity; never the track itself or a blocked track.",
    params(openapi::TrackPath, openapi::KParam),
    responses(
        (status = 200, description = "Up to `k` similar tracks", body = SimilarAnswer),
        (status = 400, description = "`invalid_track`, `invalid_k`, `invalid_query`", body = ErrorBody),
        (status = 404, description = "`unknown_track`: no such track; `not_found`: no track id in the path", body = ErrorBody),
    )
)]
async fn similar(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Reply {
    let id = input::track_id(&path)?;
    let k = input::k_param(query.get("k"), 10)?;
    let similar = state.engine.similar(id, k)?;
    Ok(HttpResponse::Ok().json(SimilarAnswer { track: id, similar }))
}

#[utoipa::path(
    get,
    path = "/top",
    tag = "catalog",
    summary = "The most popular tracks, optionally of one genre",
    params(
        ("genre" = Option<String>, Query, description = "Only tracks of this genre; an unknown genre is a 404 that lists the known ones"),
        openapi::TopK,
    ),
    responses(
        (status = 200, description = "Up to `k` tracks, most popular first", body = TopAnswer),
        (status = 400, description = "`invalid_k`, `invalid_query`", body = ErrorBody),
        (status = 404, description = "`unknown_genre`", body = ErrorBody),
    )
)]
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
    Ok(HttpResponse::Ok().json(TopAnswer {
        genre: genre.map(str::to_string),
        tracks,
    }))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4 (docs/api.md#operations names the metrics)", body = String, content_type = "text/plain"))
)]
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

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Readiness",
    description = "Always 200: a degraded replica (state store unreachable) still serves from its fallback.",
    responses((status = 200, description = "What the replica serves from", body = HealthAnswer))
)]
async fn health(state: web::Data<AppState>) -> HttpResponse {
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
        assert_eq!(route_label("/tracks"), "/tracks");
        assert_eq!(route_label("/user/5"), "/user/{user}");
        assert_eq!(route_label("/player"), "/player");
        assert_eq!(route_label("/player/app.js"), "/player");
        assert_eq!(route_label("/openapi.json"), "/openapi.json");
        assert_eq!(route_label("/admin/reload"), "/admin");
        assert_eq!(route_label("/next/"), "unmatched");
        assert_eq!(route_label("/next/1/2"), "unmatched");
        assert_eq!(route_label("/nothing"), "unmatched");
    }
}
