//! A multi-day simulation's state between days: the world (which grows
//! with new releases), the population and its moods. `sim run` and
//! `sim experiment` drive it the same way:
//!
//! ```text
//! for each day: release() → tell botify of the new tracks
//!               plan()    → play the day's Work (in-process or HTTP)
//!               settle()  ← the visits' outcomes
//! ```
//!
//! With `--dynamics none` there is no population and no release: each day
//! is the static model's plan, exactly as before dynamics existed.

use anyhow::Result;
use botify::catalog::Track;

use super::{Plan, Work};
use crate::dynamics::{Dynamics, Fresh, FRESH_DAYS};
use crate::population::{DayCounts, Population, VisitOutcome};
use crate::rng::derived_rng;
use crate::world::releases::{self, DAILY_RELEASE_SHARE};
use crate::world::{World, WorldData};

const RELEASE_DOMAIN: u64 = 0x2e1e_a5e0;

/// Worlds up to this many tracks get every interest's neighbours computed
/// when (re)built, so runs measure listening, not lazy nearest-neighbour
/// searches. Bigger worlds stay lazy.
const PRECOMPUTE_NEIGHBOURS_UP_TO: usize = 200_000;

pub struct Days {
    data: WorldData,
    world: World,
    seed: u64,
    episodes: u64,
    population: Option<Population>,
    releases_per_day: usize,
    /// The first track id released on each day, by day.
    first_release: Vec<(u64, u32)>,
}

impl Days {
    /// `episodes` is the static model's sessions per day, or with dynamics
    /// the sessions the population is scaled to hold on its first day.
    /// `releases_per_day` defaults to half a percent of the catalog.
    pub fn new(
        data: WorldData,
        dynamics: Dynamics,
        seed: u64,
        episodes: u64,
        releases_per_day: Option<usize>,
    ) -> Result<Days> {
        let world = build_world(&data)?;
        let (population, releases_per_day) = match dynamics {
            Dynamics::None => (None, 0),
            Dynamics::Full => (
                Some(Population::new(&world, seed, episodes)),
                releases_per_day.unwrap_or_else(|| {
                    (data.tracks.len() as f64 * DAILY_RELEASE_SHARE).round() as usize
                }),
            ),
        };
        Ok(Days {
            data,
            world,
            seed,
            episodes,
            population,
            releases_per_day,
            first_release: Vec::new(),
        })
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// Whether any track was released so far.
    pub fn released_any(&self) -> bool {
        !self.first_release.is_empty()
    }

    /// The catalog as it stands, releases included.
    pub fn tracks(&self) -> &[Track] {
        &self.data.tracks
    }

    /// Releases `day`'s new tracks into the world (none on day 0, none
    /// without dynamics) and returns them, for botify to learn of before
    /// anyone can play them.
    pub fn release(&mut self, day: u64) -> Result<Vec<Track>> {
        if day == 0 || self.releases_per_day == 0 {
            return Ok(Vec::new());
        }
        let mut rng = derived_rng(self.seed, RELEASE_DOMAIN, day);
        let released = releases::draw(&self.data, &self.world, self.releases_per_day, &mut rng);
        self.first_release
            .push((day, self.data.tracks.len() as u32));
        self.data.release(&released);
        self.world = build_world(&self.data)?;
        Ok(released.into_iter().map(|r| r.track).collect())
    }

    /// The day's sessions. `static_plan` is what the static model plays
    /// (callers number sessions their own way); with dynamics, the
    /// population's visits, and counts of who visits.
    pub fn plan(&mut self, day: u64, static_plan: Plan) -> (Work, Option<DayCounts>) {
        let Some(population) = &mut self.population else {
            return (Work::Plan(static_plan), None);
        };
        let (visits, counts) = population.plan_day(day);
        let fresh = Fresh {
            from: self
                .first_release
                .iter()
                .find(|(released, _)| released + FRESH_DAYS > day)
                .map_or(self.data.tracks.len() as u32, |&(_, id)| id),
            to: self.data.tracks.len() as u32,
        };
        (Work::Visits { visits, fresh }, Some(counts))
    }

    /// The static model's plan for `day`: fresh sessions every day.
    pub fn static_plan(&self, day: u64) -> Plan {
        Plan::day(self.seed, day, self.episodes)
    }

    /// Takes back a day's outcomes (nothing to do without dynamics).
    pub fn settle(&mut self, day: u64, outcomes: Vec<VisitOutcome>) {
        if let Some(population) = &mut self.population {
            population.settle(day, outcomes);
        }
    }
}

fn build_world(data: &WorldData) -> Result<World> {
    let world = World::new(data.clone())?;
    if world.num_tracks() <= PRECOMPUTE_NEIGHBOURS_UP_TO {
        world.precompute_interest_neighbours();
    }
    Ok(world)
}

/// A day's counts as a progress line.
pub fn describe(day_label: &str, counts: &DayCounts) -> String {
    format!(
        "{day_label}: {} listeners visit ({} come back after churning; {} churned before the day), {} sessions",
        counts.visitors, counts.comebacks, counts.churned, counts.sessions
    )
}
