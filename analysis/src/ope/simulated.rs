//! The simulated estimate: each arm served, with botify's own code, to a
//! listener learned from the logs, and its expected mean time per session.
//!
//! Why a learned listener: importance sampling judges only arms close to
//! the logging arm. Another recommender's picks mostly fall outside a
//! logging arm's candidates, and over a session of fifteen decisions the
//! products of weights leave an effective sample of a handful of sessions,
//! so no log can rank different recommenders that way. A model of the
//! listener can play any arm for as long as the arm keeps it listening.
//! The price is the model's bias; the SNIPS estimates beside it check it
//! where the log supports an arm.
//!
//! The listener is what `analysis train` and the held-out logs already
//! say of listeners:
//! - a session starts where a held-out session started (its first track,
//!   heard in full);
//! - a served track is listened for the listen curve's expected time
//!   (`listen_curve.json`): a logistic function of the track's cosine with
//!   the first track in the trained vectors, discounted per earlier play
//!   of its artist in the session;
//! - after a listen of time `t` the listener asks for another track with
//!   the probability the held-out sessions show after listens of about
//!   `t` ([`Stay`], ten bins of the listened fraction).
//!
//! A session's value is the first track's 1.0 plus each listen's time
//! times the probability the listener is still there, summed until that
//! probability is negligible: the expected mean time per session, counted
//! as `analysis ab` counts it. A stochastic arm's draws are seeded per
//! session and position, so the estimate is reproducible.

use tally::parallel::fan_out;

use botify::catalog::TrackId;
use botify::models::Vector;
use botify::policy::RequestRng;
use botify::recommenders::session::ArtistPlays;
use botify::state::{Listen, Profile, UserState};

use super::replay::{Arm, World};
use crate::logs::Record;
use crate::sessions::Session;

/// Bins of the listened fraction for [`Stay`].
const BINS: usize = 10;

/// Pseudo-observations of the overall stay rate added to each bin, so a
/// bin with few listens leans on the whole.
const PRIOR_WEIGHT: f64 = 20.0;

/// A simulated session ends once the listener is this unlikely to still be
/// there, or after [`MAX_STEPS`] tracks.
const NEGLIGIBLE: f64 = 1e-4;
const MAX_STEPS: usize = 300;

/// The probability of another request after a listen, by listened
/// fraction.
#[derive(Debug, Clone, PartialEq)]
pub struct Stay {
    rate: [f64; BINS],
}

impl Stay {
    /// From `sessions` (whose events are in `records`): each recommended
    /// listen (every event after the first), binned by its time, and
    /// whether the session went on after it.
    pub fn fit(records: &[Record], sessions: &[Session]) -> Stay {
        let mut stayed = [0.0; BINS];
        let mut listens = [0.0; BINS];
        for session in sessions {
            let events = session.events(records);
            for (position, event) in events.iter().enumerate().skip(1) {
                let bin = bin(event.time);
                listens[bin] += 1.0;
                if position + 1 < events.len() {
                    stayed[bin] += 1.0;
                }
            }
        }
        let overall = stayed.iter().sum::<f64>() / listens.iter().sum::<f64>().max(1.0);
        let mut rate = [0.0; BINS];
        for (b, r) in rate.iter_mut().enumerate() {
            *r = (stayed[b] + PRIOR_WEIGHT * overall) / (listens[b] + PRIOR_WEIGHT);
        }
        Stay { rate }
    }

    pub fn after(&self, time: f64) -> f64 {
        self.rate[bin(time)]
    }
}

fn bin(time: f64) -> usize {
    ((time.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1)
}

/// The listener learned from the logs, and where its sessions start.
pub struct Listener<'w> {
    pub world: &'w World,
    pub stay: Stay,
    /// First tracks of the simulated sessions.
    pub starts: Vec<TrackId>,
}

