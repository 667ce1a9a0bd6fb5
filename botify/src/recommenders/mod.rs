//! Recommenders: given what the user just heard, pick the next track.
//!
//! Every recommender implements [`Recommender`] and is pure with respect to
//! I/O: the engine records the listen and reads the user's state before and
//! writes the returned [`StateUpdate`] after, so the same code runs behind
//! HTTP and in-process in the simulator. A recommender proposes only tracks [`Allowed`] accepts (not
//! heard this session, not blocked); when it has none, it returns `None` and
//! the engine's fallback answers.

mod contextual;
mod embedding;
mod indexed;
mod memory;
mod noise;
mod random;
pub mod session;
mod session_knn;
mod sticky_artist;
mod toppop;

pub use contextual::Contextual;
pub use embedding::{Embedding, EmbeddingSettings};
pub use indexed::Indexed;
pub use memory::{Memory, MemorySettings, Source};
pub use noise::Noisy;
pub use random::Random;
pub use session_knn::{SessionKnn, SessionKnnSettings};
pub use sticky_artist::StickyArtist;
pub use toppop::TopPop;

use rand::{Rng, RngCore};

use crate::catalog::{Catalog, TrackId};
use crate::experiments::ArmSpec;
use crate::filters::Filters;
use crate::models::{Models, DEFAULT_TABLE};
use crate::state::{StateQuery, StateUpdate, UserState};

/// Which tracks may be served now.
pub struct Allowed<'a> {
    pub catalog: &'a Catalog,
    pub filters: &'a Filters,
    /// Tracks played this session (the current one included by the engine).
    pub heard: &'a [TrackId],
}

impl Allowed<'_> {
    pub fn accepts(&self, track: TrackId) -> bool {
        self.catalog.contains(track)
            && !self.heard.contains(&track)
            && !self.filters.is_blocked(self.catalog, track)
    }

    /// A uniformly random accepted track of `list`, if any: a random start
    /// then a cyclic scan, so it always finds one when one exists.
    pub fn pick_random(&self, list: &[TrackId], rng: &mut dyn RngCore) -> Option<TrackId> {
        if list.is_empty() {
            return None;
        }
        let start = rng.gen_range(0..list.len());
        list[start..]
            .iter()
            .chain(&list[..start])
            .copied()
            .find(|&t| self.accepts(t))
    }

    /// The first accepted track, in the order given.
    pub fn first(&self, tracks: impl IntoIterator<Item = TrackId>) -> Option<TrackId> {
        tracks.into_iter().find(|&t| self.accepts(t))
    }
}

/// Everything a recommender may read for one request.
pub struct Context<'a> {
    pub user: u64,
    /// The track just listened to.
    pub track: TrackId,
    /// How much of it was listened, 0..=1.
    pub time: f64,
    pub catalog: &'a Catalog,
    pub models: &'a Models,
    pub state: &'a UserState,
    pub allowed: Allowed<'a>,
    pub rng: &'a mut dyn RngCore,
}

pub trait Recommender: Send + Sync {
    /// The name used in experiment files and logs.
    fn name(&self) -> &'static str;

    /// What state this recommender needs for a request about `track`.
    fn state_query(&self, _catalog: &Catalog, _track: TrackId) -> StateQuery {
        StateQuery::default()
    }

    /// The next track, or `None` to let the engine's fallback answer. The
    /// engine has already recorded the listen (`ctx.state` includes it);
    /// anything else to store goes into `update`.
    fn recommend(&self, ctx: &mut Context<'_>, update: &mut StateUpdate) -> Option<TrackId>;

    /// Called on `/last` with the session's final listen, after the store
    /// recorded it in the profile and forgot the session.
    fn end_session(&self, _ctx: &Context<'_>, _update: &mut StateUpdate) {}
}

/// Names accepted in experiment files.
pub const NAMES: [&str; 8] = [
    "random",
    "toppop",
    "sticky_artist",
    "contextual",
    "indexed",
    "memory",
    "session_knn",
    "embedding",
];

/// Why an experiment arm names no recommender that can be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    #[error("unknown recommender {name:?}; known: {}", NAMES.join(", "))]
    Unknown { name: String },
    /// A parameter outside the range the recommender accepts. `value` is
    /// the value as the recommender read it (some parameters are `f32`),
    /// formatted, so the message shows exactly what was checked.
    #[error("{recommender}: {param} = {value} is outside 0..=1")]
    InvalidParam {
        recommender: String,
        param: &'static str,
        value: String,
    },
    #[error(
        "memory: source = {0:?} is not a candidate source; known: table, embedding, session_knn"
    )]
    UnknownSource(String),
}

