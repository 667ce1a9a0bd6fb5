//! Calibration of the world against the analysts' figures
//! (docs/user-model.md#calibration): an A/B of botify's `random` against
//! `sticky_artist` with the dynamics on, read with `analysis ab`, must give
//! random a `mean_time_per_session` in [`ANALYSTS_RANDOM_TARGET`] and
//! sticky-artist an effect in [`ANALYSTS_STICKY_EFFECT_TARGET`]; over days,
//! sticky-artist's listeners must come back more ([`returns`]). Also the
//! reference agents against the static model, without botify ([`play`]).
//! `sim calibrate` prints these numbers; the tests below pin them.

use std::ops::RangeInclusive;

use anyhow::Result;
use indicatif::ProgressBar;

use crate::agents::Agent;
use crate::dynamics::Dynamics;
use crate::runner::days::Days;
use crate::runner::in_process::{self, Policy};
use crate::runner::{Plan, Summary};
use crate::world::World;

/// Plays `sessions` sessions with `agent`: sessions `0..sessions` of the
/// run with `seed` (see [`crate::runner`]), so two agents simulated with the
/// same seed face the same users, interests and first tracks — their
/// difference has less noise than two independent samples would.
///
/// The summary's `reward` is the session time (first track excluded) and its
/// `steps` the recommended tracks per session.
pub fn play(world: &World, agent: &mut dyn Agent, sessions: u64, seed: u64) -> Result<Summary> {
    let plan = Plan {
        seed,
        first: 0,
        episodes: sessions,
    };
    in_process::run(
        world,
        plan,
        &mut Policy::Agent(agent),
        &ProgressBar::hidden(),
    )
}

/// Where the analysts' `mean_time_per_session` (first track included,
/// averaged over users) of a `random` arm must fall, with dynamics on.
pub const ANALYSTS_RANDOM_TARGET: RangeInclusive<f64> = 1.7..=2.4;
/// `sticky_artist`'s relative effect on it against `random`.
pub const ANALYSTS_STICKY_EFFECT_TARGET: RangeInclusive<f64> = 0.30..=0.60;

/// The experiment a calibration A/B runs: control `random`, treatment
/// `sticky_artist`, both botify's own recommenders.
pub const CALIBRATION_EXPERIMENT: &str = "CALIBRATION";

/// One calibration A/B, read the way analysts read it (`analysis ab`).
#[derive(Debug, Clone)]
pub struct AnalystsCalibration {
    /// Sessions played.
    pub sessions: u64,
    /// `mean_time_per_session` of the random arm.
    pub random: f64,
    /// `sticky_artist`'s relative effect, with its 95% interval.
    pub sticky_effect: f64,
    pub sticky_interval: (f64, f64),
}

/// Plays `days` days of a random-vs-sticky_artist A/B in-process through
/// botify's engine with the dynamics on, the population scaled to
/// `sessions` on its first day, logging into `log_dir` (one `day-<n>`
/// folder per day), and reads the first day's A/B table with the analysts'
/// code.
pub fn analysts_ab(
    data: crate::world::WorldData,
    sessions: u64,
    seed: u64,
    days: u64,
    log_dir: &std::path::Path,
) -> Result<AnalystsCalibration> {
    use anyhow::Context as _;

    let catalog = log_dir.join("catalog.jsonl");
    crate::world::write_catalog(&catalog, &data.tracks)?;
    let experiments = log_dir.join("experiments.toml");
    std::fs::write(
        &experiments,
        format!(
            "active = \"{CALIBRATION_EXPERIMENT}\"\n[[experiment]]\nname = \"{CALIBRATION_EXPERIMENT}\"\narms = [\"random\", \"sticky_artist\"]\n"
        ),
    )?;
    let mut config = botify::config::Config::for_catalog(catalog);
    config.experiments = experiments;
    config.models = log_dir.join("no-models");
    config.redis_url = None;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let engine = runtime.block_on(async { botify::app::build_engine(&config, None) })?;
    let mut life = Days::new(data, Dynamics::Full, seed, sessions, None)?;
    let mut first_day = 0;
    for day in 0..days {
        for track in life.release(day)? {
            engine.add_track(track)?;
        }
        let (work, _) = life.plan(day, life.static_plan(day));
        let folder = log_dir.join(format!("day-{}", day + 1));
        let (summary, outcomes, _) = in_process::run_logged(
            life.world(),
            &engine,
            &runtime,
            work,
            &folder,
            config.log_max_bytes,
            &format!("calibration day {}", day + 1),
        )?;
        life.settle(day, outcomes);
        if day == 0 {
            first_day = summary.sessions();
        }
    }
    let options = analysis::logs::ReadOptions {
        experiment: Some(CALIBRATION_EXPERIMENT.into()),
        ..analysis::logs::ReadOptions::default()
    };
    let files = analysis::logs::resolve(&[log_dir.join("day-1").display().to_string()])?;
    let logs = analysis::logs::read(&files, &options)?;
    let table = analysis::ab::analyze(logs.records, CALIBRATION_EXPERIMENT, Some(2), 0)?.table;
    let row = table
        .rows
        .iter()
        .find(|r| r.metric == MEAN_TIME_PER_SESSION)
        .context("the A/B table has no mean_time_per_session row")?;
    Ok(AnalystsCalibration {
        sessions: first_day,
        random: table.arms[0].metrics[MEAN_TIME_PER_SESSION_INDEX].mean(),
        sticky_effect: row.estimate.effect / 100.0,
        sticky_interval: (row.estimate.lower / 100.0, row.estimate.upper / 100.0),
    })
}

