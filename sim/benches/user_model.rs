//! Throughput of the simulator's hot paths on the default world.
//!
//! `cargo bench -p sim --bench user_model` prints, from one run:
//! - the exact neighbour search (`World::nearest`) against a brute-force scan,
//!   as a ratio, since every new interest pays for one search;
//! - listens per second of the user model driven by the random agent, with the
//!   neighbour cache cold (each new interest searched on first use) and warm
//!   (after `World::precompute_interest_neighbours`, timed separately).

use std::hint::black_box;
use std::time::Instant;

use rand::Rng;
use sim::agents::{Agent, RandomAgent};
use sim::rng::session_rng;
use sim::user_model::Session;
use sim::world::{dot, generate, World, WorldParams};

fn brute_force(world: &World, query: &[f32], k: usize) -> Vec<u32> {
    let mut all: Vec<(f32, u32)> = (0..world.num_tracks() as u32)
        .map(|t| (dot(query, world.embedding(t)), t))
        .collect();
    all.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    all.into_iter().map(|(_, t)| t).collect()
}

fn run_sessions(world: &World, sessions: u64, seed: u64) -> (u64, f64) {
    let started = Instant::now();
    let mut listens = 0u64;
    for i in 0..sessions {
        let mut rng = session_rng(seed, i);
        let user = rng.gen_range(0..world.num_users());
        let mut s = Session::start(world, user, &mut rng);
        while !s.is_over() {
            let t = RandomAgent.recommend(&s, &mut rng);
            black_box(s.listen(t));
        }
        listens += u64::from(s.steps());
    }
    (listens, started.elapsed().as_secs_f64())
}

/// The fastest of five runs: the machine is shared, and the minimum is the
/// least disturbed measurement.
fn best_of(mut run: impl FnMut() -> f64) -> f64 {
    (0..5).map(|_| run()).fold(f64::INFINITY, f64::min)
}

fn main() {
    let world = World::new(generate(&WorldParams::default(), false).unwrap()).unwrap();
    let queries: Vec<u32> = (0..2000)
        .map(|i| (i * 7919) % world.num_tracks() as u32)
        .collect();

    let per_query = |search: &dyn Fn(&[f32]) -> Vec<u32>| {
        best_of(|| {
            let started = Instant::now();
            for &q in &queries {
                black_box(search(world.embedding(q)));
            }
            started.elapsed().as_secs_f64() / queries.len() as f64
        })
    };
    let brute = per_query(&|q| brute_force(&world, q, 10));
    let pruned = per_query(&|q| world.nearest(q, 10));
    println!(
        "nearest k=10: pruned {:.1} us, brute force {:.1} us per query ({:.1}x faster)",
        pruned * 1e6,
        brute * 1e6,
        brute / pruned
    );

    let (listens, secs) = run_sessions(&world, 20_000, 1);
    println!(
        "random agent, cold neighbour cache: {listens} listens in {secs:.3}s = {:.0} listens/s",
        listens as f64 / secs
    );
    let started = Instant::now();
    let distinct = world.precompute_interest_neighbours();
    println!(
        "precomputed neighbours of {distinct} distinct interests in {:.3}s",
        started.elapsed().as_secs_f64()
    );
    let (listens, secs) = run_sessions(&world, 100_000, 2);
    println!(
        "random agent, warm neighbour cache: {listens} listens in {secs:.3}s = {:.0} listens/s",
        listens as f64 / secs
    );
}
