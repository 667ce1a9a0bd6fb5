use super::*;
use crate::catalog::tests::small;
use crate::filters::Filters;
use crate::recommenders::testing::arm;
use crate::recommenders::{build, Scored};

// The tests' catalog, `small()`: six tracks, by artist A = 0, 1, 2;
// B = 3, 4; C = 5.

/// Checks that `distribution` puts a total of 1 on the catalog, and that
/// over many draws, each seeded as a request is, every track is served as
/// often as its probability says.
fn assert_draws_match(distribution: &Distribution<'_>, tracks: usize) {
    let probabilities: Vec<f64> = (0..tracks as TrackId)
        .map(|t| distribution.probability(t))
        .collect();
    let total: f64 = probabilities.iter().sum();
    assert!((total - 1.0).abs() < 1e-9, "{probabilities:?}");
    let draws = 40_000;
    let mut counts = vec![0usize; tracks];
    for position in 0..draws {
        let mut rng = RequestRng::new(0, 1, position, 0);
        counts[distribution.draw(&mut rng) as usize] += 1;
    }
    for (track, (&count, &p)) in counts.iter().zip(&probabilities).enumerate() {
        let seen = count as f64 / draws as f64;
        assert!(
            (seen - p).abs() < 0.01,
            "track {track}: served {seen}, propensity {p}"
        );
    }
}

const LIST: [Scored; 3] = [(3, 0.9), (1, 0.5), (2, 0.1)];

#[test]
fn greedy_serves_the_best_candidate_with_propensity_one() {
    let catalog = small();
    let filters = Filters::default();
    let allowed = Allowed::new(&catalog, &filters, &[0]);
    let candidates = Candidates::Ranked(LIST.to_vec());
    let mut rng = RequestRng::new(0, 1, 1, 0);
    let choice = Policy::default().serve(&candidates, &allowed, 0, &mut rng);
    assert_eq!(
        choice,
        Choice {
            track: 3,
            propensity: 1.0,
            no_candidate: false
        }
    );
}

#[test]
fn softmax_with_promotion_and_noise_logs_the_probability_of_the_track_served() {
    let catalog = small();
    let filters = Filters {
        // 0 is heard: never promoted; 2 is also a candidate.
        promoted_tracks: vec![5, 2, 0],
        promote_rate: 0.3,
        ..Filters::default()
    };
    let allowed = Allowed::new(&catalog, &filters, &[0]);
    let candidates = Candidates::Ranked(LIST.to_vec());
    let policy = Policy {
        rule: Rule::Softmax { temperature: 0.5 },
        top: 3,
        noise: 0.2,
    };
    let distribution = policy.distribution(&candidates, &allowed, 0);
    assert_eq!(distribution.probability(0), 0.0, "heard");
    // 2: promoted (0.3 × ½), noise (0.7 × 0.2 × ⅕) and softmax.
    let softmax = policy.rule.rank(&LIST).probability(2);
    let expected = 0.3 * 0.5 + 0.7 * (0.2 * 0.2 + 0.8 * softmax);
    assert!((distribution.probability(2) - expected).abs() < 1e-12);
    assert_draws_match(&distribution, catalog.len());
}

#[test]
fn epsilon_over_a_uniform_set_and_noise_sum_their_branches() {
    let catalog = small();
    let filters = Filters::blocking(&[1], &[]);
    let allowed = Allowed::new(&catalog, &filters, &[0, 4]);
    // Artist A's tracks: 0 heard, 1 blocked, so only 2 is drawn.
    let candidates = Candidates::Uniform(Pool::Tracks(catalog.tracks_of_artist(0)));
    let policy = Policy::from_arm(&arm(
        r#"{ recommender = "x", policy = "epsilon", noise = 0.5 }"#,
    ))
    .unwrap();
    let distribution = policy.distribution(&candidates, &allowed, 4);
    assert!((distribution.probability(2) - (0.5 / 3.0 + 0.5)).abs() < 1e-12);
    assert!(!distribution.no_candidate());
    assert_draws_match(&distribution, catalog.len());

    // Random's set: the catalog, counted without a scan.
    let random = Candidates::Uniform(Pool::Catalog);
    let distribution = Policy::default().distribution(&random, &allowed, 4);
    assert!((distribution.probability(3) - 1.0 / 3.0).abs() < 1e-12);
    assert_draws_match(&distribution, catalog.len());
}

#[test]
fn without_candidates_the_fallback_is_uniform_over_the_allowed_tracks() {
    let catalog = small();
    let filters = Filters::default();
    let allowed = Allowed::new(&catalog, &filters, &[0, 1, 2]);
    let nothing = Candidates::Ranked(Vec::new());
    let policy = Policy {
        rule: Rule::Softmax { temperature: 0.1 },
        ..Policy::default()
    };
    let distribution = policy.distribution(&nothing, &allowed, 2);
    assert!(distribution.no_candidate());
    assert!((distribution.probability(4) - 1.0 / 3.0).abs() < 1e-12);
    assert_draws_match(&distribution, catalog.len());

    // A set none of whose tracks is allowed is no candidate either.
    let exhausted = Candidates::Uniform(Pool::Tracks(&[0, 1]));
    assert!(policy.distribution(&exhausted, &allowed, 2).no_candidate());
}

