//! Lists for users with no session yet: `/top`, `/similar` and the
//! catalog search a listener picks a first track with (`/tracks?q=`).
//!
//! Both rank from the trained tables when `--models` has them and fall back
//! to catalog popularity and metadata, so a fresh deployment answers too.
//! Neither touches the state store.

use super::{Engine, RequestError};
use crate::catalog::{Catalog, TrackId};
use crate::filters::Filters;
use crate::models::DEFAULT_TABLE;
use crate::recommenders;

impl Engine {
    /// The most popular servable tracks, in `genre` when given (cold start).
    pub fn top(&self, genre: Option<&str>, k: usize) -> Vec<TrackId> {
        let guard = self.catalog.load();
        let catalog: &Catalog = &guard;
        let models = self.models.load();
        let filters = self.filters.load();
        let ranked: Box<dyn Iterator<Item = TrackId>> = match (genre, &models.top_tracks) {
            (Some(genre), Some(top)) => Box::new(
                top.iter()
                    .copied()
                    .filter(move |&t| {
                        catalog.get(t).and_then(|r| r.genre.as_deref()) == Some(genre)
                    })
                    .chain(catalog.tracks_of_genre(genre).iter().copied()),
            ),
            (Some(genre), None) => Box::new(catalog.tracks_of_genre(genre).iter().copied()),
            (None, Some(top)) => Box::new(
                top.iter()
                    .copied()
                    .chain(catalog.by_popularity().iter().copied()),
            ),
            (None, None) => Box::new(catalog.by_popularity().iter().copied()),
        };
        distinct_servable(ranked, catalog, &filters, None, k)
    }

    /// Up to `k` servable tracks whose artist or title contains `query`
    /// (ignoring case), most popular first.
    pub fn search(&self, query: &str, k: usize) -> Vec<TrackId> {
        let catalog = self.catalog.load();
        let filters = self.filters.load();
        distinct_servable(catalog.search(query), &catalog, &filters, None, k)
    }

    /// Tracks similar to `track`: the trained table, then catalog metadata.
    pub fn similar(&self, track: TrackId, k: usize) -> Result<Vec<TrackId>, RequestError> {
        let catalog = self.catalog.load();
        if !catalog.contains(track) {
            return Err(RequestError::UnknownTrack(track));
        }
        let models = self.models.load();
        let filters = self.filters.load();
        let ranked = recommenders::neighbours(&catalog, &models, DEFAULT_TABLE, track);
        Ok(distinct_servable(
            ranked,
            &catalog,
            &filters,
            Some(track),
            k,
        ))
    }
}

/// The first `k` distinct tracks of `ranked` that exist, are not blocked and
/// are not `exclude`.
fn distinct_servable(
    ranked: impl Iterator<Item = TrackId>,
    catalog: &Catalog,
    filters: &Filters,
    exclude: Option<TrackId>,
    k: usize,
) -> Vec<TrackId> {
    let mut out = Vec::with_capacity(k);
    for t in ranked {
        if out.len() >= k {
            break;
        }
        if catalog.contains(t)
            && Some(t) != exclude
            && !filters.is_blocked(catalog, t)
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    out
}