/// Builds the recommender an arm describes, with its parameters; any arm's
/// `noise = p` replaces its answer with a random track with probability p.
pub fn build(arm: &ArmSpec) -> Result<Box<dyn Recommender>, BuildError> {
    let inner = build_inner(arm)?;
    let share = fraction(arm, arm.recommender(), "noise", 0.0)?;
    Ok(if share > 0.0 {
        Box::new(Noisy { inner, share })
    } else {
        inner
    })
}

fn build_inner(arm: &ArmSpec) -> Result<Box<dyn Recommender>, BuildError> {
    let table = || arm.param_str("table").unwrap_or(DEFAULT_TABLE).to_string();
    Ok(match arm.recommender() {
        "random" => Box::new(Random),
        "toppop" => Box::new(TopPop {
            k: arm.param_usize("k").unwrap_or(100).max(1),
        }),
        "sticky_artist" => Box::new(StickyArtist),
        "contextual" => Box::new(Contextual { table: table() }),
        "indexed" => Box::new(Indexed),
        "memory" => {
            let defaults = MemorySettings::default();
            let source = match arm.param_str("source").unwrap_or("table") {
                "table" => Source::Table(table()),
                "embedding" => Source::Embedding,
                "session_knn" => Source::SessionKnn,
                other => return Err(BuildError::UnknownSource(other.to_string())),
            };
            let settings = MemorySettings {
                source,
                liked_threshold: arm.param_f64("liked").unwrap_or(defaults.liked_threshold),
                fail_limit: arm
                    .param_usize("fail_limit")
                    .map(|v| v as u32)
                    .unwrap_or(defaults.fail_limit),
            };
            if !(0.0..=1.0).contains(&settings.liked_threshold) {
                return Err(BuildError::InvalidParam {
                    recommender: "memory".into(),
                    param: "liked",
                    value: settings.liked_threshold.to_string(),
                });
            }
            Box::new(Memory::new(settings))
        }
        "session_knn" => {
            let defaults = SessionKnnSettings::default();
            Box::new(SessionKnn {
                settings: SessionKnnSettings {
                    weighting: weighting(arm)?,
                    k: arm.param_usize("k").unwrap_or(defaults.k).max(1),
                    sample: arm.param_usize("sample").unwrap_or(defaults.sample).max(1),
                    artist_penalty: arm
                        .param_f64("artist_penalty")
                        .map_or(defaults.artist_penalty, |v| v as f32),
                },
            })
        }
        "embedding" => {
            let defaults = EmbeddingSettings::default();
            Box::new(Embedding {
                settings: EmbeddingSettings {
                    weighting: weighting(arm)?,
                    seeds: arm.param_usize("seeds").unwrap_or(defaults.seeds).max(1),
                    artist_penalty: arm
                        .param_f64("artist_penalty")
                        .map_or(defaults.artist_penalty, |v| v as f32),
                    explore: fraction(arm, "embedding", "explore", defaults.explore)?,
                },
            })
        }
        other => {
            return Err(BuildError::Unknown {
                name: other.to_string(),
            })
        }
    })
}

/// The arm's `param` as a fraction in 0..=1, or `default`.
fn fraction(
    arm: &ArmSpec,
    recommender: &str,
    param: &'static str,
    default: f64,
) -> Result<f64, BuildError> {
    let value = arm.param_f64(param).unwrap_or(default);
    if !(0.0..=1.0).contains(&value) {
        return Err(BuildError::InvalidParam {
            recommender: recommender.into(),
            param,
            value: value.to_string(),
        });
    }
    Ok(value)
}

/// How `session_knn` and `embedding` weigh the session's listens, from the
/// arm's `recent`, `decay` and `skip_weight`.
fn weighting(arm: &ArmSpec) -> Result<session::Weighting, BuildError> {
    let defaults = session::Weighting::default();
    let weighting = session::Weighting {
        recent: arm.param_usize("recent").unwrap_or(defaults.recent).max(1),
        decay: arm.param_f64("decay").map_or(defaults.decay, |v| v as f32),
        skip_weight: arm
            .param_f64("skip_weight")
            .map_or(defaults.skip_weight, |v| v as f32),
    };
    if !(0.0..=1.0).contains(&weighting.decay) {
        return Err(BuildError::InvalidParam {
            recommender: arm.recommender().to_string(),
            param: "decay",
            value: weighting.decay.to_string(),
        });
    }
    Ok(weighting)
}

