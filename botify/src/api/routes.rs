//! Route patterns and what answers outside them: a JSON 405 on a known
//! path with another method, a JSON 404 on an unknown path, and the
//! metrics label each request path is counted under.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use super::error::{ApiError, Reply};

/// Route patterns, shared by the router and the metrics labels.
pub const NEXT: &str = "/next/{user}";
pub const LAST: &str = "/last/{user}";
pub const TRACK: &str = "/track/{track}";
pub const SIMILAR: &str = "/similar/{track}";
pub const USER: &str = "/user/{user}";

/// The metrics label of a request path: its route pattern. Computed from the
/// first segment rather than with `match_pattern()`, which would run the
/// router's regexes a second time on every request.
pub fn route_label(path: &str) -> &'static str {
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
        ("ready", false) => "/ready",
        ("admin", _) => "/admin",
        _ => "unmatched",
    }
}

/// A resource that answers a method other than `allow` (comma-separated)
/// with a JSON 405 naming the allowed ones.
pub fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Reply::Err(method_not_allowed(&req, allow))
    }))
}

/// The 405 for `req`, on a resource that answers `allow`.
pub fn method_not_allowed(req: &HttpRequest, allow: &'static str) -> ApiError {
    ApiError::method_not_allowed(req.method().as_str(), req.path(), allow)
}

/// The app's default service: unknown routes get a JSON 404.
pub async fn not_found(req: HttpRequest) -> Reply {
    Err(not_found_error(&req))
}

/// The 404 of a request no route serves; it lists the public routes.
pub fn not_found_error(req: &HttpRequest) -> ApiError {
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
