//! A listener's long-term state as the embedded store keeps it, and as
//! `analysis ope` rebuilds it from the logs: one type, so a replayed
//! profile can never drift from the one botify served with.

use std::collections::HashMap;

use super::{ArtistStats, Listen, StateQuery, StateUpdate, UserState};
use crate::catalog::ArtistId;

/// Per-artist listen-time totals and the favourite artist.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    favourite: Option<(ArtistId, f64)>,
    artists: HashMap<ArtistId, ArtistStats>,
}

impl Profile {
    /// Adds `listen` to the queried artist's stats (the first listen ever
    /// also sets the favourite) and returns the long-term state; `None`
    /// when the query asks for no profile, which then stays untouched.
    pub fn add(&mut self, query: StateQuery, listen: Listen) -> Option<UserState> {
        let artist = query.profile_artist?;
        let stats = self.artists.entry(artist).or_default();
        stats.sum += listen.time;
        stats.count += 1;
        let stats = *stats;
        let favourite = *self.favourite.get_or_insert((artist, listen.time));
        Some(UserState {
            listens: Vec::new(),
            favourite: Some(favourite),
            artist: stats,
        })
    }

    /// Writes what a recommender decided.
    pub fn apply(&mut self, update: &StateUpdate) {
        if let Some(favourite) = update.favourite {
            self.favourite = Some(favourite);
        }
    }

    /// Forgets everything (the profile's time to live ran out).
    pub fn clear(&mut self) {
        *self = Profile::default();
    }
}