/// Contextual neighbours of `anchor`: the trained table's when it has the
/// track, then catalog metadata (same artist, then same genre, by popularity)
/// so a cold start or an unseen track still gets a related answer.
pub fn neighbours<'a>(
    catalog: &'a Catalog,
    models: &'a Models,
    table: &str,
    anchor: TrackId,
) -> impl Iterator<Item = TrackId> + 'a {
    let trained = models
        .table(table)
        .map(|t| t.neighbours(anchor))
        .unwrap_or(&[]);
    trained
        .iter()
        .copied()
        .chain(catalog.metadata_neighbours(anchor))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fixture for recommender unit tests.
    use super::*;
    use crate::state::Listen;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    pub struct Fixture {
        pub catalog: Catalog,
        pub models: Models,
        pub filters: Filters,
        pub state: UserState,
        pub rng: SmallRng,
    }

    impl Fixture {
        pub fn new() -> Self {
            Fixture {
                catalog: crate::catalog::tests::small(),
                models: Models::default(),
                filters: Filters::default(),
                state: UserState::default(),
                rng: SmallRng::seed_from_u64(7),
            }
        }

        /// Puts fully listened `tracks` in the session.
        pub fn heard(&mut self, tracks: &[TrackId]) {
            let listens = tracks.iter().map(|&track| Listen { track, time: 1.0 });
            self.state.listens.extend(listens);
        }

        /// Puts `listens` (track, time) in the session, oldest first.
        pub fn listened(&mut self, listens: &[(TrackId, f64)]) {
            let listens = listens.iter().map(|&(track, time)| Listen { track, time });
            self.state.listens.extend(listens);
        }

        /// Runs `rec` for `track` listened for `time`, appending the listen
        /// to the session first, as the store does for the engine.
        pub fn recommend(
            &mut self,
            rec: &dyn Recommender,
            track: TrackId,
            time: f64,
        ) -> (Option<TrackId>, StateUpdate) {
            self.state.listens.push(Listen { track, time });
            let heard = self.state.heard();
            let mut ctx = Context {
                user: 1,
                track,
                time,
                catalog: &self.catalog,
                models: &self.models,
                state: &self.state,
                allowed: Allowed {
                    catalog: &self.catalog,
                    filters: &self.filters,
                    heard: &heard,
                },
                rng: &mut self.rng,
            };
            let mut update = StateUpdate::default();
            let track = rec.recommend(&mut ctx, &mut update);
            (track, update)
        }
    }

    /// The arm an experiments file line `arms = [spec]` describes.
    pub fn arm(spec: &str) -> ArmSpec {
        let text = format!("active = \"X\"\n[[experiment]]\nname = \"X\"\narms = [{spec}]\n");
        crate::experiments::Experiments::parse(&text, "test")
            .unwrap()
            .active()
            .arms[0]
            .clone()
    }

    /// The fallback of a learned recommender without its model: catalog
    /// metadata of the newest like, or of the newest listen when nothing
    /// was liked. `fixture(before)` is a fixture whose session so far is
    /// `before`, with the recommender's model empty.
    pub fn assert_metadata_fallback(
        rec: &dyn Recommender,
        fixture: impl Fn(&[(TrackId, f64)]) -> Fixture,
    ) {
        let first_unheard = |f: &Fixture, anchor| {
            let heard = f.state.heard();
            f.catalog
                .metadata_neighbours(anchor)
                .find(|t| !heard.contains(t))
        };
        // A like: its own metadata neighbours.
        let mut f = fixture(&[]);
        let (track, _) = f.recommend(rec, 0, 1.0);
        assert_eq!(track, first_unheard(&f, 0));
        assert!(track.is_some());

        // A skip after a like: the liked track's neighbours, not the skip's.
        let mut f = fixture(&[(3, 1.0)]);
        let (track, _) = f.recommend(rec, 0, 0.1);
        assert_eq!(track, first_unheard(&f, 3));
        assert_ne!(track, first_unheard(&f, 0), "the anchors' answers differ");

        // Nothing liked: the current track's.
        let mut f = fixture(&[(3, 0.1)]);
        let (track, _) = f.recommend(rec, 0, 0.1);
        assert_eq!(track, first_unheard(&f, 0));
    }

    #[test]
    fn build_rejects_unknown_names() {
        let err = build(&ArmSpec::Name("magic".into()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown recommender \"magic\""), "{err}");
        for name in NAMES {
            assert_eq!(build(&ArmSpec::Name(name.into())).unwrap().name(), name);
        }
    }
}
