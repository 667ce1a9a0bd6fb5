//! `POST /next/{user}` and `POST /last/{user}`: a listener reports a listen
//! and gets the next track, or ends the session. Both read the same
//! request; they differ only in what the engine does with it. What they
//! refuse a listen with is described once for both ([`ListenRefusals`]).

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::Modify;

use super::answers::{LastAnswer, NextAnswer};
use super::app_state::AppState;
use super::error::{ApiError, ErrorBody, Reply};
use super::input::{self, ListenBody};
use super::parameters::UserPath;
use super::routes::{method_not_allowed, not_found_error, LAST, NEXT};

/// What `/next` and `/last` both carry: whose listen, when it happened
/// (`None`: now), and what was heard.
struct ReportedListen {
    user: u64,
    at: Option<u64>,
    listen: ListenBody,
}

impl ReportedListen {
    async fn read(
        req: &HttpRequest,
        state: &AppState,
        body: web::Payload,
    ) -> Result<Self, ApiError> {
        let user = user_segment(req)?;
        let at = input::simulated_time(req, state.simulated_clock)?;
        let listen = input::listen(&input::read_body(body, input::MAX_BODY_BYTES).await?)?;
        Ok(ReportedListen { user, at, listen })
    }
}

/// The 4xx answers `/next` and `/last` share, in the API description:
/// written once, like the [`ReportedListen::read`] that gives most of them
/// (the engine gives `unknown_track`).
pub struct ListenRefusals;

impl Modify for ListenRefusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for path in [NEXT, LAST] {
            let operation = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|route| route.post.as_mut())
                .expect("/next and /last carry #[utoipa::path]");
            operation.responses.responses.extend([
                ("400".into(), ErrorBody::described("`malformed_json`, `wrong_type`, `missing_field`, `invalid_time`, `invalid_user`, `invalid_body`")),
                ("404".into(), ErrorBody::described("`unknown_track`: the track is not in the catalog; `not_found`: no user id in the path")),
                ("413".into(), ErrorBody::described(&format!("`body_too_large`: over {} bytes", input::MAX_BODY_BYTES))),
            ]);
        }
    }
}

/// The `{user}` of `/next/{user}` or `/last/{user}`, from what the prefix
/// scope left of the path (`/42`). Only POST is served there.
fn user_segment(req: &HttpRequest) -> Result<u64, ApiError> {
    let user = req
        .match_info()
        .unprocessed()
        .strip_prefix('/')
        .filter(|segment| !segment.is_empty() && !segment.contains('/'));
    match user {
        None => Err(not_found_error(req)),
        Some(_) if req.method() != Method::POST => Err(method_not_allowed(req, "POST")),
        Some(user) => input::user_id(user),
    }
}

#[utoipa::path(
    post,
    path = "/next/{user}",
    tag = "listen",
    summary = "Report a listen, get the next track",
    description = "The listener heard `time` of `track` (the first track of a session: the listener's pick, with `time` 1.0); botify records it and answers the track to play next. docs/api.md#client-protocol.",
    params(UserPath),
    request_body(content = ListenBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The track to play next", body = NextAnswer),
    )
)]
pub async fn next(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let ReportedListen { user, at, listen } = ReportedListen::read(&req, &state, body).await?;
    let answer = state
        .engine
        .next_at(user, listen.track, listen.time, at)
        .await?;
    Ok(HttpResponse::Ok().json(NextAnswer {
        user,
        track: answer.track,
        propensity: answer.propensity,
    }))
}

#[utoipa::path(
    post,
    path = "/last/{user}",
    tag = "listen",
    summary = "Report the last listen: the session ends",
    description = "Sent instead of `/next` when the listener leaves: records the final listen and forgets the session.",
    params(UserPath),
    request_body(content = ListenBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The session is over", body = LastAnswer),
    )
)]
pub async fn last(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let ReportedListen { user, at, listen } = ReportedListen::read(&req, &state, body).await?;
    state
        .engine
        .last_at(user, listen.track, listen.time, at)
        .await?;
    Ok(HttpResponse::Ok().json(LastAnswer { user }))
}
