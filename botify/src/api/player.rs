//! The web player at `GET /player`: a single page for people to try botify
//! in a browser. Its HTML, script and style are compiled into the binary
//! (`include_str!`), so it needs no CDN, no build step and no files next to
//! the binary; the page talks to the same public routes as any client.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::routes::resource;

const PAGE: &str = include_str!("player/index.html");
const SCRIPT: &str = include_str!("player/app.js");
const STYLE: &str = include_str!("player/style.css");

/// The page may load only what this server serves.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/player", "GET").route(web::get().to(page)))
        .service(resource("/player/app.js", "GET").route(web::get().to(script)))
        .service(resource("/player/style.css", "GET").route(web::get().to(style)));
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // The assets change with the binary, never under a running one, but a
        // redeploy must not be hidden behind a stale copy.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

#[utoipa::path(
    get,
    path = "/player",
    tag = "player",
    summary = "The web player",
    description = "A single page: pick a user and a first track, play a session with a simulated playback bar, see the user's arm and recommender, the top tracks and similar tracks.",
    responses((status = 200, description = "The page", body = String, content_type = "text/html"))
)]
pub(super) async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

#[utoipa::path(
    get,
    path = "/player/app.js",
    tag = "player",
    summary = "The web player's script",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript"))
)]
pub(super) async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

#[utoipa::path(
    get,
    path = "/player/style.css",
    tag = "player",
    summary = "The web player's style sheet",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css"))
)]
pub(super) async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}
