//! What one recommendation costs in-process: nanoseconds per `candidates`
//! call of one recommender, without HTTP, state store or logging.
//!
//! `/next` under wrk measures the whole service, and on a 2-core machine
//! the kernel's loopback and the load generator share the cores, so two
//! versions of a recommender differ there by little more than the noise.
//! This times the recommender alone, on 4,000 synthetic sessions (random
//! tracks, listen times and lengths of 1–20, one fixed seed), best of seven
//! passes.
//!
//! `cargo run --release -p botify --example recommend_cost -- CATALOG MODELS [RECOMMENDER] [TOP]`
//! (RECOMMENDER defaults to `session_interest`, TOP, the policy's
//! candidate count, to 1 as for a greedy arm).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use botify::catalog::Catalog;
use botify::experiments::ArmSpec;
use botify::filters::Filters;
use botify::models::Models;
use botify::recommenders::{build, Allowed, Context};
use botify::state::{Listen, StateUpdate, UserState};

// The allocator botify serves with: allocation costs and the alignment of
// the vector table are as in the service.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SESSIONS: usize = 4000;
const PASSES: usize = 7;

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [catalog, models, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: recommend_cost CATALOG MODELS [RECOMMENDER] [TOP]");
    };
    let name = rest.first().map_or("session_interest", String::as_str);
    let top: usize = match rest.get(1) {
        None => 1,
        Some(top) => top
            .parse()
            .with_context(|| format!("TOP: expected a whole number, got {top:?}"))?,
    };
    let catalog = Catalog::load(Path::new(catalog))?;
    let models = Models::load(Path::new(models))?;
    let recommender = build(&ArmSpec::Name(name.to_string()))?;
    let mut rng = SmallRng::seed_from_u64(1);
    let sessions: Vec<UserState> = (0..SESSIONS)
        .map(|_| UserState {
            listens: (0..rng.gen_range(1..=20))
                .map(|_| Listen {
                    track: rng.gen_range(0..catalog.len() as u32),
                    time: rng.gen_range(0.0..1.0),
                })
                .collect(),
            ..UserState::default()
        })
        .collect();
    let filters = Filters::default();
    let mut best = f64::MAX;
    for _ in 0..PASSES {
        let started = Instant::now();
        for state in &sessions {
            let heard = state.heard();
            let last = state.listens[state.listens.len() - 1];
            let ctx = Context {
                user: 1,
                track: last.track,
                time: last.time,
                catalog: &catalog,
                models: &models,
                state,
                allowed: Allowed::new(&catalog, &filters, &heard),
                top,
            };
            std::hint::black_box(recommender.candidates(&ctx, &mut StateUpdate::default()));
        }
        best = best.min(started.elapsed().as_secs_f64() * 1e9 / SESSIONS as f64);
    }
    Ok(format!(
        "{name}, top {top}: {best:.0} ns per call (best of {PASSES} passes over {SESSIONS} sessions)"
    ))
}