impl Listener<'_> {
    /// How long the listener hears `track` in a session that started on a
    /// track of vector `first`, after `plays` earlier plays of its artist.
    fn listen_time(&self, first: Option<&[f32]>, track: TrackId, plays: u32) -> f64 {
        let index = &self.world.models.embedding;
        let cosine = match (first, index.vector(track)) {
            (Some(first), Some(v)) => v.dot(first),
            // A track without a vector is as far as an unrelated one.
            _ => 0.0,
        };
        f64::from(self.world.models.listen_curve.expected_time(cosine, plays))
    }

    /// The expected time of one session of `arm` started on `starts[index]`
    /// (`seed` seeds a stochastic arm's draws).
    fn session(&self, arm: &Arm, index: usize, seed: u64) -> f64 {
        let catalog = &*self.world.catalog;
        let first = self.starts[index];
        let first_vector = self
            .world
            .models
            .embedding
            .vector(first)
            .map(Vector::to_vec);
        let user = index as u64;
        let mut state = UserState::default();
        let mut profile = Profile::default();
        let mut plays = ArtistPlays::default();
        plays.record(catalog.artist_of(first));
        let mut listen = Listen {
            track: first,
            time: 1.0,
        };
        let (mut value, mut here) = (1.0, 1.0);
        for position in 0..MAX_STEPS {
            let mut rng = RequestRng::new(seed, user, position as u64, listen.track);
            let served = arm.serve(self.world, &mut state, &mut profile, user, listen, &mut rng);
            // `serve` recorded the listen: a served track already in the
            // session is botify's last resort, with nothing else left.
            if state.listens.iter().any(|l| l.track == served) {
                break;
            }
            let earlier = plays.record(catalog.artist_of(served));
            let time = self.listen_time(first_vector.as_deref(), served, earlier);
            value += here * time;
            here *= self.stay.after(time);
            if here < NEGLIGIBLE {
                break;
            }
            listen = Listen {
                track: served,
                time,
            };
        }
        value
    }

    /// Each arm's expected mean time per session over every start, on
    /// `threads` threads.
    pub fn mean_session_time(&self, arms: &[Arm], seed: u64, threads: usize) -> Vec<f64> {
        let threads = threads.max(1);
        let starts = self.starts.len();
        let parts = fan_out(0..threads, |part| {
            let mut sums = vec![0.0; arms.len()];
            for index in (part..starts).step_by(threads) {
                for (sum, arm) in sums.iter_mut().zip(arms) {
                    *sum += self.session(arm, index, seed);
                }
            }
            sums
        });
        let mut totals = vec![0.0; arms.len()];
        for sums in parts {
            totals.iter_mut().zip(sums).for_each(|(t, s)| *t += s);
        }
        totals
            .into_iter()
            .map(|t| t / starts.max(1) as f64)
            .collect()
    }
}

