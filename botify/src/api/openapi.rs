//! The OpenAPI 3 description of every route, generated from the code: each
//! handler's `#[utoipa::path]`, the answer, request and error types'
//! `ToSchema` derives, and the parameters below. Served at
//! `GET /openapi.json`; Schemathesis checks the live server against it
//! (`botify/tests/openapi_contract.rs`).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::answers::{
    AddedTrack, HealthAnswer, HealthStatus, LastAnswer, ModelsHealth, NewTrack, NextAnswer,
    ReloadAnswer, RootAnswer, SearchAnswer, SimilarAnswer, StoreHealth, TableSize, TopAnswer,
    UserAnswer,
};
use super::error::ErrorBody;
use super::input::ListenBody;
use super::{admin, next, operations, player, tracks, users};
use crate::catalog::{Track, TrackIdSchema};
use crate::filters::Filters;

/// The API description. Paths are listed here; everything they mention is
/// collected from their annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "botify",
        description = "A music recommender whose only goal is to keep a listener listening. The client protocol, error codes and guarantees are in docs/api.md.",
    ),
    paths(
        next::next,
        next::last,
        users::user,
        tracks::track,
        tracks::similar,
        tracks::top,
        tracks::search,
        operations::root,
        operations::health,
        operations::metrics,
        serve,
        player::page,
        player::script,
        player::style,
        admin::reload,
        admin::add_track,
        admin::get_filters,
        admin::put_filters,
    ),
    components(schemas(
        TrackIdSchema, ListenBody, NextAnswer, LastAnswer, UserAnswer, Track, SimilarAnswer, TopAnswer, SearchAnswer,
        RootAnswer, HealthAnswer, HealthStatus, StoreHealth, ModelsHealth, ReloadAnswer, TableSize,
        NewTrack, AddedTrack, Filters, ErrorBody,
    )),
    modifiers(&AdminToken),
    tags(
        (name = "listen", description = "A listening session: /next after each track, /last when the listener leaves"),
        (name = "catalog", description = "Tracks, search and cold-start lists"),
        (name = "player", description = "The web player: a page and its assets, embedded in the binary"),
        (name = "operations", description = "Liveness, readiness, metrics, this description"),
        (name = "admin", description = "Hot changes, guarded by the bearer token of --admin-token; without one configured they answer 404"),
    )
)]
pub struct ApiDoc;

/// The security scheme the admin routes name.
pub const ADMIN_TOKEN: &str = "admin_token";

/// The admin routes' token guard, described once as `admin.rs` enforces it
/// once: the bearer scheme, named by every `/admin` operation, and what the
/// guard answers on each (401 for a missing or wrong token; 404 when no
/// token is configured, unless the route describes a 404 of its own).
struct AdminToken;

impl Modify for AdminToken {
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
                    error_response("`unauthorized`: missing or wrong bearer token"),
                );
                responses
                    .entry("404".into())
                    .or_insert_with(|| error_response("`not_found`: no admin token is configured"));
            }
        }
    }
}

/// A 4xx answer: an [`ErrorBody`].
fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .into()
}

/// The description as JSON, built once.
pub fn spec_json() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI description serializes")
    })
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This description (OpenAPI 3)",
    responses((status = 200, description = "The OpenAPI document", body = serde_json::Value, content_type = "application/json"))
)]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described() {
        let spec: serde_json::Value = serde_json::from_str(spec_json()).unwrap();
        let paths = spec["paths"].as_object().unwrap();
        for (path, method) in [
            ("/next/{user}", "post"),
            ("/last/{user}", "post"),
            ("/user/{user}", "get"),
            ("/track/{track}", "get"),
            ("/similar/{track}", "get"),
            ("/top", "get"),
            ("/tracks", "get"),
            ("/", "get"),
            ("/health", "get"),
            ("/metrics", "get"),
            ("/openapi.json", "get"),
            ("/player", "get"),
            ("/player/app.js", "get"),
            ("/player/style.css", "get"),
            ("/admin/reload", "post"),
            ("/admin/tracks", "post"),
            ("/admin/filters", "get"),
            ("/admin/filters", "put"),
        ] {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} is not described"
            );
        }
        assert_eq!(
            spec["paths"]["/admin/reload"]["post"]["security"][0][ADMIN_TOKEN],
            serde_json::json!([])
        );
        assert_eq!(
            spec["components"]["securitySchemes"][ADMIN_TOKEN]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn user_ids_are_described_with_their_exact_bounds() {
        let spec: serde_json::Value = serde_json::from_str(spec_json()).unwrap();
        let schema = &spec["paths"]["/next/{user}"]["post"]["parameters"][0]["schema"];
        assert_eq!(schema["maximum"].as_u64(), Some(u64::MAX), "{schema}");
        assert!(schema.get("format").is_none(), "{schema}");
    }
}
