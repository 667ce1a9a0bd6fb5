//! A/A calibration: on simulated logs with no treatment at all, splitting
//! users at random into two arms must find a significant `time` difference in
//! about 5% of splits (the Welch interval's nominal error rate).

use analysis::ab::{self, METRICS};
use analysis::logs::{self, ReadOptions};
use analysis::sessions;
use analysis::synth::{self, SynthParams};
use indicatif::ProgressBar;

#[test]
fn aa_false_positive_rate_of_time_is_near_five_percent() {
    let dir = tempfile::tempdir().unwrap();
    let params = SynthParams {
        events: 150_000,
        users: 2_000,
        tracks: 2_000,
        replicas: 2,
        rotate_events: 40_000,
        experiments: vec!["AA:2".parse().unwrap()],
        ..SynthParams::default()
    };
    synth::generate(dir.path(), &params, &ProgressBar::hidden()).unwrap();
    let paths = logs::resolve(&[format!("{}/**/*.jsonl*", dir.path().display())]).unwrap();
    let mut records = logs::read(&paths, &ReadOptions::default()).unwrap().records;
    sessions::sort(&mut records);
    let (sessions, _) = sessions::sessionize(&records);
    let mut users = ab::user_metrics(&sessions);
    assert!(users.len() > 1_900, "{} users", users.len());
    assert_eq!(METRICS[0], "time");

    const SPLITS: usize = 200;
    let mut false_positives = 0;
    for split in 0..SPLITS {
        // Each experiment name seeds an independent mmh3 split, as in botify.
        let name = format!("AA-{split}");
        for u in &mut users {
            u.arm = botify::experiments::assign(&name, 2, u.user) as u8;
        }
        let table = ab::table(&name, &users, 2, 0).unwrap();
        let time = &table.rows[0];
        assert_eq!(
            (time.treatment.as_str(), time.metric.as_str()),
            ("T1", "time")
        );
        false_positives += time.significant as usize;
    }
    let rate = false_positives as f64 / SPLITS as f64;
    println!(
        "A/A false-positive rate of `time`: {false_positives}/{SPLITS} = {:.1}%",
        rate * 100.0
    );
    assert!((0.02..=0.08).contains(&rate), "false-positive rate {rate}");
}