/// The first tracks of `sessions`, at most `most` of them evenly strided
/// (sessions come in start order, so the stride spans the whole period).
pub fn starts(records: &[Record], sessions: &[Session], most: usize) -> Vec<TrackId> {
    let stride = sessions.len().div_ceil(most.max(1)).max(1);
    sessions
        .iter()
        .step_by(stride)
        .filter_map(|s| s.events(records).first().map(|e| e.track))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use botify::catalog::{Catalog, Track};
    use botify::models::Models;

    use super::*;
    use crate::train::testing::data;

    #[test]
    fn the_stay_rate_follows_the_logs_by_listened_fraction() {
        // After a long listen the session goes on; a skip ends it.
        let session: &[(u32, f64)] = &[(0, 1.0), (1, 0.95), (2, 0.05)];
        let (records, sessions) = data(&[session; 50]);
        let stay = Stay::fit(&records, &sessions);
        // 50 of 50 stayed, with 20 pseudo-listens at the overall 50%.
        assert!((stay.after(0.95) - 60.0 / 70.0).abs() < 1e-12);
        assert!((stay.after(0.05) - 10.0 / 70.0).abs() < 1e-12);
        // A bin without listens is the overall rate.
        assert!((stay.after(0.5) - 0.5).abs() < 1e-12);
        assert_eq!(stay.after(1.0), stay.after(0.95), "1.0 is the last bin");
    }

    #[test]
    fn starts_are_the_first_tracks_of_evenly_strided_sessions() {
        let sessions: Vec<Vec<(u32, f64)>> = (0..10).map(|i| vec![(i, 1.0), (99, 0.5)]).collect();
        let refs: Vec<&[(u32, f64)]> = sessions.iter().map(Vec::as_slice).collect();
        let (records, sessions) = data(&refs);
        assert_eq!(starts(&records, &sessions, 5), [0, 2, 4, 6, 8]);
        assert_eq!(starts(&records, &sessions, 100).len(), 10);
    }

    /// Tracks 0–2 by artist a, 3 by b; vectors: 0 and 1 along x, 2 at 60°
    /// from x, 3 along y. Every track lists every other as a neighbour.
    /// The listen curve: a logistic of sharpness 4 around cosine 0.5,
    /// halved per earlier play of the artist.
    fn world() -> (tempfile::TempDir, World) {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            (0, [1.0, 0.0]),
            (1, [1.0, 0.0]),
            (2, [0.5, 0.866_025_4]),
            (3, [0.0, 1.0]),
        ];
        let lines: Vec<String> = rows
            .iter()
            .map(|(t, v)| {
                let others: Vec<u32> = (0..4).filter(|o| o != t).collect();
                format!(
                    r#"{{"track":{t},"vector":[{},{}],"neighbours":{others:?}}}"#,
                    v[0], v[1]
                )
            })
            .collect();
        std::fs::write(dir.path().join("embedding.jsonl"), lines.join("\n")).unwrap();
        std::fs::write(
            dir.path().join("listen_curve.json"),
            r#"{"bias":0.5,"sharpness":4.0,"discount":0.5}"#,
        )
        .unwrap();
        let track = |t: u32, artist: &str| Track {
            track: t,
            artist: artist.to_string(),
            title: format!("t{t}"),
            genre: None,
            year: None,
            popularity: None,
        };
        let catalog = Catalog::from_tracks(vec![
            track(0, "a"),
            track(1, "a"),
            track(2, "a"),
            track(3, "b"),
        ]);
        let models = Models::load(dir.path()).unwrap();
        (dir, World::new(Arc::new(catalog), Arc::new(models)))
    }

    fn curve(cosine: f64, plays: i32) -> f64 {
        0.5f64.powi(plays) / (1.0 + (-(cosine - 0.5) * 4.0).exp())
    }

    #[test]
    fn a_session_is_the_first_track_plus_each_listen_weighed_by_the_chance_to_be_there() {
        let (_dir, world) = world();
        let arm = Arm::parse("session_interest").unwrap();
        let value = |rate: f64| {
            let listener = Listener {
                world: &world,
                stay: Stay { rate: [rate; BINS] },
                starts: vec![0],
            };
            listener.mean_session_time(std::slice::from_ref(&arm), 1, 1)[0]
        };
        // The first answer to track 0: track 1 (cosine 1, artist a heard
        // once), which the listener leaves after when it never stays.
        let first = curve(1.0, 1);
        assert!((value(0.0) - (1.0 + first)).abs() < 1e-6, "{}", value(0.0));
        // Staying half the time, each later listen counts half as much
        // as the one before; the catalog runs out after three answers.
        let all = value(0.5);
        assert!(all > 1.0 + first, "{all}");
        assert!(all < 1.0 + first + 0.5 + 0.25, "{all}");
    }

    #[test]
    fn the_estimate_tells_a_recommender_from_a_uniform_draw() {
        let (_dir, world) = world();
        let listener = Listener {
            world: &world,
            stay: Stay { rate: [0.0; BINS] },
            starts: vec![0; 200],
        };
        let arms = [
            Arm::parse("session_interest").unwrap(),
            Arm::parse("random").unwrap(),
        ];
        let values = listener.mean_session_time(&arms, 1, 2);
        // random draws 1, 2 or 3 evenly: a third of the time the best.
        let random = (curve(1.0, 1) + curve(0.5, 1) + curve(0.0, 0)) / 3.0;
        assert!((values[0] - (1.0 + curve(1.0, 1))).abs() < 1e-6);
        assert!((values[1] - (1.0 + random)).abs() < 0.05, "{values:?}");
        assert!(values[0] > values[1]);
    }
}
