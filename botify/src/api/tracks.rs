//! The catalog routes: one track's record, search by artist or title
//! (for picking a session's first track), similar tracks and the most
//! popular ones.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::answers::{SearchAnswer, SimilarAnswer, TopAnswer};
use super::app_state::AppState;
use super::error::{ApiError, ErrorBody, Reply};
use super::input;
use super::parameters::{KParam, TopK, TrackPath};
use crate::catalog::Track;
use crate::engine::RequestError;

#[utoipa::path(
    get,
    path = "/track/{track}",
    tag = "catalog",
    summary = "A track's catalog record",
    params(TrackPath),
    responses(
        (status = 200, description = "The catalog record", body = Track),
        (status = 400, description = "`invalid_track`: the id is not a non-negative 32-bit integer", body = ErrorBody),
        (status = 404, description = "`unknown_track`: no such track; `not_found`: no track id in the path", body = ErrorBody),
    )
)]
pub async fn track(state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let id = input::track_id(&path)?;
    let catalog = state.engine.catalog();
    match catalog.get(id) {
        Some(record) => Ok(HttpResponse::Ok().json(record)),
        None => Err(RequestError::UnknownTrack(id).into()),
    }
}

#[utoipa::path(
    get,
    path = "/tracks",
    tag = "catalog",
    summary = "Search the catalog by artist or title",
    description = "Tracks whose artist or title contains `q` (ignoring case), most popular first; blocked tracks are left out. For picking a session's first track.",
    params(
        ("q" = String, Query, description = "Part of an artist or a title, 1 to 200 characters", min_length = 1, max_length = 200),
        KParam,
    ),
    responses(
        (status = 200, description = "Up to `k` matching tracks (possibly none)", body = SearchAnswer),
        (status = 400, description = "`missing_query`, `invalid_query` (q empty or too long, or a query string that cannot be parsed), `invalid_k`", body = ErrorBody),
    )
)]
pub async fn search(
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Reply {
    let text = input::search_query(query.get("q"))?;
    let k = input::k_param(query.get("k"), 10)?;
    let catalog = state.engine.catalog();
    let tracks = state
        .engine
        .search(&text, k)
        .into_iter()
        .filter_map(|id| catalog.get(id).cloned())
        .collect();
    Ok(HttpResponse::Ok().json(SearchAnswer {
        query: text,
        tracks,
    }))
}

#[utoipa::path(
    get,
    path = "/similar/{track}",
    tag = "catalog",
    summary = "Tracks like this one",
    description = "The trained item-to-item neighbours first, then the same artist's and the same genre's tracks by popularity; never the track itself or a blocked track.",
    params(TrackPath, KParam),
    responses(
        (status = 200, description = "Up to `k` similar tracks", body = SimilarAnswer),
        (status = 400, description = "`invalid_track`, `invalid_k`, `invalid_query`", body = ErrorBody),
        (status = 404, description = "`unknown_track`: no such track; `not_found`: no track id in the path", body = ErrorBody),
    )
)]
pub async fn similar(
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
        TopK,
    ),
    responses(
        (status = 200, description = "Up to `k` tracks, most popular first", body = TopAnswer),
        (status = 400, description = "`invalid_k`, `invalid_query`", body = ErrorBody),
        (status = 404, description = "`unknown_genre`", body = ErrorBody),
    )
)]
pub async fn top(state: web::Data<AppState>, query: web::Query<HashMap<String, String>>) -> Reply {
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
