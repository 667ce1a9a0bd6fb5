//! New tracks released during a multi-day run
//! (docs/user-model.md#new-releases). The catalog grows every day, so
//! cold start is real: botify hears of each release (`POST /admin/tracks`,
//! or the engine's own `add_track` in-process) before anyone plays it, with
//! no plays in any log and a catalog popularity of 0.
//!
//! A release is by an existing artist, drawn the way listeners' interests
//! are (the artist of a random listener's random interest, so popular
//! artists release more), and sits near that artist's other tracks in the
//! hidden embedding space, as the generator places tracks.

use botify::catalog::Track;
use rand::Rng;

use super::generate::{add, gaussian, unit, TRACK_SPREAD};
use super::{names, World, WorldData};
use crate::rng::SimRng;

/// Year stamped on releases (the simulated clock starts in 2026).
pub const RELEASE_YEAR: i32 = 2026;

/// Default releases per day: this share of the initial catalog.
pub const DAILY_RELEASE_SHARE: f64 = 0.005;

/// One released track: its catalog record and hidden embedding.
#[derive(Debug, Clone)]
pub struct Release {
    pub track: Track,
    pub embedding: Vec<f32>,
}

/// `count` new tracks for `world`, with ids following its catalog.
pub fn draw(data: &WorldData, world: &World, count: usize, rng: &mut SimRng) -> Vec<Release> {
    let first_id = data.tracks.len() as u32;
    (0..count as u32)
        .map(|i| {
            let user = world.user(rng.gen_range(0..world.num_users()));
            let seed_track = user.interests[rng.gen_range(0..user.interests.len())];
            let artist = world.artist_of(seed_track);
            let direction = artist_direction(world, artist);
            let noise = gaussian(rng, world.dim(), TRACK_SPREAD);
            let embedding = unit(add(&direction, &noise))
                .into_iter()
                .map(|x| x as f32)
                .collect();
            let sibling = &data.tracks[seed_track as usize];
            Release {
                track: Track {
                    track: first_id + i,
                    artist: sibling.artist.clone(),
                    title: names::title(rng),
                    genre: sibling.genre.clone(),
                    year: Some(RELEASE_YEAR),
                    popularity: Some(0.0),
                },
                embedding,
            }
        })
        .collect()
}

/// The unit mean of an artist's tracks: where its next track will land.
fn artist_direction(world: &World, artist: u32) -> Vec<f64> {
    let mut sum = vec![0.0f64; world.dim()];
    for &t in world.artist_tracks(artist) {
        for (s, &x) in sum.iter_mut().zip(world.embedding(t)) {
            *s += f64::from(x);
        }
    }
    unit(sum)
}

impl WorldData {
    /// Appends released tracks (their ids must follow the catalog).
    pub fn release(&mut self, releases: &[Release]) {
        for release in releases {
            debug_assert_eq!(release.track.track as usize, self.tracks.len());
            self.tracks.push(release.track.clone());
            self.embeddings.extend_from_slice(&release.embedding);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::session_rng;
    use crate::world::{dot, generate, WorldParams};

    #[test]
    fn releases_follow_the_catalog_and_sit_near_their_artist() {
        let params = WorldParams {
            tracks: 2000,
            users: 300,
            ..WorldParams::default()
        };
        let mut data = generate(&params, false).unwrap();
        let world = World::new(data.clone()).unwrap();
        let releases = draw(&data, &world, 50, &mut session_rng(1, 0));
        assert_eq!(releases[0].track.track, 2000);
        assert_eq!(releases[49].track.track, 2049);
        let mut near = 0;
        for r in &releases {
            let siblings: Vec<u32> = (0..2000u32)
                .filter(|&t| data.tracks[t as usize].artist == r.track.artist)
                .collect();
            let mean_sibling = siblings
                .iter()
                .map(|&t| dot(&r.embedding, world.embedding(t)))
                .sum::<f32>()
                / siblings.len() as f32;
            near += usize::from(mean_sibling > 0.5);
            assert_eq!(r.track.popularity, Some(0.0));
        }
        assert!(near >= 45, "{near} of 50 releases near their artist");
        data.release(&releases);
        let grown = World::new(data).unwrap();
        assert_eq!(grown.num_tracks(), 2050);
    }
}
