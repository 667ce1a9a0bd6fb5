//! `sim proof` end to end on a small world: it plays A/A and injected-effect
//! experiments through botify in-process, analyses them, and reports rates
//! that are shares, an injected effect of the known direction (random
//! answers shorten sessions), CUPED's interval width, and the rates of
//! segments, the trend test, quantiles and the exposure design.

use testkit::cli::{arg, column, Program};
use testkit::{file_names, worlds};

const SIM: Program = Program::new(env!("CARGO_BIN_EXE_sim"));

#[test]
fn proof_reports_rates_and_the_injected_effects_direction() {
    let work = tempfile::tempdir().unwrap();
    let world = worlds::end_to_end(&SIM, work.path());
    let summary = work.path().join("proof.json");
    let (stdout, _) = SIM.ok(&[
        "proof",
        "--experiments",
        "4",
        "--truth-runs",
        "2",
        "--days",
        "5",
        "--pre-days",
        "2",
        "--episodes",
        "300",
        "--noise",
        "0.5",
        "--metrics",
        "mean_time_per_session,time",
        "--world",
        arg(&world),
        "--scratch",
        arg(work.path()),
        "--out",
        arg(&summary),
    ]);
    assert!(stdout.contains("A/A false positives"), "{stdout}");
    let proof: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let metrics = proof["metrics"].as_array().unwrap();
    let names = column(&proof["metrics"], "metric");
    assert_eq!(
        names,
        ["mean_time_per_session", "time"],
        "one entry per metric"
    );
    for m in metrics {
        for key in [
            "aa_false_positive_fixed",
            "aa_false_positive_naive_daily_peeking",
            "aa_false_positive_sequential",
            "aa_false_positive_open_ended",
            "coverage_fixed",
            "coverage_sequential",
        ] {
            let v = m[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} = {v}");
        }
        let width = m["cuped_width_ratio"].as_f64().unwrap();
        assert!(width > 0.0 && width <= 1.0 + 1e-9, "{m}");
    }
    // Half the answers random instead of the artist's: shorter sessions.
    assert!(
        metrics[0]["true_effect_percent"].as_f64().unwrap() < -5.0,
        "{proof}"
    );
    // Listeners come back (dynamics full): their pre-period time predicts
    // their time in the experiment, so CUPED narrows its interval.
    assert!(
        metrics[1]["cuped_width_ratio"].as_f64().unwrap() < 0.97,
        "{proof}"
    );
    // Segments, trend, quantiles and exposure ran on the same experiments.
    let b = &proof["breakdown"];
    let rate = |v: &serde_json::Value| {
        let v = v.as_f64().unwrap_or_else(|| panic!("not a rate: {v}"));
        assert!((0.0..=1.0).contains(&v), "{v}");
        v
    };
    let by = column(&b["segments"], "by");
    assert_eq!(by, ["listener", "genre", "daypart"]);
    for s in b["segments"].as_array().unwrap() {
        for key in [
            "aa_false_positive_any_segment",
            "aa_false_positive_heterogeneity",
            "coverage",
            "injected_heterogeneity_detected",
        ] {
            rate(&s[key]);
        }
        assert!(s["segments"].as_f64().unwrap() >= 1.0, "{s}");
    }
    rate(&b["trend"]["aa_false_positive"]);
    rate(&b["trend"]["coverage"]);
    let quantiles = b["quantiles"].as_array().unwrap();
    assert_eq!(quantiles.len(), 2);
    for q in quantiles {
        rate(&q["aa_false_positive"]);
        rate(&q["coverage"]);
        assert!(
            q["true_effect_percent"].as_f64().unwrap().is_finite(),
            "{q}"
        );
    }
    let e = &b["exposure"];
    for key in [
        "exposure_aa_false_positive",
        "exposure_coverage",
        "active_aa_false_positive",
        "active_coverage",
        "injected_srm_exposures",
        "injected_srm_active_users",
    ] {
        rate(&e[key]);
    }
    // Half the answers random: fewer listeners come back, so the last day's
    // time per exposed listener falls.
    assert!(e["true_effect_percent"].as_f64().unwrap() < 0.0, "{e}");
    // The scratch logs are gone.
    let left: Vec<_> = file_names(work.path())
        .into_iter()
        .filter(|n| n.starts_with("sim-proof"))
        .collect();
    assert!(left.is_empty(), "scratch folders left: {left:?}");
}
