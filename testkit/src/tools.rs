//! The test tools, found where `scripts/test` installs them (versions
//! pinned in `e2e/`): Debian's `chromium`, `node` with
//! `playwright-core` in `e2e/node_modules`, and the `schemathesis` CLI in
//! `e2e/.venv` (with `duckdb`, for the Parquet export and warehouse tests,
//! `pyspark`, for the warehouse test, and `kubernetes-validate`, for the
//! deployment manifests). A missing one
//! fails the test, saying how to install it:
//! these tests are part of the contract and are never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's `e2e/` folder: the browser script, its npm lock file,
/// the Python requirements.
pub fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e")
}

/// `CHROMIUM` or `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "no Chromium at {}: run scripts/test, or `apt-get install chromium` (or set CHROMIUM)",
        path.display()
    );
    path
}

/// `node`, with `playwright-core` installed in `e2e/node_modules`.
pub fn node() -> Command {
    let works = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "no `node` on PATH: run scripts/test, or `apt-get install nodejs npm`"
    );
    let playwright = e2e_dir().join("node_modules/playwright-core");
    assert!(
        playwright.exists(),
        "no {}: run scripts/test, or `npm ci --prefix e2e`",
        playwright.display()
    );
    Command::new("node")
}

/// The `schemathesis` CLI: `SCHEMATHESIS`, else `e2e/.venv/bin/schemathesis`.
pub fn schemathesis() -> Command {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| e2e_dir().join(".venv/bin/schemathesis"));
    assert!(
        path.exists(),
        "no schemathesis at {}: run scripts/test, or `python3 -m venv e2e/.venv && e2e/.venv/bin/pip install -r e2e/requirements.txt` (or set SCHEMATHESIS)",
        path.display()
    );
    Command::new(path)
}

/// Python with the pinned PyPI test tools (`duckdb`, `pyspark`, and PyYAML, which
/// `kubernetes-validate` brings): `e2e/.venv/bin/python`.
pub fn python() -> Command {
    venv_program("python")
}

/// The `kubernetes-validate` CLI, which checks manifests offline against the
/// Kubernetes schemas it ships: `e2e/.venv/bin/kubernetes-validate`.
pub fn kubernetes_validate() -> Command {
    venv_program("kubernetes-validate")
}

/// `e2e/.venv/bin/<name>`, where `scripts/test` installs the pinned PyPI
/// tools.
fn venv_program(name: &str) -> Command {
    let path = e2e_dir().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "no {}: run scripts/test, or `python3 -m venv e2e/.venv && e2e/.venv/bin/pip install -r e2e/requirements.txt`",
        path.display()
    );
    Command::new(path)
}
