//! A/B experiments: which recommender each user is served.
//!
//! Experiments live in a TOML file (see `experiments.toml` at the repo root), not
//! in code, so analysts can start a new split without a rebuild. The assignment
//! must match the Python `mmh3` scheme the existing analysis notebooks use, so a
//! user lands in the same arm whichever side computes it.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use serde::Deserialize;

/// Arm label: `C` for arm 0, `T1`, `T2`, … for the others.
pub fn arm_label(arm: usize) -> String {
    if arm == 0 {
        "C".to_string()
    } else {
        format!("T{arm}")
    }
}

/// `murmur3_x86_32` as Python's `mmh3.hash(..., signed=False)` computes it.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    // Reading from an in-memory cursor cannot fail.
    murmur3::murmur3_32(&mut Cursor::new(data), seed).expect("in-memory read")
}

/// The arm (0-based) of `user` in the experiment `name` with `arms` arms:
/// `mmh3.hash(str(user), seed=mmh3.hash(name, 0) as u32, signed=False) % arms`
/// (the unsigned hash; the test vectors of docs/experiments.md#test-vectors pin this down).
pub fn assign(name: &str, arms: usize, user: u64) -> usize {
    let seed = murmur3_x86_32(name.as_bytes(), 0);
    let hash = murmur3_x86_32(user.to_string().as_bytes(), seed);
    (hash as u64 % arms as u64) as usize
}

/// One arm: the recommender it serves and its parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ArmSpec {
    /// `"sticky_artist"`: a recommender with default parameters.
    Name(String),
    /// `{ recommender = "toppop", k = 100 }`: a recommender with parameters.
    Table {
        recommender: String,
        #[serde(flatten)]
        params: BTreeMap<String, toml::Value>,
    },
}

impl ArmSpec {
    pub fn recommender(&self) -> &str {
        match self {
            ArmSpec::Name(name) => name,
            ArmSpec::Table { recommender, .. } => recommender,
        }
    }

    /// The value the arm sets for `key`, if any. Read through
    /// `recommenders::params`, which refuses unknown keys and wrong types.
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        match self {
            ArmSpec::Name(_) => None,
            ArmSpec::Table { params, .. } => params.get(key),
        }
    }

    /// The keys the arm sets besides `recommender`, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let params = match self {
            ArmSpec::Name(_) => None,
            ArmSpec::Table { params, .. } => Some(params),
        };
        params
            .into_iter()
            .flat_map(|p| p.keys().map(String::as_str))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Experiment {
    pub name: String,
    pub arms: Vec<ArmSpec>,
}

impl Experiment {
    pub fn arm_of(&self, user: u64) -> usize {
        assign(&self.name, self.arms.len(), user)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentsError {
    #[error("cannot read experiments file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("experiments file {path} is not valid TOML in the expected shape: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("experiments file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Every configured experiment, one of them active.
#[derive(Debug, Clone, Deserialize)]
pub struct Experiments {
    /// Name of the experiment that decides the recommender.
    pub active: String,
    #[serde(rename = "experiment")]
    pub experiments: Vec<Experiment>,
}

impl Experiments {
    pub fn load(path: &Path) -> Result<Self, ExperimentsError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ExperimentsError::Io {
            path: display.clone(),
            source,
        })?;
        Self::parse(&text, &display)
    }

    /// Parses and validates; `origin` names the source in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ExperimentsError> {
        let parsed: Experiments =
            toml::from_str(text).map_err(|source| ExperimentsError::Parse {
                path: origin.to_string(),
                source: Box::new(source),
            })?;
        let invalid = |message: String| ExperimentsError::Invalid {
            path: origin.to_string(),
            message,
        };
        for experiment in &parsed.experiments {
            if experiment.arms.is_empty() {
                return Err(invalid(format!(
                    "experiment {:?} has no arms; give at least one recommender in `arms`",
                    experiment.name
                )));
            }
        }
        if !parsed.experiments.iter().any(|e| e.name == parsed.active) {
            let names: Vec<&str> = parsed.experiments.iter().map(|e| e.name.as_str()).collect();
            return Err(invalid(format!(
                "active experiment {:?} is not configured; configured: {names:?}",
                parsed.active
            )));
        }
        Ok(parsed)
    }

    pub fn active(&self) -> &Experiment {
        self.experiments
            .iter()
            .find(|e| e.name == self.active)
            .expect("validated at load")
    }

    /// The arm label of `user` in every experiment, as logged with each event.
    pub fn labels(&self, user: u64) -> BTreeMap<String, String> {
        self.experiments
            .iter()
            .map(|e| (e.name.clone(), arm_label(e.arm_of(user))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: [u64; 10] = [0, 1, 2, 3, 4, 5, 42, 1000, 9999, 123456789];

    fn labels(name: &str, arms: usize) -> Vec<String> {
        USERS
            .iter()
            .map(|&u| arm_label(assign(name, arms, u)))
            .collect()
    }

    fn expected(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn aa_matches_python_mmh3() {
        assert_eq!(labels("AA", 2), expected("T1 T1 C T1 T1 T1 T1 T1 T1 T1"));
    }

    #[test]
    fn all_matches_python_mmh3() {
        assert_eq!(labels("ALL", 7), expected("T6 T5 T5 T4 T3 T2 T2 T1 T5 T2"));
    }

    #[test]
    fn sticky_artist_matches_python_mmh3() {
        assert_eq!(
            labels("STICKY_ARTIST", 4),
            expected("T1 T3 T2 T1 T3 T3 T3 T1 T1 C")
        );
    }

    #[test]
    fn hstu_matches_python_mmh3() {
        assert_eq!(labels("HSTU", 2), expected("C C C T1 C T1 C C T1 C"));
    }

    #[test]
    fn parses_names_and_tables() {
        let text = r#"
            active = "MEMORY"
            [[experiment]]
            name = "MEMORY"
            arms = ["sticky_artist", { recommender = "toppop", k = 100 }]
        "#;
        let parsed = Experiments::parse(text, "test").unwrap();
        let arms = &parsed.active().arms;
        assert_eq!(arms[0].recommender(), "sticky_artist");
        assert_eq!(arms[1].recommender(), "toppop");
        assert_eq!(arms[1].get("k"), Some(&toml::Value::Integer(100)));
    }

    #[test]
    fn rejects_unknown_active_experiment() {
        let text = "active = \"X\"\n[[experiment]]\nname = \"Y\"\narms = [\"random\"]\n";
        let err = Experiments::parse(text, "test").unwrap_err().to_string();
        assert!(err.contains("\"X\" is not configured"), "{err}");
    }
}
