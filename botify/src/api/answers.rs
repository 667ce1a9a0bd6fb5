//! What the API answers, as types: each one is serialized as the JSON body
//! of its route and derives the schema `/openapi.json` publishes, so the
//! contract cannot drift from what is sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::{Track, TrackId, TrackIdSchema};

/// `POST /next/{user}`: the track to play next.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextAnswer {
    #[schema(schema_with = super::parameters::user_id_schema)]
    pub user: u64,
    /// The recommended track: play it, then report how much was heard.
    #[schema(value_type = TrackIdSchema)]
    pub track: TrackId,
    /// The probability that this arm's serving policy served this track,
    /// in (0, 1]; the event log records it too (docs/policies.md).
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub propensity: f64,
}

/// `POST /last/{user}`: the session is over.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastAnswer {
    #[schema(schema_with = super::parameters::user_id_schema)]
    pub user: u64,
}

/// `GET /`: liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct RootAnswer {
    /// Always `alive`.
    pub status: String,
    /// Catalog size, the active experiment with each arm's recommender, the
    /// state store kind.
    pub message: String,
}

/// `GET /health`: readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthAnswer {
    pub status: HealthStatus,
    pub state_store: StoreHealth,
    pub models: ModelsHealth,
    pub catalog_tracks: usize,
    pub control_plane: ControlPlaneHealth,
    /// Fingerprint of the models served (also on every event line); `null`
    /// without a models folder.
    pub model_version: Option<String>,
}

/// The control plane version this replica serves, and where it is kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct ControlPlaneHealth {
    pub version: u64,
    /// `redis`, `file` or `memory`.
    pub store: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Everything answers.
    Ok,
    /// The state store does not answer: requests are served from the
    /// stateless fallback.
    Degraded,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoreHealth {
    /// `redis` or `memory`.
    pub kind: String,
    pub reachable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsHealth {
    /// The `--models` folder.
    pub dir: String,
    /// Whether `top_tracks.json` is loaded.
    pub top_tracks: bool,
    /// The item-to-item tables loaded, by name.
    pub tables: Vec<String>,
}

/// `GET /similar/{track}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarAnswer {
    #[schema(value_type = TrackIdSchema)]
    pub track: TrackId,
    /// Most similar first; never the track itself or a blocked track.
    #[schema(value_type = Vec<TrackIdSchema>)]
    pub similar: Vec<TrackId>,
}

/// `GET /top`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopAnswer {
    /// The genre asked for; `null` for the whole catalog.
    pub genre: Option<String>,
    /// Most popular first.
    #[schema(value_type = Vec<TrackIdSchema>)]
    pub tracks: Vec<TrackId>,
}

/// `GET /tracks?q=`: catalog search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    /// The query, as received.
    pub query: String,
    /// Tracks whose artist or title contains the query (ignoring case),
    /// most popular first; blocked tracks are left out.
    pub tracks: Vec<Track>,
}

/// `GET /user/{user}`: how the service treats this user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user": 42, "experiment": "MEMORY", "arm": "T2", "recommender": "memory", "experiments": {"MEMORY": "T2", "AA": "C"}}))]
pub struct UserAnswer {
    #[schema(schema_with = super::parameters::user_id_schema)]
    pub user: u64,
    /// The active experiment: the one that decides the recommender.
    pub experiment: String,
    /// The user's arm in it: `C`, `T1`, `T2`, …
    pub arm: String,
    /// The recommender serving that arm.
    pub recommender: String,
    /// The user's arm in every configured experiment, as logged with each
    /// event.
    pub experiments: BTreeMap<String, String>,
}

/// `POST /admin/reload`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadAnswer {
    /// Always `true`: a failed reload is a 422.
    pub reloaded: bool,
    /// Fingerprint of the models now served (also on every event line);
    /// `null` when the models folder is missing.
    pub model_version: Option<String>,
    /// Tracks in `top_tracks.json`; `null` without that file.
    pub top_tracks: Option<usize>,
    /// Each item-to-item table loaded, by name.
    pub tables: Vec<TableSize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableSize {
    pub name: String,
    /// Tracks that have neighbours in the table.
    pub tracks: usize,
}

/// The body of `POST /admin/tracks`: a catalog record whose id may be left
/// out (it then takes the next free one).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"artist": "Nova Ash", "title": "New Dawn", "genre": "ambient", "year": 2026, "popularity": 0.5}))]
pub struct NewTrack {
    /// If given, it must be the next free id (the catalog's size).
    #[serde(default, deserialize_with = "crate::json_integers::optional_track_id")]
    #[schema(value_type = Option<TrackIdSchema>)]
    pub track: Option<TrackId>,
    pub artist: String,
    pub title: String,
    pub genre: Option<String>,
    #[serde(default, deserialize_with = "crate::json_integers::optional_i32")]
    pub year: Option<i32>,
    pub popularity: Option<f64>,
}

impl NewTrack {
    /// The catalog record, with `next_id` when no id was given.
    pub fn into_track(self, next_id: TrackId) -> Track {
        Track {
            track: self.track.unwrap_or(next_id),
            artist: self.artist,
            title: self.title,
            genre: self.genre,
            year: self.year,
            popularity: self.popularity,
        }
    }
}

/// `POST /admin/tracks`: the new track's id and its metadata neighbours.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedTrack {
    #[schema(value_type = TrackIdSchema)]
    pub track: TrackId,
    /// Up to 10 similar tracks by metadata.
    #[schema(value_type = Vec<TrackIdSchema>)]
    pub similar: Vec<TrackId>,
}
