//! Test fixtures shared by the `eval` modules' tests: a small catalog,
//! logs cut into sessions, and recommenders' lists.

use std::sync::Arc;

use botify::catalog::{Catalog, Track};
use botify::models::Models;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::model::{Model, NamedModel};
use super::recommenders::recommender;
use crate::logs::Record;
use crate::sessions::{self, Session};

/// Artists A (tracks 0, 1), B (2, 3, 4), C (5); genres rock (A, B) and
/// jazz (C). Catalog popularity: 3 > 1 > 5 > 2 > 4 > 0.
pub(super) fn catalog() -> Arc<Catalog> {
    let rows = [
        ("A", "rock", 0.1),
        ("A", "rock", 0.5),
        ("B", "rock", 0.3),
        ("B", "rock", 0.9),
        ("B", "rock", 0.2),
        ("C", "jazz", 0.4),
    ];
    let tracks = rows
        .iter()
        .enumerate()
        .map(|(i, &(artist, genre, popularity))| Track {
            track: i as u32,
            artist: artist.into(),
            title: format!("t{i}"),
            genre: Some(genre.into()),
            year: None,
            popularity: Some(popularity),
        })
        .collect();
    Arc::new(Catalog::from_tracks(tracks))
}

/// Sorted records and the closed sessions of `sessions`, one per user
/// (user i + 1), each a list of (track, time) ending with `last`.
pub(super) fn logs(sessions: &[Vec<(u32, f64)>]) -> (Vec<Record>, Vec<Session>) {
    let mut records = Vec::new();
    for (u, listens) in sessions.iter().enumerate() {
        for (i, &(track, time)) in listens.iter().enumerate() {
            let next = listens.get(i + 1).map(|x| x.0);
            let ts = 1_000 * u as u64 + i as u64;
            records.push(Record::new(
                u as u64 + 1,
                ts,
                track,
                time,
                0.001,
                next,
                0,
                next.is_none(),
            ));
        }
    }
    sessions::sort(&mut records);
    let (sessions, _) = sessions::sessionize(&records);
    (records, sessions)
}

pub(super) fn served(name: &str) -> NamedModel {
    recommender(name, catalog(), Arc::new(Models::default())).unwrap()
}

/// The list `named` (a recommender) proposes after position `at` of the
/// first session.
pub(super) fn list(
    named: &NamedModel,
    records: &[Record],
    sessions: &[Session],
    at: usize,
) -> Vec<u32> {
    let Model::Recommender(served) = &named.model else {
        panic!("{} is a table", named.name)
    };
    let mut out = Vec::new();
    let mut rng = SmallRng::seed_from_u64(1);
    let events = sessions[0].events(records);
    served.recommend_list(sessions[0].user, events, at, 6, &mut rng, &mut out);
    out
}
