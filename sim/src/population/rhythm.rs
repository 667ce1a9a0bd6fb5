//! The daily rhythm: when in a day sessions start
//! (docs/user-model.md#daily-rhythm). Listening peaks on the morning commute
//! and in the evening, with some all day; each listener's own rhythm is
//! shifted by their chronotype (early birds, night owls).

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::clock::HOUR_MS;
use crate::rng::SimRng;

/// Share of sessions in the morning peak, around [`MORNING_PEAK_H`].
pub const MORNING_SHARE: f64 = 0.3;
pub const MORNING_PEAK_H: f64 = 8.5;
pub const MORNING_SPREAD_H: f64 = 1.0;
/// Share of sessions in the evening peak, around [`EVENING_PEAK_H`].
pub const EVENING_SHARE: f64 = 0.5;
pub const EVENING_PEAK_H: f64 = 20.0;
pub const EVENING_SPREAD_H: f64 = 1.5;
/// The rest start uniformly between these hours.
pub const DAYTIME_H: (f64, f64) = (7.0, 23.0);
/// Standard deviation of a listener's chronotype shift.
pub const CHRONOTYPE_SPREAD_H: f64 = 1.0;
/// No session starts later than this, so that almost every session ends
/// on the day it started.
pub const LAST_START_H: f64 = 23.0;

/// A listener's chronotype: how many milliseconds their day is shifted.
pub fn chronotype_ms(rng: &mut SimRng) -> f64 {
    Normal::new(0.0, CHRONOTYPE_SPREAD_H)
        .expect("a positive spread")
        .sample(rng)
        * HOUR_MS
}

/// When a session of a listener with `chronotype_ms` starts, in
/// milliseconds after midnight.
pub fn start_of_session(rng: &mut SimRng, chronotype_ms: f64) -> u64 {
    let pick: f64 = rng.gen();
    let hour = if pick < MORNING_SHARE {
        normal(rng, MORNING_PEAK_H, MORNING_SPREAD_H)
    } else if pick < MORNING_SHARE + EVENING_SHARE {
        normal(rng, EVENING_PEAK_H, EVENING_SPREAD_H)
    } else {
        rng.gen_range(DAYTIME_H.0..DAYTIME_H.1)
    };
    (hour * HOUR_MS + chronotype_ms).clamp(0.0, LAST_START_H * HOUR_MS) as u64
}

fn normal(rng: &mut SimRng, mean: f64, sd: f64) -> f64 {
    Normal::new(mean, sd)
        .expect("a positive spread")
        .sample(rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::session_rng;

    #[test]
    fn sessions_peak_in_the_morning_and_the_evening() {
        let mut rng = session_rng(1, 0);
        let mut per_hour = [0u32; 24];
        for _ in 0..100_000 {
            let ms = start_of_session(&mut rng, 0.0);
            assert!(ms as f64 <= LAST_START_H * HOUR_MS);
            per_hour[(ms as f64 / HOUR_MS) as usize] += 1;
        }
        let night = per_hour[3];
        let (morning, noon, evening) = (per_hour[8], per_hour[13], per_hour[20]);
        assert!(morning > 2 * noon, "{per_hour:?}");
        assert!(evening > 2 * noon, "{per_hour:?}");
        assert!(noon > 5 * night.max(1), "{per_hour:?}");
    }

    #[test]
    fn a_chronotype_shifts_the_day() {
        let mean = |shift_h: f64| {
            let mut rng = session_rng(2, 0);
            (0..20_000)
                .map(|_| start_of_session(&mut rng, shift_h * HOUR_MS) as f64)
                .sum::<f64>()
                / 20_000.0
                / HOUR_MS
        };
        let (early, late) = (mean(-1.0), mean(1.0));
        assert!((1.5..2.5).contains(&(late - early)), "{early} {late}");
    }
}
