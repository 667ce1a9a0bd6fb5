//! Parsing and validating what clients send: path ids, query parameters and
//! the listen body. Each failure says what was wrong and what is expected.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::catalog::{TrackId, TrackIdSchema};

/// Listen bodies are two small numbers; anything bigger is a client bug or abuse.
pub const MAX_BODY_BYTES: usize = 4096;
/// Admin bodies carry filter lists and track records.
pub const MAX_ADMIN_BODY_BYTES: usize = 1 << 20;

/// A `{user}` path segment.
pub fn user_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| {
        ApiError::bad_request(
            "invalid_user",
            format!("user id {raw:?} is not a non-negative integer; expected e.g. /next/42"),
        )
    })
}

/// A `{track}` path segment.
pub fn track_id(raw: &str) -> Result<TrackId, ApiError> {
    raw.parse::<TrackId>().map_err(|_| {
        ApiError::bad_request(
            "invalid_track",
            format!(
                "track id {raw:?} is not a non-negative 32-bit integer; expected e.g. /track/576"
            ),
        )
    })
}

/// Most tracks a list route answers.
pub const MAX_K: usize = 1000;

/// The `k` query parameter: how many tracks to return.
pub fn k_param(raw: Option<&String>, default: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=MAX_K).contains(k))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_k",
                    format!("k={raw:?} must be an integer in 1..={MAX_K}"),
                )
            }),
    }
}

/// The header a simulator stamps its requests with under `--simulated-clock`.
pub const SIMULATED_TIME_HEADER: &str = "x-simulated-time";

/// The event time a request asks for: its `X-Simulated-Time` header when
/// the server runs with `--simulated-clock`, else `None` (the wall clock;
/// the header is then ignored, so a simulator can always send it).
pub fn simulated_time(req: &HttpRequest, enabled: bool) -> Result<Option<u64>, ApiError> {
    if !enabled {
        return Ok(None);
    }
    let Some(value) = req.headers().get(SIMULATED_TIME_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_simulated_time",
                format!(
                    "header X-Simulated-Time {value:?} is not epoch milliseconds; expected e.g. X-Simulated-Time: 1767225600000"
                ),
            )
        })
}

/// Longest search query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// The `q` query parameter of `/tracks`: text to look for in artists and
/// titles, as given (spaces included).
pub fn search_query(raw: Option<&String>) -> Result<String, ApiError> {
    let raw = raw.ok_or_else(|| {
        ApiError::bad_request(
            "missing_query",
            "the query parameter q is missing; expected e.g. /tracks?q=nova (artist or title)",
        )
    })?;
    let chars = raw.chars().count();
    if chars == 0 || chars > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "q={raw:?} must have 1 to {MAX_QUERY_CHARS} characters; expected part of an artist or title"
            ),
        ));
    }
    Ok(raw.clone())
}

// A listen as a client reports it; what the state store keeps of it is
// `crate::state::Listen`. The API description calls it `Listen`. This doc
// comment is its description there.
/// The body of `/next` and `/last`: a listen. Parsed by hand by [`listen`],
/// so each kind of mistake gets its own error code; the derive only
/// documents the shape. Other fields are ignored.
#[derive(Debug, Clone, Copy, PartialEq, ToSchema)]
#[schema(as = Listen, example = json!({"track": 576, "time": 0.8}))]
pub struct ListenBody {
    /// The track listened to: the listener's pick first, then what botify
    /// recommended.
    #[schema(value_type = TrackIdSchema)]
    pub track: TrackId,
    /// The fraction of the track heard, 0.0 (skipped at once) to 1.0 (to
    /// the end).
    #[schema(minimum = 0, maximum = 1)]
    pub time: f64,
}

const LISTEN_SHAPE: &str = r#"expected a JSON object {"track": <track id>, "time": <0.0..=1.0>}"#;

