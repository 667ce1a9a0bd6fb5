//! The Kubernetes manifests in `deploy/k8s/` are valid for the pinned
//! Kubernetes version (checked offline by `kubernetes-validate --strict`,
//! which refuses unknown fields), and they ask of botify what botify does:
//! the environment variables are ones it reads, the experiments file is one
//! it serves, the probes are its routes, the grace period outlasts its
//! drain, and the migration Job runs a command it has.
//!
//! Needs `e2e/.venv` with the pinned `kubernetes-validate` (scripts/test
//! installs it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use botify::app::{build_engine, SHUTDOWN_TIMEOUT_SECS};
use clap::CommandFactory;
use serde_json::Value;
use testkit::cli::text;
use testkit::tools::{kubernetes_validate, python};

/// The Kubernetes version the manifests target: one of the schema sets the
/// `kubernetes-validate` of `e2e/requirements.txt` ships.
const KUBERNETES_VERSION: &str = "1.35.0";

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

/// Every document of every manifest, as JSON (through the venv's PyYAML).
fn documents() -> Vec<Value> {
    let output = python()
        .args([
            "-c",
            "import sys, json, yaml\n\
             docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]\n\
             json.dump(docs, sys.stdout)",
        ])
        .args(manifests())
        .output()
        .expect("run e2e/.venv/bin/python");
    assert!(
        output.status.success(),
        "cannot read the manifests as YAML: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
}

#[test]
fn manifests_are_valid_for_the_pinned_kubernetes_version() {
    let output = kubernetes_validate()
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .args(manifests())
        .output()
        .expect("run kubernetes-validate");
    let (stdout, stderr) = text(&output);
    let report = format!("{stdout}{stderr}");
    assert!(output.status.success(), "kubernetes-validate:\n{report}");
    let passed = report.matches(" passed for resource ").count();
    assert_eq!(
        passed,
        documents().len(),
        "every resource checked:\n{report}"
    );
}

#[test]
fn manifests_ask_of_botify_what_it_does() {
    let documents = documents();
    let deployment = find(&documents, "Deployment", "botify");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let config = &find(&documents, "ConfigMap", "botify-config")["data"];

    // Rolling updates keep every pod until its replacement is ready.
    let rolling = &deployment["spec"]["strategy"]["rollingUpdate"];
    assert_eq!(
        (&rolling["maxUnavailable"], &rolling["maxSurge"]),
        (&0.into(), &1.into())
    );

    // Every variable set is one botify reads (or feeds one: POD_NAME names
    // the log folder).
    let read: BTreeSet<String> = botify::config::Config::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    let set = config.as_object().unwrap().keys().cloned().chain(
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .filter(|name| name != "POD_NAME"),
    );
    for name in set {
        assert!(read.contains(&name), "botify reads no {name} ({read:?})");
    }

    // Event lines go to Redis Streams, and a reader takes them off the
    // same Redis: `analysis ingest` with botify's own settings.
    assert_eq!(config["BOTIFY_LOG_SINK"], "redis-stream");
    let ingest = &find(&documents, "StatefulSet", "botify-ingest")["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(ingest["command"][0], "analysis");
    assert_eq!(ingest["args"][0], "ingest");
    assert!(ingest["args"]
        .as_array()
        .unwrap()
        .contains(&"--follow".into()));
    assert_eq!(
        ingest["envFrom"][0]["configMapRef"]["name"],
        "botify-config"
    );

    // Probes: readiness on /ready (503 while starting or draining), liveness
    // on /health, on the container's port.
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(container["ports"][0]["containerPort"], 5001);

    // SIGKILL only after the drain and the in-flight requests' wait.
    let drain: u64 = config["BOTIFY_DRAIN_SECS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > drain + SHUTDOWN_TIMEOUT_SECS,
        "terminationGracePeriodSeconds {grace} must exceed the drain ({drain} s) plus {SHUTDOWN_TIMEOUT_SECS} s"
    );

    // The experiments file is where botify is told to read it, and botify
    // serves it.
    let experiments_path = config["BOTIFY_EXPERIMENTS"].as_str().unwrap();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "experiments")
        .expect("the experiments volume is mounted");
    let mounted = Path::new(mount["mountPath"].as_str().unwrap());
    let file = Path::new(experiments_path)
        .strip_prefix(mounted)
        .unwrap_or_else(|_| panic!("{experiments_path} is outside {}", mounted.display()));
    let text = find(&documents, "ConfigMap", "botify-experiments")["data"][file.to_str().unwrap()]
        .as_str()
        .unwrap_or_else(|| panic!("botify-experiments has no {}", file.display()));
    let dir = tempfile::tempdir().unwrap();
    let mut served = testkit::test_config(dir.path(), &["random"]);
    served.experiments = dir.path().join("deployed-experiments.toml");
    std::fs::write(&served.experiments, text).unwrap();
    if let Err(err) = build_engine(&served, None) {
        panic!("botify refuses the deployed experiments: {err:#}");
    }

    // The migration Job runs a command botify has, in pods the Service
    // does not select.
    let job = &find(&documents, "Job", "botify-migrate")["spec"]["template"];
    let command = job["spec"]["containers"][0]["args"][0].as_str().unwrap();
    assert!(
        botify::config::Config::command()
            .find_subcommand(command)
            .is_some(),
        "botify has no command {command:?}"
    );
    let selector = find(&documents, "Service", "botify")["spec"]["selector"]
        .as_object()
        .unwrap();
    assert!(
        selector
            .iter()
            .any(|(label, value)| job["metadata"]["labels"][label] != *value),
        "the Service would send traffic to the migration Job"
    );

    // The Service sends to the pods' named port.
    let service = find(&documents, "Service", "botify");
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        container["ports"][0]["name"]
    );
}
