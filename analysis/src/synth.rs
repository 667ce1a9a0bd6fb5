//! Synthetic botify logs, for benchmarks and tests.
//!
//! Writes exactly what botify's event log writes (lines are serialized from
//! `botify::events::Event`), the way a load-balanced deployment writes it:
//! several replicas' folders, each event on a random replica, files rotated
//! every `rotate_events` events, users' sessions interleaved, and the
//! sessions still open when generation stops left without their `last`.
//!
//! The listener model is a cheap stand-in for the real simulator (which needs
//! a generated world): tracks come in clusters of 50 with heavy-tailed
//! popularity; a session sticks to one of the user's favourite clusters; the
//! "service" recommends from that cluster with probability `coherence` (plus
//! `uplift × arm` in an experiment's treatment arms, so A/B tables have a real
//! effect to find), else a globally popular track; in-cluster tracks are
//! listened 0.4–1.0, others 0–0.5, repeats 0; the session budget drops with
//! probability 1 − time, as in docs/user-model.md#budget. Deterministic for a given seed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use botify::events::{Event, Message};
use botify::experiments::{arm_label, assign};
use indicatif::ProgressBar;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Tracks per cluster.
const CLUSTER: u32 = 50;

/// An experiment logged with every event.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthExperiment {
    pub name: String,
    pub arms: usize,
    /// Added to the recommendation coherence per treatment arm index
    /// (`Tk` gets `k × uplift`); 0 for an A/A split.
    pub uplift: f64,
}

impl std::str::FromStr for SynthExperiment {
    type Err = String;

    /// `NAME:ARMS` or `NAME:ARMS:UPLIFT`, e.g. `AA:2` or `AB:3:0.05`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let usage = || format!("{s:?}: expected NAME:ARMS or NAME:ARMS:UPLIFT, e.g. AB:2:0.05");
        let (name, arms, uplift) = match parts.as_slice() {
            [name, arms] => (name, arms, "0"),
            [name, arms, uplift] => (name, arms, *uplift),
            _ => return Err(usage()),
        };
        let arms: usize = arms.parse().map_err(|_| usage())?;
        let uplift: f64 = uplift.parse().map_err(|_| usage())?;
        if name.is_empty() || !(2..=254).contains(&arms) || !uplift.is_finite() {
            return Err(usage());
        }
        Ok(SynthExperiment {
            name: name.to_string(),
            arms,
            uplift,
        })
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    pub events: u64,
    pub users: u64,
    pub tracks: u32,
    pub replicas: usize,
    pub rotate_events: u64,
    pub experiments: Vec<SynthExperiment>,
    /// Base probability that a recommendation stays in the session's cluster.
    pub coherence: f64,
    pub seed: u64,
    /// Timestamp of the first event, epoch ms.
    pub start_ms: u64,
    /// UTC days the events spread over: event n of N falls on day
    /// ⌊n × days / N⌋ after the first (users come back on later days, as
    /// in a service's logs, whose timestamps tell the day).
    pub days: u32,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            events: 100_000,
            users: 10_000,
            tracks: 16_000,
            replicas: 2,
            rotate_events: 1_000_000,
            experiments: vec![
                "AA:2".parse().expect("valid"),
                "AB:2:0.05".parse().expect("valid"),
            ],
            coherence: 0.5,
            seed: 42,
            start_ms: 1_700_000_000_000,
            days: 1,
        }
    }
}

/// One replica's rotating output.
struct Replica {
    dir: PathBuf,
    index: usize,
    seq: u32,
    written: u64,
    out: Option<BufWriter<File>>,
    files: Vec<PathBuf>,
}

impl Replica {
    fn write(&mut self, event: &Event, rotate: u64, line: &mut Vec<u8>) -> Result<()> {
        if self.out.is_none() || self.written >= rotate {
            self.finish()?;
            let path = self
                .dir
                .join(format!("events-{}-{:05}.jsonl", self.index, self.seq));
            self.seq += 1;
            self.written = 0;
            let file =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            self.out = Some(BufWriter::with_capacity(1 << 20, file));
            self.files.push(path);
        }
        line.clear();
        serde_json::to_writer(&mut *line, event).expect("events serialize");
        line.push(b'\n');
        let out = self.out.as_mut().expect("opened above");
        out.write_all(line)
            .with_context(|| format!("cannot write to {}", self.dir.display()))?;
        self.written += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()
                .with_context(|| format!("cannot write to {}", self.dir.display()))?;
        }
        Ok(())
    }
}

