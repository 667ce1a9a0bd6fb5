//! The API contract: Schemathesis generates requests from `/openapi.json`
//! (valid and invalid, every route, the admin routes with and without
//! their token) against the real botify binary, with every check on. It
//! must find no server error and no answer that the description does not
//! allow: status, content type, headers and body schema.

use std::path::Path;

use testkit::binary::start_botify;
use testkit::cli::text;
use testkit::tools::schemathesis;
use testkit::{free_port, test_config};

const TOKEN: &str = "contract-test-token";

#[test]
fn schemathesis_with_all_checks_finds_nothing() {
    let mut schemathesis = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["random", "sticky_artist", "memory"]);
    config.port = free_port();
    config.admin_token = Some(TOKEN.into());
    let mut processes = start_botify(Path::new(env!("CARGO_BIN_EXE_botify")), &config);

    let output = schemathesis
        .arg("run")
        .arg(format!("http://127.0.0.1:{}/openapi.json", config.port))
        .args(["--checks", "all", "--max-examples", "50", "--seed", "2026"])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--request-timeout", "10"])
        // Hypothesis keeps its example database in the working folder.
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let (stdout, stderr) = text(&output);
    let report = format!("{stdout}\n{stderr}");
    processes.assert_alive();
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{report}\n--- botify:\n{}",
        output.status,
        processes.output("botify")
    );
    assert!(report.contains("No issues found"), "{report}");
}
