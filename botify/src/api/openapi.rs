//! The OpenAPI 3 description of every route, generated from the code: each
//! handler's `#[utoipa::path]`, the answer, request and error types'
//! `ToSchema` derives, and the parameters below. Served at
//! `GET /openapi.json`; Schemathesis checks the live server against it
//! (`botify/tests/openapi_contract.rs`).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, Required};
use utoipa::{IntoParams, Modify, OpenApi};

use super::answers::{
    AddedTrack, HealthAnswer, HealthStatus, LastAnswer, ModelsHealth, NewTrack, NextAnswer,
    ReloadAnswer, RootAnswer, SearchAnswer, SimilarAnswer, StoreHealth, TableSize, TopAnswer,
    UserAnswer,
};
use super::input::{Listen, MAX_K};
use super::ErrorBody;
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
        super::next,
        super::last,
        super::listener::user,
        super::track,
        super::similar,
        super::top,
        super::listener::search,
        super::root,
        super::health,
        super::metrics,
        serve,
        super::player::page,
        super::player::script,
        super::player::style,
        super::admin::reload,
        super::admin::add_track,
        super::admin::get_filters,
        super::admin::put_filters,
    ),
    components(schemas(
        TrackIdSchema, Listen, NextAnswer, LastAnswer, UserAnswer, Track, SimilarAnswer, TopAnswer, SearchAnswer,
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
    }
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
pub(super) async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec_json())
}

/// A user id: a decimal u64. Without a `format` (int64 would cap it at
/// 2^63 − 1) and with its exact bounds, so a client generating ids from
/// the description stays in what the server accepts.
pub fn user_id_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .minimum(Some(0))
        .maximum(Some(u64::MAX))
        .description(Some("A user id: a non-negative integer that fits 64 bits"))
        .build()
}

fn k_schema(default: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .minimum(Some(1))
        .maximum(Some(MAX_K))
        .default(Some(default.into()))
        .build()
}

fn parameter(
    name: &str,
    location: ParameterIn,
    required: bool,
    description: &str,
    schema: Schema,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// `{user}` in a path.
pub enum UserPath {}

impl IntoParams for UserPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "user",
            ParameterIn::Path,
            true,
            "The listener's id, a non-negative integer (u64)",
            Schema::Object(user_id_schema()),
        )]
    }
}

/// `{track}` in a path.
pub enum TrackPath {}

impl IntoParams for TrackPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter(
            "track",
            ParameterIn::Path,
            true,
            "A track id, a non-negative integer (u32)",
            Schema::Object(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Integer))
                    .minimum(Some(0))
                    .maximum(Some(u32::MAX))
                    .build(),
            ),
        )]
    }
}

/// The `k` query parameter, with the default of each route.
fn k_param(default: usize) -> Vec<Parameter> {
    vec![parameter(
        "k",
        ParameterIn::Query,
        false,
        "How many tracks to answer at most",
        Schema::Object(k_schema(default)),
    )]
}

/// `k` of `/similar` and `/tracks` (default 10).
pub enum KParam {}

impl IntoParams for KParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        k_param(10)
    }
}

/// `k` of `/top` (default 5).
pub enum TopK {}

impl IntoParams for TopK {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        k_param(5)
    }
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