/// A session in progress.
struct Active {
    user: u64,
    cluster: u32,
    coherence: f64,
    budget: u32,
    heard: Vec<u32>,
    /// The event to write next (its recommendation not drawn yet).
    event: Event,
}

/// Writes `params.events` events under `dir` (`replica-<r>/events-*.jsonl`);
/// returns the files written.
pub fn generate(dir: &Path, params: &SynthParams, bar: &ProgressBar) -> Result<Vec<PathBuf>> {
    if params.users == 0 || params.tracks < CLUSTER || params.replicas == 0 {
        bail!("synth needs at least 1 user, {CLUSTER} tracks and 1 replica");
    }
    let mut rng = SmallRng::seed_from_u64(params.seed);
    let clusters = params.tracks / CLUSTER;
    // Heavy-tailed popularity over a random order of tracks.
    let mut order: Vec<u32> = (0..params.tracks).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let mut weight = vec![0.0; params.tracks as usize];
    for (rank, &t) in order.iter().enumerate() {
        weight[t as usize] = 1.0 / (rank as f64 + 10.0).powf(0.9);
    }
    let popular = WeightedIndex::new(&weight).expect("positive weights");
    let cluster_weight: Vec<f64> = (0..clusters)
        .map(|c| {
            weight[(c * CLUSTER) as usize..((c + 1) * CLUSTER) as usize]
                .iter()
                .sum()
        })
        .collect();
    let popular_cluster = WeightedIndex::new(&cluster_weight).expect("positive weights");
    let favourites: Vec<Vec<u32>> = (0..params.users)
        .map(|_| {
            (0..rng.gen_range(1..=3))
                .map(|_| popular_cluster.sample(&mut rng) as u32)
                .collect()
        })
        .collect();

    let mut replicas = Vec::new();
    for index in 0..params.replicas {
        let dir = dir.join(format!("replica-{index}"));
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        replicas.push(Replica {
            dir,
            index,
            seq: 0,
            written: 0,
            out: None,
            files: Vec::new(),
        });
    }

    let concurrent = (params.users as usize).div_ceil(4).clamp(1, 256);
    let mut busy = vec![false; params.users as usize];
    let mut active: Vec<Active> = Vec::with_capacity(concurrent);
    let mut clock = params.start_ms;
    let mut line = Vec::with_capacity(512);
    for n in 0..params.events {
        if active.len() < concurrent {
            let user = loop {
                let u = rng.gen_range(0..params.users);
                if !busy[u as usize] {
                    break u;
                }
            };
            busy[user as usize] = true;
            let labels: BTreeMap<String, String> = params
                .experiments
                .iter()
                .map(|e| (e.name.clone(), arm_label(assign(&e.name, e.arms, user))))
                .collect();
            let coherence = params.coherence
                + params
                    .experiments
                    .iter()
                    .map(|e| e.uplift * assign(&e.name, e.arms, user) as f64)
                    .sum::<f64>();
            let likes = &favourites[user as usize];
            let cluster = likes[rng.gen_range(0..likes.len())];
            let first = cluster * CLUSTER + rng.gen_range(0..CLUSTER);
            active.push(Active {
                user,
                cluster,
                coherence,
                budget: 5,
                heard: vec![first],
                event: Event {
                    message: Message::Next,
                    timestamp: 0,
                    user,
                    track: first,
                    time: 1.0,
                    latency: 0.0,
                    recommendation: None,
                    propensity: None,
                    experiments: labels,
                    recommender: None,
                    fallback: false,
                    model_version: None,
                },
            });
        }
        let slot = rng.gen_range(0..active.len());
        let s = &mut active[slot];
        clock += rng.gen_range(1..4);
        let day = n * u64::from(params.days.max(1)) / params.events;
        s.event.timestamp = clock + day * crate::logs::days::DAY_MS;
        s.event.latency = 0.0002 - 0.0008 * (1.0 - rng.gen::<f64>()).ln();
        let last = s.event.message == Message::Last;
        if !last {
            let rec = if rng.gen::<f64>() < s.coherence {
                s.cluster * CLUSTER + rng.gen_range(0..CLUSTER)
            } else {
                popular.sample(&mut rng) as u32
            };
            s.event.recommendation = Some(rec);
        }
        let replica = rng.gen_range(0..replicas.len());
        replicas[replica].write(&s.event, params.rotate_events, &mut line)?;
        if last {
            busy[s.user as usize] = false;
            active.swap_remove(slot);
        } else {
            let rec = s.event.recommendation.take().expect("set above");
            let time = if s.heard.contains(&rec) {
                0.0
            } else if rec / CLUSTER == s.cluster {
                rng.gen_range(0.4..=1.0f64)
            } else {
                rng.gen_range(0.0..=0.5f64)
            };
            let time = (time * 100.0).round() / 100.0;
            s.heard.push(rec);
            if rng.gen::<f64>() < 1.0 - time {
                s.budget -= 1;
            }
            s.event.track = rec;
            s.event.time = time;
            if s.budget == 0 {
                s.event.message = Message::Last;
            }
        }
        if (n + 1) % 65_536 == 0 {
            bar.inc(65_536);
        }
    }
    let mut files = Vec::new();
    for mut replica in replicas {
        replica.finish()?;
        files.append(&mut replica.files);
    }
    bar.finish_and_clear();
    Ok(files)
}