/// Reads the body, refusing more than `limit` bytes.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("invalid_body", format!("could not read the body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a listen body.
pub fn listen(body: &[u8]) -> Result<ListenBody, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON ({e}); {LISTEN_SHAPE}"),
        )
    })?;
    let Value::Object(fields) = value else {
        return Err(ApiError::bad_request(
            "wrong_type",
            format!("the body is JSON but not an object; {LISTEN_SHAPE}"),
        ));
    };
    let field = |name: &str| {
        fields.get(name).ok_or_else(|| {
            ApiError::bad_request(
                "missing_field",
                format!("field {name:?} is missing; {LISTEN_SHAPE}"),
            )
        })
    };
    let track_value = field("track")?;
    let track = track_value
        .as_number()
        .and_then(crate::json_integers::integral::<TrackId>)
        .ok_or_else(|| {
            ApiError::bad_request(
                "wrong_type",
                format!("field \"track\" must be a non-negative 32-bit integer, got {track_value}"),
            )
        })?;
    let time_value = field("time")?;
    let time = time_value.as_f64().ok_or_else(|| {
        ApiError::bad_request(
            "wrong_type",
            format!("field \"time\" must be a number in 0.0..=1.0, got {time_value}"),
        )
    })?;
    Ok(ListenBody { track, time })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> &'static str {
        listen(body.as_bytes()).unwrap_err().code
    }

    #[test]
    fn parses_a_good_body() {
        let l = listen(br#"{"track": 5, "time": 0.25, "extra": true}"#).unwrap();
        assert_eq!(
            l,
            ListenBody {
                track: 5,
                time: 0.25
            }
        );
        assert_eq!(listen(br#"{"track": 5, "time": 1}"#).unwrap().time, 1.0);
        // JSON Schema's integers include 5.0.
        assert_eq!(listen(br#"{"track": 5.0, "time": 1}"#).unwrap().track, 5);
    }

    #[test]
    fn names_each_kind_of_bad_body() {
        assert_eq!(code("{"), "malformed_json");
        assert_eq!(code(""), "malformed_json");
        assert_eq!(code("[1, 2]"), "wrong_type");
        assert_eq!(code(r#"{"time": 1.0}"#), "missing_field");
        assert_eq!(code(r#"{"track": 1}"#), "missing_field");
        assert_eq!(code(r#"{"track": "1", "time": 1.0}"#), "wrong_type");
        assert_eq!(code(r#"{"track": -1, "time": 1.0}"#), "wrong_type");
        assert_eq!(code(r#"{"track": 4294967296, "time": 1.0}"#), "wrong_type");
        assert_eq!(code(r#"{"track": 5.5, "time": 1.0}"#), "wrong_type");
        assert_eq!(code(r#"{"track": 1, "time": "x"}"#), "wrong_type");
    }

    #[test]
    fn path_ids_must_be_non_negative_integers() {
        assert_eq!(user_id("42").unwrap(), 42);
        for bad in ["-1", "abc", "1.5", "", "99999999999999999999999"] {
            assert_eq!(user_id(bad).unwrap_err().code, "invalid_user", "{bad}");
        }
        assert_eq!(track_id("x").unwrap_err().code, "invalid_track");
    }

    #[test]
    fn search_queries_are_bounded() {
        assert_eq!(search_query(Some(&"Nova A".into())).unwrap(), "Nova A");
        assert_eq!(search_query(None).unwrap_err().code, "missing_query");
        for bad in ["", &"x".repeat(MAX_QUERY_CHARS + 1)] {
            assert_eq!(
                search_query(Some(&bad.to_string())).unwrap_err().code,
                "invalid_query",
                "{bad:?}"
            );
        }
        assert!(search_query(Some(&"é".repeat(MAX_QUERY_CHARS))).is_ok());
    }

    #[test]
    fn k_is_bounded() {
        assert_eq!(k_param(None, 10).unwrap(), 10);
        assert_eq!(k_param(Some(&"3".into()), 10).unwrap(), 3);
        assert!(k_param(Some(&"0".into()), 10).is_err());
        assert!(k_param(Some(&"5000".into()), 10).is_err());
    }
}
