//! `GET /user/{user}`: which arm and recommender serve a user, for the
//! web player and for anyone checking an experiment's assignment.

use actix_web::{web, HttpResponse};

use super::answers::UserAnswer;
use super::app_state::AppState;
use super::error::{ErrorBody, Reply};
use super::input;
use super::parameters::UserPath;
use crate::experiments::arm_label;

#[utoipa::path(
    get,
    path = "/user/{user}",
    tag = "listen",
    summary = "A user's arm and recommender",
    description = "The user's arm in the active experiment (which decides the recommender serving their `/next`) and in every configured one. Assignment is a pure function of the user id (docs/experiments.md#assignment): nothing is stored.",
    params(UserPath),
    responses(
        (status = 200, description = "The user's treatment", body = UserAnswer),
        (status = 400, description = "`invalid_user`: not a non-negative integer that fits 64 bits", body = ErrorBody),
        (status = 404, description = "`not_found`: no user id in the path", body = ErrorBody),
    )
)]
pub async fn user(state: web::Data<AppState>, path: web::Path<String>) -> Reply {
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
