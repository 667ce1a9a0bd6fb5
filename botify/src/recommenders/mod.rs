//! Recommenders: given what the user just heard, which tracks could come
//! next, and how good each looks.
//!
//! Every recommender implements [`Recommender`] and is pure with respect to
//! I/O: the engine records the listen and reads the user's state before and
//! writes the returned [`StateUpdate`] after, so the same code runs behind
//! HTTP and in-process in the simulator. A recommender answers with its
//! [`Candidates`] — tracks [`Allowed`] accepts (not heard this session, not
//! blocked), scored, or an even draw over a set — and never draws itself:
//! the arm's serving policy (`crate::policy`) turns them into a
//! distribution, draws the answer and logs its probability. With no
//! candidate, the engine's fallback answers.

mod allowed;
mod candidates;
mod contextual;
mod embedding;
mod indexed;
mod memory;
pub mod params;
mod random;
pub mod session;
mod session_interest;
mod session_knn;
mod sticky_artist;
mod toppop;

pub use allowed::{Allowed, Unseen};
pub use candidates::{ranked, Candidates, Pool, Scored};
pub use contextual::Contextual;
pub use embedding::{Embedding, EmbeddingSettings};
pub use indexed::Indexed;
pub use memory::{Memory, MemorySettings, Source};
pub use params::BuildError;
pub use random::Random;
pub use session_interest::{SessionInterest, SessionInterestSettings};
pub use session_knn::{SessionKnn, SessionKnnSettings};
pub use sticky_artist::StickyArtist;
pub use toppop::TopPop;

use self::params::{Params, FRACTION};
use crate::catalog::{Catalog, TrackId};
use crate::experiments::ArmSpec;
use crate::models::{Models, DEFAULT_TABLE};
use crate::policy::Policy;
use crate::state::{StateQuery, StateUpdate, UserState};

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
    /// How many ranked candidates the arm's policy draws from (its `top`):
    /// a recommender need not rank further than that.
    pub top: usize,
}

pub trait Recommender: Send + Sync {
    /// The name used in experiment files and logs.
    fn name(&self) -> &'static str;

    /// What state this recommender needs for a request about `track`.
    fn state_query(&self, _catalog: &Catalog, _track: TrackId) -> StateQuery {
        StateQuery::default()
    }

    /// The candidates for the next track, at most `ctx.top` of them when
    /// ranked. The engine has already recorded the listen (`ctx.state`
    /// includes it); anything else to store goes into `update`.
    fn candidates<'a>(&self, ctx: &Context<'a>, update: &mut StateUpdate) -> Candidates<'a>;

    /// The share of answers this recommender wants drawn uniformly over
    /// the allowed tracks instead of from its candidates (exploration, so
    /// the logs the next training reads also test tracks it would never
    /// serve). The policy mixes it in with the arm's `noise`.
    fn explore(&self) -> f64 {
        0.0
    }

    /// Called on `/last` with the session's final listen, after the store
    /// recorded it in the profile and forgot the session.
    fn end_session(&self, _ctx: &Context<'_>, _update: &mut StateUpdate) {}
}

/// Names accepted in experiment files.
pub const NAMES: [&str; 9] = [
    "random",
    "toppop",
    "sticky_artist",
    "contextual",
    "indexed",
    "memory",
    "session_knn",
    "embedding",
    "session_interest",
];

/// The keys `weighting` reads.
const WEIGHTING_KEYS: [&str; 3] = ["recent", "decay", "skip_weight"];

/// The keys an arm of recommender `name` may set besides the
/// [common ones](params::COMMON_KEYS); `None` for an unknown recommender.
pub fn accepted_keys(name: &str) -> Option<Vec<&'static str>> {
    let own: &[&str] = match name {
        "random" | "sticky_artist" | "indexed" => &[],
        "toppop" => &["k"],
        "contextual" => &["table"],
        "memory" => &["source", "table", "liked", "fail_limit"],
        "session_knn" => &["k", "sample", "artist_penalty"],
        "embedding" => &["seeds", "artist_penalty", "explore"],
        "session_interest" => &["seeds", "neutral"],
        _ => return None,
    };
    let weighted = matches!(name, "session_knn" | "embedding");
    let weighting: &[&str] = if weighted { &WEIGHTING_KEYS } else { &[] };
    Some(own.iter().chain(weighting).copied().collect())
}

