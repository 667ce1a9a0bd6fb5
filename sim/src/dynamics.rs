//! Listener dynamics (docs/user-model.md#dynamics): what changes a listener
//! from one listen, session and day to the next. `--dynamics none` turns
//! all of it off and leaves the static model of docs/user-model.md, exactly.
//!
//! - **Interest drift**: a session's taste moves toward what was liked.
//! - **Boredom**: an artist or genre heard too often lately loses appeal
//!   until it falls out of the listener's recent window. The window spans
//!   sessions and days: it is the listener's [`Mood`], which the population
//!   keeps between visits.
//! - **New releases**: tracks released in the last [`FRESH_DAYS`] days are
//!   a little more appealing, and sometimes start a session.
//!
//! Returns, churn and the daily rhythm are the population's rules
//! ([`crate::population`]).

use std::collections::VecDeque;

use clap::ValueEnum;

use crate::world::World;

/// Which listener model a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Dynamics {
    /// A population that lives for days: visits with a daily rhythm,
    /// returns that depend on satisfaction, boredom, drift, new releases.
    #[default]
    Full,
    /// The static model: independent sessions of uniformly drawn users,
    /// nothing carried over. Reproduces runs made before dynamics existed.
    None,
}

/// A listen at least this long is a like: it pulls the taste toward the track.
pub const LIKE_TIME: f64 = 0.5;
/// How far one like moves the session's taste toward the liked track.
pub const DRIFT_RATE: f32 = 0.3;
/// Boredom looks at the listener's last this many plays (across sessions).
pub const BOREDOM_WINDOW: usize = 40;
/// An artist with this many plays in the window is boring...
pub const ARTIST_BORED_AT: usize = 8;
/// ...and its tracks are listened this much less.
pub const ARTIST_BOREDOM_FACTOR: f64 = 0.7;
/// A genre with this many plays in the window is boring...
pub const GENRE_BORED_AT: usize = 24;
/// ...and its tracks are listened this much less.
pub const GENRE_BOREDOM_FACTOR: f64 = 0.85;
/// A track released within this many days is fresh.
pub const FRESH_DAYS: u64 = 7;
/// Added to a fresh track's affinity with the listener's taste.
pub const FRESH_AFFINITY_BONUS: f64 = 0.05;
/// Share of sessions that start from the fresh release nearest to the
/// session's interest, when there are fresh releases.
pub const FRESH_START_PROBABILITY: f64 = 0.1;

/// What a listener carries from one session to the next: their recent
/// plays (artist, genre), oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mood {
    recent: VecDeque<(u32, u32)>,
}

impl Mood {
    /// The factor boredom applies to the listen time of `track`.
    pub fn boredom(&self, world: &World, track: u32) -> f64 {
        let (artist, genre) = (world.artist_of(track), world.genre_of(track));
        let (mut same_artist, mut same_genre) = (0, 0);
        for &(a, g) in &self.recent {
            same_artist += usize::from(a == artist);
            same_genre += usize::from(g == genre);
        }
        let mut factor = 1.0;
        if same_artist >= ARTIST_BORED_AT {
            factor *= ARTIST_BOREDOM_FACTOR;
        }
        if same_genre >= GENRE_BORED_AT {
            factor *= GENRE_BOREDOM_FACTOR;
        }
        factor
    }

    /// Remembers a play of `track`, forgetting the oldest past the window.
    pub fn played(&mut self, world: &World, track: u32) {
        if self.recent.len() == BOREDOM_WINDOW {
            self.recent.pop_front();
        }
        self.recent
            .push_back((world.artist_of(track), world.genre_of(track)));
    }
}

/// Moves `taste` toward `liked` by [`DRIFT_RATE`] and renormalises it, so
/// the session's taste stays a unit vector like every embedding.
pub fn drift(taste: &mut [f32], liked: &[f32]) {
    for (t, l) in taste.iter_mut().zip(liked) {
        *t = (1.0 - DRIFT_RATE) * *t + DRIFT_RATE * l;
    }
    let norm = taste.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        taste.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Which tracks are fresh on a day: releases get increasing ids, so the
/// fresh ones are exactly those from the first id released in the last
/// [`FRESH_DAYS`] days on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    pub from: u32,
    pub to: u32,
}

impl Fresh {
    pub const NONE: Fresh = Fresh { from: 0, to: 0 };

    pub fn contains(&self, track: u32) -> bool {
        (self.from..self.to).contains(&track)
    }

    pub fn is_empty(&self) -> bool {
        self.from >= self.to
    }

    /// The fresh track nearest to `interest` by inner product.
    pub fn nearest(&self, world: &World, interest: u32) -> Option<u32> {
        let query = world.embedding(interest);
        (self.from..self.to).max_by(|&a, &b| {
            crate::world::dot(world.embedding(a), query)
                .total_cmp(&crate::world::dot(world.embedding(b), query))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::tests::{tiny_world, user};

    #[test]
    fn an_artist_heard_too_often_lately_is_boring_until_it_leaves_the_window() {
        let emb = vec![[1.0f32, 0.0]; 3];
        let w = tiny_world(&emb, &["A", "A", "B"], vec![user(vec![0], 0.0, 1.0)]);
        let mut mood = Mood::default();
        for _ in 0..ARTIST_BORED_AT - 1 {
            mood.played(&w, 0);
        }
        assert_eq!(mood.boredom(&w, 1), 1.0, "one play short of boredom");
        mood.played(&w, 1);
        assert_eq!(mood.boredom(&w, 1), ARTIST_BOREDOM_FACTOR);
        assert_eq!(mood.boredom(&w, 2), 1.0, "another artist is still fresh");
        for _ in 0..BOREDOM_WINDOW {
            mood.played(&w, 2);
        }
        // The tiny world has one genre, now heard all through the window.
        assert_eq!(
            mood.boredom(&w, 0),
            GENRE_BOREDOM_FACTOR,
            "A has left the window"
        );
        assert_eq!(
            mood.boredom(&w, 2),
            ARTIST_BOREDOM_FACTOR * GENRE_BOREDOM_FACTOR
        );
    }

    #[test]
    fn drift_moves_taste_toward_the_liked_track_and_keeps_it_unit() {
        let mut taste = [1.0f32, 0.0];
        drift(&mut taste, &[0.0, 1.0]);
        let norm = (taste[0] * taste[0] + taste[1] * taste[1]).sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
        assert!(taste[1] > 0.3 && taste[0] > taste[1], "{taste:?}");
    }

    #[test]
    fn fresh_tracks_are_the_id_range_released_lately() {
        let fresh = Fresh { from: 10, to: 20 };
        assert!(fresh.contains(10) && fresh.contains(19));
        assert!(!fresh.contains(9) && !fresh.contains(20));
        assert!(Fresh::NONE.is_empty());
    }
}
