//! What a listener-facing client (the web player) needs besides `/next`:
//! finding a first track by artist or title, and seeing which arm and
//! recommender serve a user.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};

use super::answers::{SearchAnswer, UserAnswer};
use super::{input, openapi, AppState, ErrorBody, Reply};
use crate::experiments::arm_label;

#[utoipa::path(
    get,
    path = "/tracks",
    tag = "catalog",
    summary = "Search the catalog by artist or title",
    description = "Tracks whose artist or title contains `q` (ignoring case), most popular first; blocked tracks are left out. For picking a session's first track.",
    params(
        ("q" = String, Query, description = "Part of an artist or a title, 1 to 200 characters", min_length = 1, max_length = 200),
        openapi::KParam,
    ),
    responses(
        (status = 200, description = "Up to `k` matching tracks (possibly none)", body = SearchAnswer),
        (status = 400, description = "`missing_query`, `invalid_query` (q empty or too long, or a query string that cannot be parsed), `invalid_k`", body = ErrorBody),
    )
)]
pub(super) async fn search(
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
    path = "/user/{user}",
    tag = "listen",
    summary = "A user's arm and recommender",
    description = "The user's arm in the active experiment (which decides the recommender serving their `/next`) and in every configured one. Assignment is a pure function of the user id (docs/experiments.md#assignment): nothing is stored.",
    params(openapi::UserPath),
    responses(
        (status = 200, description = "The user's treatment", body = UserAnswer),
        (status = 400, description = "`invalid_user`: not a non-negative integer that fits 64 bits", body = ErrorBody),
        (status = 404, description = "`not_found`: no user id in the path", body = ErrorBody),
    )
)]
pub(super) async fn user(state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let user = input::user_id(&path)?;
    let engine = &state.engine;
    let experiments = engine.experiments();
    let active = experiments.active();
    let arm = active.arm_of(user);
    let recommender = engine
        .arm_names()
        .into_iter()
        .nth(arm)
        .map(|(_, name)| name.to_string())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(UserAnswer {
        user,
        experiment: active.name.clone(),
        arm: arm_label(arm),
        recommender,
        experiments: experiments.labels(user),
    }))
}