/// Builds the recommender an arm describes, with its parameters. Refuses
/// an arm with a key its recommender does not accept, or a value of the
/// wrong type or range, the serving policy's keys included, so a typo
/// stops start-up instead of serving defaults.
pub fn build(arm: &ArmSpec) -> Result<Box<dyn Recommender>, BuildError> {
    let name = arm.recommender();
    let keys = accepted_keys(name).ok_or_else(|| BuildError::Unknown {
        name: name.to_string(),
    })?;
    let params = Params::strict(arm, &keys)?;
    Policy::from_arm(arm)?;
    let table = || -> Result<String, BuildError> {
        Ok(params.string("table")?.unwrap_or(DEFAULT_TABLE).to_string())
    };
    Ok(match name {
        "random" => Box::new(Random),
        "toppop" => Box::new(TopPop {
            k: params.positive("k", 100)?,
        }),
        "sticky_artist" => Box::new(StickyArtist),
        "contextual" => Box::new(Contextual { table: table()? }),
        "indexed" => Box::new(Indexed),
        "memory" => {
            let defaults = MemorySettings::default();
            let source = match params.string("source")?.unwrap_or("table") {
                "table" => Source::Table(table()?),
                "embedding" => Source::Embedding,
                "session_knn" => Source::SessionKnn,
                other => {
                    return Err(params.invalid(
                        "source",
                        format!("{other:?}"),
                        "a candidate source: table, embedding or session_knn",
                    ))
                }
            };
            let fail_limit = match params.count("fail_limit")? {
                Some(limit) => u32::try_from(limit)
                    .map_err(|_| params.invalid("fail_limit", limit, "an integer below 2^32"))?,
                None => defaults.fail_limit,
            };
            Box::new(Memory::new(MemorySettings {
                source,
                liked_threshold: params.fraction("liked", defaults.liked_threshold)?,
                fail_limit,
            }))
        }
        "session_knn" => {
            let defaults = SessionKnnSettings::default();
            Box::new(SessionKnn {
                settings: SessionKnnSettings {
                    weighting: weighting(&params)?,
                    k: params.positive("k", defaults.k)?,
                    sample: params.positive("sample", defaults.sample)?,
                    artist_penalty: params.number_f32("artist_penalty", defaults.artist_penalty)?,
                },
            })
        }
        "embedding" => {
            let defaults = EmbeddingSettings::default();
            Box::new(Embedding {
                settings: EmbeddingSettings {
                    weighting: weighting(&params)?,
                    seeds: params.positive("seeds", defaults.seeds)?,
                    artist_penalty: params.number_f32("artist_penalty", defaults.artist_penalty)?,
                    explore: params.fraction("explore", defaults.explore)?,
                },
            })
        }
        "session_interest" => {
            let defaults = SessionInterestSettings::default();
            Box::new(SessionInterest {
                settings: SessionInterestSettings {
                    seeds: params.positive("seeds", defaults.seeds)?,
                    neutral: params.fraction("neutral", f64::from(defaults.neutral))? as f32,
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

/// How `session_knn` and `embedding` weigh the session's listens, from the
/// arm's `recent`, `decay` and `skip_weight`.
fn weighting(params: &Params<'_>) -> Result<session::Weighting, BuildError> {
    let defaults = session::Weighting::default();
    let decay = params.number_f32("decay", defaults.decay)?;
    if !(0.0..=1.0).contains(&decay) {
        return Err(params.invalid("decay", decay, FRACTION));
    }
    Ok(session::Weighting {
        recent: params.positive("recent", defaults.recent)?,
        decay,
        skip_weight: params.number_f32("skip_weight", defaults.skip_weight)?,
    })
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
    use crate::filters::Filters;
    use crate::state::Listen;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    pub struct Fixture {
        pub catalog: Catalog,
        pub models: Models,
        pub filters: Filters,
        pub state: UserState,
        pub rng: SmallRng,
        /// The session's tracks as of the last request.
        heard: Vec<TrackId>,
    }

    impl Fixture {
        pub fn new() -> Self {
            Fixture {
                catalog: crate::catalog::tests::small(),
                models: Models::default(),
                filters: Filters::default(),
                state: UserState::default(),
                rng: SmallRng::seed_from_u64(7),
                heard: Vec::new(),
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

        /// The candidates of `rec` (at most [`TOP`]) for `track` listened
        /// for `time`, appending the listen to the session first, as the
        /// store does for the engine.
        pub fn candidates(
            &mut self,
            rec: &dyn Recommender,
            track: TrackId,
            time: f64,
        ) -> (Candidates<'_>, StateUpdate) {
            self.state.listens.push(Listen { track, time });
            self.heard = self.state.heard();
            self.ask(rec, track, time)
        }

        /// `rec`'s candidates for the session as it is.
        fn ask(
            &self,
            rec: &dyn Recommender,
            track: TrackId,
            time: f64,
        ) -> (Candidates<'_>, StateUpdate) {
            let ctx = Context {
                user: 1,
                track,
                time,
                catalog: &self.catalog,
                models: &self.models,
                state: &self.state,
                allowed: Allowed::new(&self.catalog, &self.filters, &self.heard),
                top: TOP,
            };
            let mut update = StateUpdate::default();
            let candidates = rec.candidates(&ctx, &mut update);
            (candidates, update)
        }

        /// What the greedy policy serves from `rec`'s candidates (see
        /// [`candidates`](Self::candidates)): the best ranked one, or a
        /// uniform draw from the fixture's rng; `None` when there is no
        /// candidate.
        pub fn recommend(
            &mut self,
            rec: &dyn Recommender,
            track: TrackId,
            time: f64,
        ) -> (Option<TrackId>, StateUpdate) {
            self.state.listens.push(Listen { track, time });
            self.heard = self.state.heard();
            let (candidates, update) = self.ask(rec, track, time);
            let owned = match candidates {
                Candidates::Ranked(list) => Ok(list),
                Candidates::Uniform(Pool::Tracks(list)) => Err(list.to_vec()),
                Candidates::Uniform(Pool::Catalog) => {
                    Err((0..self.catalog.len() as TrackId).collect::<Vec<_>>())
                }
            };
            let allowed = Allowed::new(&self.catalog, &self.filters, &self.heard);
            let pick = match owned {
                Ok(ranked) => crate::policy::greedy(&ranked).map(|i| ranked[i].0),
                Err(pool) => {
                    let count = allowed.count_in(&pool);
                    allowed.draw_in(&pool, count, &mut self.rng)
                }
            };
            (pick, update)
        }
    }

    /// Candidates a fixture asks for: an arm's default.
    pub const TOP: usize = crate::policy::DEFAULT_TOP;

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
