//! The random stream of one request, derived from the request itself: the
//! run's seed (`--seed`), the user, the session position and the track just
//! heard. Runs over HTTP are then repeatable whatever the thread or the
//! interleaving, and an offline replay of the log (which holds all four)
//! recomputes the very draw that was served. The track is part of it
//! because without it every session of a user would replay the same draws
//! position by position: `random` would open each of their sessions alike.

use rand::RngCore;

use crate::catalog::TrackId;

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny generator whose output is
/// fixed by its definition, on every platform and every `rand` version —
/// unlike `SmallRng`, which `rand` documents as free to change.
#[derive(Debug, Clone)]
pub struct RequestRng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RequestRng {
    /// The stream of the request of `user` at session position `position`
    /// (the session's listens so far, the reported one included) after
    /// listening to `track`, in the run seeded `seed`. Each part goes
    /// through the mix before the next is folded in, so neighbouring users,
    /// positions or tracks get unrelated streams.
    pub fn new(seed: u64, user: u64, position: u64, track: TrackId) -> RequestRng {
        let mut state = mix(seed);
        for part in [user, position, u64::from(track)] {
            state = mix(state.wrapping_add(GOLDEN_GAMMA) ^ part);
        }
        RequestRng { state }
    }
}

impl RngCore for RequestRng {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_always_gets_the_same_stream_and_its_neighbours_others() {
        let first =
            |seed, user, position, track| RequestRng::new(seed, user, position, track).next_u64();
        assert_eq!(first(0, 7, 3, 5), first(0, 7, 3, 5));
        assert_ne!(first(0, 7, 3, 5), first(0, 7, 4, 5));
        assert_ne!(first(0, 7, 3, 5), first(0, 8, 3, 5));
        assert_ne!(first(0, 7, 3, 5), first(0, 7, 3, 6));
        assert_ne!(first(0, 7, 3, 5), first(1, 7, 3, 5));
        assert_ne!(
            first(0, 3, 7, 5),
            first(0, 7, 3, 5),
            "user and position do not commute"
        );
        // SplitMix64 from state 0: its published first output.
        let mut rng = RequestRng { state: 0 };
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
    }
}
