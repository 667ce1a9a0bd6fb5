//! The OpenAPI parameters, and the one schema the derives cannot describe
//! exactly: ids and `k` with their real bounds and defaults, shared by the
//! handlers that take them and the answers that carry a user id.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Object, Required};
use utoipa::IntoParams;

use super::input::MAX_K;
use crate::catalog::unsigned_id_schema;

/// A user id: a decimal u64. Without a `format` (int64 would cap it at
/// 2^63 − 1) and with its exact bounds, so a client generating ids from
/// the description stays in what the server accepts.
pub fn user_id_schema() -> Object {
    unsigned_id_schema("user", u64::MAX).build()
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