/// How an arm's listeners of the first day came back over the next days.
#[derive(Debug, Clone)]
pub struct Returns {
    /// Listeners of the arm active on day 1.
    pub listeners: u64,
    /// Share of them active again on a later day.
    pub returned: f64,
    /// Days each was active (day 1 included), over all days of the logs.
    pub active_days: tally::Moments,
}

/// Returns per arm of the calibration experiment, from `days` day folders
/// of [`analysts_ab`]'s log.
pub fn returns(log_dir: &std::path::Path, days: u64) -> Result<Vec<Returns>> {
    use std::collections::HashMap;

    let options = analysis::logs::ReadOptions {
        experiment: Some(CALIBRATION_EXPERIMENT.into()),
        ..analysis::logs::ReadOptions::default()
    };
    // user → (arm, days active as a bit set)
    let mut seen: HashMap<u64, (u8, u64)> = HashMap::new();
    for day in 0..days.min(64) {
        let folder = log_dir.join(format!("day-{}", day + 1));
        let files = analysis::logs::resolve(&[folder.display().to_string()])?;
        for record in analysis::logs::read(&files, &options)?.records {
            let entry = seen.entry(record.user).or_insert((record.arm, 0));
            entry.1 |= 1 << day;
        }
    }
    let mut arms: Vec<Returns> = (0..2)
        .map(|_| Returns {
            listeners: 0,
            returned: 0.0,
            active_days: tally::Moments::default(),
        })
        .collect();
    for (arm, active) in seen.into_values() {
        let Some(summary) = arms.get_mut(arm as usize) else {
            continue;
        };
        if active & 1 == 0 {
            continue;
        }
        summary.listeners += 1;
        summary.returned += f64::from(u8::from(active > 1));
        summary.active_days.add(f64::from(active.count_ones()));
    }
    for arm in &mut arms {
        arm.returned /= arm.listeners.max(1) as f64;
    }
    Ok(arms)
}

const MEAN_TIME_PER_SESSION: &str = "mean_time_per_session";
const MEAN_TIME_PER_SESSION_INDEX: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{generate, WorldParams};

    fn world_data(seed: u64) -> crate::world::WorldData {
        let params = WorldParams {
            seed,
            ..WorldParams::default()
        };
        generate(&params, false).unwrap()
    }

    /// The calibration contract: a 20,000-session A/B of random against
    /// sticky_artist, read by the analysts' code, on the default world and
    /// on a world of another seed.
    #[test]
    fn worlds_meet_the_analysts_calibration_targets() {
        for seed in [42, 7] {
            let logs = tempfile::tempdir().unwrap();
            let ab = analysts_ab(world_data(seed), 20_000, 42, 1, logs.path()).unwrap();
            assert!(
                (18_000..22_000).contains(&ab.sessions),
                "world {seed}: {} sessions",
                ab.sessions
            );
            assert!(
                ANALYSTS_RANDOM_TARGET.contains(&ab.random),
                "world {seed}: random mean_time_per_session {:.4}",
                ab.random
            );
            assert!(
                ANALYSTS_STICKY_EFFECT_TARGET.contains(&ab.sticky_effect),
                "world {seed}: sticky_artist effect {:.3}",
                ab.sticky_effect
            );
        }
    }

    /// Over 7 days, listeners served sticky_artist come back more, and on
    /// more days, than listeners served random: significantly.
    #[test]
    fn sticky_artist_listeners_come_back_more_than_random_ones() {
        let logs = tempfile::tempdir().unwrap();
        analysts_ab(world_data(42), 6_000, 42, 7, logs.path()).unwrap();
        let arms = returns(logs.path(), 7).unwrap();
        let (random, sticky) = (&arms[0], &arms[1]);
        assert!(
            random.listeners > 1000 && sticky.listeners > 1000,
            "{arms:?}"
        );
        let pooled = (random.returned * random.listeners as f64
            + sticky.returned * sticky.listeners as f64)
            / (random.listeners + sticky.listeners) as f64;
        let se_return = (pooled
            * (1.0 - pooled)
            * (1.0 / random.listeners as f64 + 1.0 / sticky.listeners as f64))
            .sqrt();
        assert!(
            sticky.returned - random.returned > 1.96 * se_return,
            "return: random {:.3}, sticky {:.3} (s.e. {se_return:.4})",
            random.returned,
            sticky.returned
        );
        let difference = sticky.active_days.mean() - random.active_days.mean();
        let se = (random.active_days.standard_error().powi(2)
            + sticky.active_days.standard_error().powi(2))
        .sqrt();
        assert!(
            difference > 1.96 * se,
            "active days: random {:.3}, sticky {:.3} (s.e. of the difference {se:.4})",
            random.active_days.mean(),
            sticky.active_days.mean()
        );
    }
}
