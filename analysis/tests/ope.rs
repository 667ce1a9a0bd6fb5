//! `analysis ope` through the binary: what it refuses, and its help. Its
//! estimates on real logs are tested end to end in `sim/tests/ope.rs`,
//! where the simulator that writes them can run.

use testkit::cli::Program;

const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

#[test]
fn a_mistyped_target_key_fails_naming_the_key() {
    let stderr = ANALYSIS.fails(&[
        "ope",
        "--logs",
        "missing",
        "--models",
        "missing",
        "--target",
        r#"{ recommender = "memory", policy = "softmax", temperatur = 0.3 }"#,
    ]);
    assert!(stderr.contains("\"temperatur\""), "{stderr}");
    assert!(stderr.contains("memory accepts"), "{stderr}");

    let stderr = ANALYSIS.fails(&[
        "ope", "--logs", "missing", "--models", "missing", "--target", "magic",
    ]);
    assert!(stderr.contains("unknown recommender \"magic\""), "{stderr}");

    let stderr = ANALYSIS.fails(&[
        "ope", "--logs", "missing", "--models", "missing", "--target", "memory", "--clip", "0.5",
    ]);
    assert!(stderr.contains("--clip must be"), "{stderr}");
}

#[test]
fn the_help_explains_the_estimators_and_when_to_trust_them() {
    ANALYSIS.assert_help_names(
        "ope",
        &[
            "first_pick",
            "session",
            "snips",
            "doubly robust",
            "effective sample size",
            "--clip",
            "--reward-logs",
        ],
    );
}
