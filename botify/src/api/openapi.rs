//! The OpenAPI 3 description of every route, generated from the code: each
//! handler's `#[utoipa::path]`, the answer, request and error types'
//! `ToSchema` derives, and the parameters below. Served at
//! `GET /openapi.json`; Schemathesis checks the live server against it
//! (`botify/tests/openapi_contract.rs`).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::admin::TokenGuard;
use super::answers::{
    AddedTrack, HealthAnswer, HealthStatus, LastAnswer, ModelsHealth, NewTrack, NextAnswer,
    ReloadAnswer, RootAnswer, SearchAnswer, SimilarAnswer, StoreHealth, TableSize, TopAnswer,
    UserAnswer,
};
use super::error::ErrorBody;
use super::input::ListenBody;
use super::next::ListenRefusals;
use super::operations::ReadyAnswer;
use super::{admin, next, operations, player, tracks, users};
use crate::catalog::{Track, TrackIdSchema};
use crate::filters::Filters;
use crate::readiness::ReadyStatus;

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
        operations::ready,
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
        NewTrack, AddedTrack, Filters, ErrorBody, ReadyAnswer, ReadyStatus,
    )),
    modifiers(&TokenGuard, &ListenRefusals),
    tags(
        (name = "listen", description = "A listening session: /next after each track, /last when the listener leaves"),
        (name = "catalog", description = "Tracks, search and cold-start lists"),
        (name = "player", description = "The web player: a page and its assets, embedded in the binary"),
        (name = "operations", description = "Liveness, readiness, metrics, this description"),
        (name = "admin", description = "Hot changes, guarded by the bearer token of --admin-token; without one configured they answer 404"),
    )
)]
pub struct ApiDoc;

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
    use crate::api::admin::ADMIN_TOKEN;

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
            ("/ready", "get"),
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

    #[test]
    fn next_answers_carry_a_required_propensity_in_zero_to_one() {
        let spec: serde_json::Value = serde_json::from_str(spec_json()).unwrap();
        let answer = &spec["components"]["schemas"]["NextAnswer"];
        let propensity = &answer["properties"]["propensity"];
        assert_eq!(propensity["exclusiveMinimum"], 0, "{answer}");
        assert_eq!(propensity["maximum"], 1, "{answer}");
        let required = answer["required"].as_array().unwrap();
        assert!(required.contains(&"propensity".into()), "{answer}");
    }
}
