//! The HTTP API (docs/api.md), on actix-web.
//!
//! Handlers are thin: parse and validate input (`input`), call the
//! [`Engine`](crate::engine::Engine), shape the JSON (`answers`). Every
//! failure is an [`ApiError`] with a 4xx status; nothing here returns a 5xx.
//! Each handler carries its OpenAPI description (`#[utoipa::path]`),
//! gathered in `openapi`.

mod admin;
mod answers;
mod app_state;
mod error;
mod input;
mod metrics_middleware;
mod next;
mod openapi;
mod operations;
mod parameters;
mod player;
mod routes;
mod tracks;
mod users;

pub use app_state::AppState;
pub use error::{ApiError, ErrorBody};
pub use metrics_middleware::record_request;
pub use routes::not_found;

use actix_web::web;

use self::routes::{resource, SIMILAR, TRACK, USER};

/// Registers every route on an actix app. `/next` and `/last` come first:
/// the router tries patterns in order, and they carry nearly all traffic.
/// They are matched as static prefixes and their `{user}` is parsed by the
/// handler: a `{user}` pattern costs two regex runs per request in
/// actix-router, about 3% of the service's CPU under load.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/next").default_service(web::to(next::next)))
        .service(web::scope("/last").default_service(web::to(next::last)))
        .service(resource("/", "GET").route(web::get().to(operations::root)))
        .service(resource(TRACK, "GET").route(web::get().to(tracks::track)))
        .service(resource(SIMILAR, "GET").route(web::get().to(tracks::similar)))
        .service(resource("/top", "GET").route(web::get().to(tracks::top)))
        .service(resource("/tracks", "GET").route(web::get().to(tracks::search)))
        .service(resource(USER, "GET").route(web::get().to(users::user)))
        .service(resource("/metrics", "GET").route(web::get().to(operations::metrics)))
        .service(resource("/health", "GET").route(web::get().to(operations::health)))
        .service(resource("/ready", "GET").route(web::get().to(operations::ready)))
        .service(resource("/openapi.json", "GET").route(web::get().to(openapi::serve)));
    player::configure(cfg);
    admin::configure(cfg);
}
