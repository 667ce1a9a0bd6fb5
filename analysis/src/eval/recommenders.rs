//! botify's own recommenders, offline: built from their experiment names by
//! `botify::recommenders::build` and run by the code that serves traffic,
//! each query turned into a ranked list of successive picks (see the
//! protocol in the parent module's doc).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use botify::catalog::Catalog;
use botify::experiments::ArmSpec;
use botify::filters::Filters;
use botify::models::Models;
use botify::recommenders::{self, Allowed, Candidates, Context};
use botify::state::{Listen, StateUpdate, UserState, MAX_SESSION_LISTENS};
use rand::rngs::SmallRng;

use super::model::{Model, NamedModel, Served};
use crate::logs::Record;
use crate::sessions::Session;

/// Recommenders `analysis eval` runs unless `--recommenders` says otherwise.
pub const DEFAULT_RECOMMENDERS: &str =
    "sticky_artist,contextual,memory,session_knn,embedding,session_interest";

impl Served {
    /// The recommender's list after `events[at]` of `user`'s session: up to
    /// `k` successive picks, each excluded from the next (see the module doc).
    pub fn recommend_list(
        &self,
        user: u64,
        events: &[Record],
        at: usize,
        k: usize,
        rng: &mut SmallRng,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        let now = &events[at];
        let catalog = &*self.catalog;
        if !catalog.contains(now.track) {
            return; // botify answers 400: no recommendation
        }
        let mut listens: Vec<Listen> = events[..=at]
            .iter()
            .filter(|e| catalog.contains(e.track))
            .map(|e| Listen {
                track: e.track,
                time: e.time,
            })
            .collect();
        if listens.len() > MAX_SESSION_LISTENS {
            listens.drain(..listens.len() - MAX_SESSION_LISTENS);
        }
        let state = UserState {
            listens,
            ..UserState::default()
        };
        let mut heard = state.heard();
        while out.len() < k {
            let ctx = Context {
                user,
                track: now.track,
                time: now.time,
                catalog,
                models: &self.models,
                state: &state,
                allowed: Allowed::new(catalog, &self.filters, &heard),
                top: k - out.len(),
            };
            let mut update = StateUpdate::default();
            let before = out.len();
            match self.recommender.candidates(&ctx, &mut update) {
                Candidates::Ranked(list) => out.extend(list.iter().map(|&(track, _)| track)),
                Candidates::Uniform(pool) => {
                    let count = pool.count(&ctx.allowed);
                    out.extend(pool.draw(&ctx.allowed, count, &mut *rng));
                }
            }
            if out.len() == before {
                break;
            }
            heard.extend_from_slice(&out[before..]);
            // Allowed looks tracks up in a sorted list.
            heard.sort_unstable();
        }
    }
}

/// The recommender names of a `--recommenders` list: checked against
/// botify's, in the order given; `none` alone gives none.
pub fn recommender_names(list: &[String]) -> Result<Vec<String>> {
    let names: Vec<String> = list
        .iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names == ["none"] {
        return Ok(Vec::new());
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            bail!("--recommenders lists {name:?} twice");
        }
        if let Err(err) = recommenders::build(&ArmSpec::Name(name.clone())) {
            bail!("--recommenders: {err}; or `none` to evaluate the tables only");
        }
    }
    Ok(names)
}

/// Builds each named recommender with default parameters, as an experiment
/// arm `"name"` would, all sharing `catalog` and botify's models loaded once
/// from `dir` (`Models::load`: the tables, embedding and sessions botify
/// serves from).
pub fn load_recommenders(
    names: &[String],
    catalog: Arc<Catalog>,
    dir: &Path,
) -> Result<Vec<NamedModel>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let models = Arc::new(
        Models::load(dir)
            .with_context(|| format!("botify cannot load --models {}", dir.display()))?,
    );
    names
        .iter()
        .map(|name| recommender(name, Arc::clone(&catalog), Arc::clone(&models)))
        .collect()
}

/// botify's recommender `name` with default parameters, reading `catalog`
/// and `models`.
pub fn recommender(name: &str, catalog: Arc<Catalog>, models: Arc<Models>) -> Result<NamedModel> {
    let recommender = recommenders::build(&ArmSpec::Name(name.to_string()))
        .map_err(|err| anyhow::anyhow!("--recommenders: {err}"))?;
    Ok(NamedModel {
        name: name.to_string(),
        model: Model::Recommender(Arc::new(Served {
            recommender,
            catalog,
            models,
            filters: Filters::default(),
        })),
    })
}

/// Held-out events whose track is not in `catalog`, and all held-out events:
/// many outside means the catalog is not the world the logs came from.
pub fn tracks_outside(records: &[Record], sessions: &[Session], catalog: &Catalog) -> (u64, u64) {
    let mut outside = 0;
    let mut total = 0;
    for session in sessions {
        for event in session.events(records) {
            total += 1;
            outside += !catalog.contains(event.track) as u64;
        }
    }
    (outside, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::fixtures::{catalog, list, logs, served};

    #[test]
    fn recommender_lists_never_hold_heard_tracks_or_repeats() {
        let (records, sessions) = logs(&[vec![(0, 1.0), (3, 0.9), (1, 0.2), (2, 0.8), (5, 1.0)]]);
        for name in recommenders::NAMES {
            let named = served(name);
            let events = sessions[0].events(&records);
            for at in 0..events.len() - 1 {
                let got = list(&named, &records, &sessions, at);
                let heard: Vec<u32> = events[..=at].iter().map(|e| e.track).collect();
                assert!(got.len() <= 6 - heard.len(), "{name} at {at}: {got:?}");
                for (i, t) in got.iter().enumerate() {
                    assert!(!heard.contains(t), "{name} at {at} served heard {t}");
                    assert!(!got[..i].contains(t), "{name} at {at} repeats {t}");
                }
            }
        }
        // contextual after 0, 3: the other B tracks by popularity, then the
        // rest of rock (A) minus 0; jazz is not a neighbour.
        let contextual = served("contextual");
        assert_eq!(list(&contextual, &records, &sessions, 1), [2, 4, 1]);
    }

    #[test]
    fn tracks_outside_the_catalog_never_reach_a_recommender() {
        // botify refuses track 99: it is not in the state, and the query
        // after it gets no list.
        let (records, sessions) = logs(&[vec![(0, 1.0), (99, 1.0), (1, 0.9), (3, 1.0), (2, 1.0)]]);
        assert_eq!(tracks_outside(&records, &sessions, &catalog()), (1, 5));
        for name in recommenders::NAMES {
            let named = served(name);
            assert!(list(&named, &records, &sessions, 1).is_empty(), "{name}");
            // Every other position runs (session_knn and embedding read the
            // artist of every listen: 99 would panic).
            for at in [0, 2, 3] {
                let got = list(&named, &records, &sessions, at);
                assert!(!got.contains(&99), "{name}: {got:?}");
            }
        }
    }

    #[test]
    fn recommender_names_are_botify_names_or_none() {
        let list = |s: &str| recommender_names(&s.split(',').map(String::from).collect::<Vec<_>>());
        assert!(list("none").unwrap().is_empty());
        assert_eq!(
            list(DEFAULT_RECOMMENDERS).unwrap(),
            [
                "sticky_artist",
                "contextual",
                "memory",
                "session_knn",
                "embedding",
                "session_interest"
            ]
        );
        let err = list("sticky_artist,magic").unwrap_err().to_string();
        assert!(
            err.contains("\"magic\"") && err.contains("session_knn") && err.contains("none"),
            "{err}"
        );
        let err = list("memory,memory").unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
