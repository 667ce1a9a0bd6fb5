//! The simulated clock (docs/user-model.md#days-and-the-clock).
//!
//! A multi-day run plays days in minutes, but its event log should read like
//! those days: analysts cut sessions, count returns and chart daily rhythms
//! from timestamps. So the simulator keeps its own clock. Day `d` (0-based)
//! starts at [`EPOCH_MS`] plus `d` days, and listening takes time: a track
//! heard for fraction `t` of its duration advances the clock by that much.

/// 2026-01-01T00:00:00Z in epoch milliseconds: day 0 of every simulation.
pub const EPOCH_MS: u64 = 1_767_225_600_000;
pub const DAY_MS: u64 = 86_400_000;
pub const HOUR_MS: f64 = 3_600_000.0;

/// Tracks last from this long to this plus [`DURATION_SPREAD_MS`].
const SHORTEST_TRACK_MS: u64 = 150_000;
const DURATION_SPREAD_MS: u64 = 120_000;
/// Even an instant skip takes a listener this long.
const SHORTEST_LISTEN_MS: u64 = 5_000;

/// When simulated day `day` (0-based) begins.
pub fn day_start(day: u64) -> u64 {
    EPOCH_MS + day * DAY_MS
}

/// A track's duration: 2.5 to 4.5 minutes, fixed per track by a hash of its
/// id (the catalog carries no durations, and none is needed beyond this).
pub fn track_duration_ms(track: u32) -> u64 {
    let mut z = u64::from(track).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z ^= z >> 31;
    SHORTEST_TRACK_MS + z % DURATION_SPREAD_MS
}

/// How long hearing `fraction` of `track` takes.
pub fn listen_ms(track: u32, fraction: f64) -> u64 {
    ((track_duration_ms(track) as f64 * fraction).round() as u64).max(SHORTEST_LISTEN_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_zero_is_new_year_2026_and_days_are_24_hours() {
        // 2026-01-01T00:00:00Z = 56 years of days since 1970 (14 leap years).
        assert_eq!(EPOCH_MS / DAY_MS, 56 * 365 + 14);
        assert_eq!(EPOCH_MS % DAY_MS, 0);
        assert_eq!(day_start(3) - day_start(2), DAY_MS);
    }

    #[test]
    fn durations_are_between_two_and_a_half_and_four_and_a_half_minutes() {
        let durations: Vec<u64> = (0..10_000).map(track_duration_ms).collect();
        assert!(durations.iter().all(|d| (150_000..270_000).contains(d)));
        let mean = durations.iter().sum::<u64>() as f64 / durations.len() as f64;
        assert!((200_000.0..220_000.0).contains(&mean), "{mean}");
        assert_eq!(track_duration_ms(7), track_duration_ms(7));
    }

    #[test]
    fn a_listen_takes_its_fraction_of_the_track_and_a_skip_a_few_seconds() {
        let full = track_duration_ms(3);
        assert_eq!(listen_ms(3, 1.0), full);
        assert_eq!(listen_ms(3, 0.5), (full as f64 * 0.5).round() as u64);
        assert_eq!(listen_ms(3, 0.0), SHORTEST_LISTEN_MS);
    }
}
