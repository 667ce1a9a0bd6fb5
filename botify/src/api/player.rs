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

/// A handler answering one compiled-in asset, with its `#[utoipa::path]`:
/// the three differ only in path, summary, what the body is and its
/// content type (served as UTF-8).
macro_rules! asset_route {
    (
        $handler:ident: $path:tt, $content_type:tt, $body:expr,
        summary = $summary:tt, $(description = $description:tt,)? response = $response:tt
    ) => {
        #[utoipa::path(
            get,
            path = $path,
            tag = "player",
            summary = $summary,
            $(description = $description,)?
            responses((status = 200, description = $response, body = String, content_type = $content_type))
        )]
        pub(super) async fn $handler() -> HttpResponse {
            asset(concat!($content_type, "; charset=utf-8"), $body)
        }
    };
}

asset_route!(
    page: "/player", "text/html", PAGE,
    summary = "The web player",
    description = "A single page: pick a user and a first track, play a session with a simulated playback bar, see the user's arm and recommender, the top tracks and similar tracks.",
    response = "The page"
);
asset_route!(
    script: "/player/app.js", "text/javascript", SCRIPT,
    summary = "The web player's script",
    response = "JavaScript"
);
asset_route!(
    style: "/player/style.css", "text/css", STYLE,
    summary = "The web player's style sheet",
    response = "CSS"
);