#[test]
fn with_nothing_allowed_any_unblocked_track_but_the_current_then_the_current() {
    let catalog = small();
    let filters = Filters::blocking(&[5], &[]);
    let everything = [0, 1, 2, 3, 4, 5];
    let allowed = Allowed::new(&catalog, &filters, &everything);
    let nothing = Candidates::Ranked(Vec::new());
    let noisy = Policy {
        noise: 0.5,
        ..Policy::default()
    };
    let distribution = noisy.distribution(&nothing, &allowed, 2);
    assert_eq!(distribution.probability(2), 0.0, "not the current track");
    assert_eq!(distribution.probability(5), 0.0, "not a blocked track");
    assert!((distribution.probability(0) - 0.25).abs() < 1e-12);
    assert_draws_match(&distribution, catalog.len());

    let only = Filters::blocking(&[0, 1, 3, 4, 5], &[]);
    let allowed = Allowed {
        filters: &only,
        ..allowed
    };
    let mut rng = RequestRng::new(0, 1, 1, 0);
    let choice = noisy.serve(&nothing, &allowed, 2, &mut rng);
    assert_eq!((choice.track, choice.propensity), (2, 1.0));
}

#[test]
fn policies_read_their_keys_with_documented_defaults() {
    let policy = |spec: &str| Policy::from_arm(&arm(spec));
    assert_eq!(policy(r#""memory""#), Ok(Policy::default()));
    assert_eq!(
        policy(r#"{ recommender = "memory", policy = "softmax", top = 20 }"#),
        Ok(Policy {
            rule: Rule::Softmax {
                temperature: DEFAULT_TEMPERATURE
            },
            top: 20,
            noise: 0.0
        })
    );
    assert_eq!(
        policy(r#"{ recommender = "memory", policy = "epsilon", epsilon = 0.3 }"#)
            .unwrap()
            .rule,
        Rule::Epsilon { epsilon: 0.3 }
    );
    let exploring = Policy {
        noise: 0.5,
        ..Policy::default()
    }
    .exploring(0.5);
    assert_eq!(
        exploring.noise, 0.75,
        "either draw makes the answer uniform"
    );
}

#[test]
fn arms_with_unknown_mistyped_or_out_of_range_keys_are_refused_naming_them() {
    let refused = |spec: &str| build(&arm(spec)).err().unwrap().to_string();
    let cases = [
        (
            r#"{ recommender = "memory", temprature = 0.3 }"#,
            "unknown key \"temprature\"",
        ),
        (
            r#"{ recommender = "toppop", table = "x" }"#,
            "unknown key \"table\"",
        ),
        (
            r#"{ recommender = "memory", policy = "softmax", temperature = "hot" }"#,
            "temperature = \"hot\" is not accepted; expected a number",
        ),
        (
            r#"{ recommender = "memory", policy = "softmax", temperature = 0 }"#,
            "temperature = 0 is not accepted; expected a number above 0",
        ),
        (
            r#"{ recommender = "memory", policy = "softmax", temperature = -1.5 }"#,
            "temperature = -1.5",
        ),
        (
            r#"{ recommender = "memory", policy = "epsilon", epsilon = 1.5 }"#,
            "epsilon = 1.5 is not accepted; expected a number in 0..=1",
        ),
        (
            r#"{ recommender = "memory", policy = "epsilon", epsilon = -0.1 }"#,
            "epsilon = -0.1",
        ),
        (
            r#"{ recommender = "memory", top = 0 }"#,
            "top = 0 is not accepted; expected a positive integer",
        ),
        (
            r#"{ recommender = "memory", top = 2.5 }"#,
            "top = 2.5 is not accepted; expected a non-negative integer",
        ),
        (
            r#"{ recommender = "memory", policy = "boltzmann" }"#,
            "policy = \"boltzmann\"",
        ),
        (
            r#"{ recommender = "memory", temperature = 0.3 }"#,
            "no temperature unless policy = \"softmax\"",
        ),
        (
            r#"{ recommender = "memory", policy = "softmax", epsilon = 0.3 }"#,
            "no epsilon unless policy = \"epsilon\"",
        ),
        (r#"{ recommender = "memory", noise = 1.5 }"#, "noise = 1.5"),
        (r#"{ recommender = "toppop", k = "ten" }"#, "k = \"ten\""),
        (
            r#"{ recommender = "memory", source = "magic" }"#,
            "source = \"magic\"",
        ),
    ];
    for (spec, expected) in cases {
        let message = refused(spec);
        assert!(message.contains(expected), "{spec}: {message}");
    }
    let ok = r#"{ recommender = "session_knn", policy = "softmax", temperature = 0.3, top = 20, noise = 0.1, k = 10 }"#;
    assert!(build(&arm(ok)).is_ok());
}