/// A catalog of `tracks` synthetic tracks in botify's `tracks.jsonl` format,
/// for evaluating botify's recommenders on these logs: each cluster is one
/// artist (so the metadata recommenders find the clusters the sessions
/// stick to) and every five clusters one genre.
pub fn write_catalog(path: &Path, tracks: u32) -> Result<()> {
    let lines: String = (0..tracks)
        .map(|t| {
            let cluster = t / CLUSTER;
            format!(
                "{{\"track\": {t}, \"artist\": \"artist-{cluster}\", \"title\": \"t{t}\", \"genre\": \"g{}\"}}\n",
                cluster / 5
            )
        })
        .collect();
    fs::write(path, lines).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{self, ReadOptions};
    use crate::sessions;

    #[test]
    fn writes_botify_events_across_replicas_and_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let params = SynthParams {
            events: 5_000,
            users: 300,
            tracks: 1_000,
            replicas: 3,
            rotate_events: 500,
            ..SynthParams::default()
        };
        let files = generate(dir.path(), &params, &ProgressBar::hidden()).unwrap();
        assert!(files.len() >= 9, "{files:?}");
        let mut lines = 0;
        for file in &files {
            for line in fs::read_to_string(file).unwrap().lines() {
                let event: Event = serde_json::from_str(line).unwrap();
                assert_eq!(event.experiments.len(), 2);
                assert_eq!(
                    event.recommendation.is_none(),
                    event.message == Message::Last
                );
                lines += 1;
            }
        }
        assert_eq!(lines, 5_000);

        let paths = logs::resolve(&[dir.path().display().to_string()]).unwrap();
        let options = ReadOptions {
            experiment: Some("AB".into()),
            ..ReadOptions::default()
        };
        let mut read = logs::read(&paths, &options).unwrap();
        assert_eq!(read.report.events, 5_000);
        sessions::sort(&mut read.records);
        let (s, report) = sessions::sessionize(&read.records);
        // Interleaved users across replicas still chain perfectly once sorted.
        assert_eq!(report.broken_chains, 0);
        assert!(report.open > 0 && s.len() > 300, "{report}");
        assert!(s.iter().all(|s| s.events(&read.records)[0].time == 1.0));
    }

    #[test]
    fn parses_experiment_specs() {
        let e: SynthExperiment = "AB:3:0.05".parse().unwrap();
        assert_eq!((e.name.as_str(), e.arms, e.uplift), ("AB", 3, 0.05));
        assert!("AB".parse::<SynthExperiment>().is_err());
        assert!("AB:1".parse::<SynthExperiment>().is_err());
    }
}
