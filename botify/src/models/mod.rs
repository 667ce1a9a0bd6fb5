//! Trained models the recommenders read, written by `analysis train`:
//! popularity, item-to-item neighbours, learned track vectors
//! ([`embedding`]), recent sessions ([`sessions`]), and per-user lists for
//! `indexed`.
//!
//! The service holds one immutable [`Models`] behind an `ArcSwap`; a reload
//! builds a fresh one from disk and swaps it in, so in-flight requests finish
//! on the tables they started with.

mod embedding;
mod listen_curve;
mod sessions;

pub use embedding::{dot, EmbeddingIndex, Vector};
pub use listen_curve::ListenCurve;
pub use sessions::{PastSession, SessionIndex, LIKED};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::TrackId;

/// `top_tracks.json`: track ids, most popular first.
pub const TOP_TRACKS_FILE: &str = "top_tracks.json";
/// The default item-to-item table (co-listening); others are `item2item_*.jsonl`.
pub const DEFAULT_TABLE: &str = "item2item";
/// `indexed`'s per-user lists: `{"user": u, "tracks": [..]}` lines.
pub const USER_LISTS_FILE: &str = "user_recommendations.jsonl";
/// Learned track vectors and their neighbour graph, for `embedding`.
pub const EMBEDDING_FILE: &str = "embedding.jsonl";
/// Recent past sessions, for `session_knn`.
pub const SESSIONS_FILE: &str = "sessions.jsonl";
/// Expected listen time by cosine and artist plays, for `session_interest`.
pub const LISTEN_CURVE_FILE: &str = "listen_curve.json";

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Inconsistent { path: PathBuf, message: String },
    #[error("{path}, line {line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// An item-to-item table: for a track, similar tracks, best first.
#[derive(Debug, Clone, Default)]
pub struct ItemTable {
    neighbours: HashMap<TrackId, Vec<TrackId>>,
}

impl ItemTable {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (TrackId, Vec<TrackId>)>) -> Self {
        ItemTable {
            neighbours: pairs.into_iter().collect(),
        }
    }

    pub fn neighbours(&self, track: TrackId) -> &[TrackId] {
        self.neighbours
            .get(&track)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.neighbours.len()
    }

    pub fn is_empty(&self) -> bool {
        self.neighbours.is_empty()
    }
}

/// Everything loaded from the `--models` folder. Missing files are normal (a
/// fresh deployment before the first training run): recommenders fall back to
/// catalog metadata.
#[derive(Debug, Clone, Default)]
pub struct Models {
    /// Popularity from logs, most popular first; `None` before training.
    pub top_tracks: Option<Vec<TrackId>>,
    /// Item-to-item tables by name (`item2item`, `item2item_als`, …).
    pub tables: HashMap<String, ItemTable>,
    /// Per-user precomputed lists for `indexed`.
    pub user_lists: HashMap<u64, Vec<TrackId>>,
    /// Learned track vectors; empty before training.
    pub embedding: EmbeddingIndex,
    /// Recent past sessions; empty before training.
    pub sessions: SessionIndex,
    /// Expected listen time in the learned space; the prior before training.
    pub listen_curve: ListenCurve,
    /// Which trained files these are ([`fingerprint`]); `None` when the
    /// folder holds none. Logged with every event so an A/B never silently
    /// mixes model versions.
    pub version: Option<String>,
}

#[derive(Deserialize)]
struct TableLine {
    track: TrackId,
    recommendations: Vec<TrackId>,
}

#[derive(Deserialize)]
struct UserLine {
    user: u64,
    tracks: Vec<TrackId>,
}

impl Models {
    /// Loads every model file in `dir`. A missing folder gives empty models;
    /// a corrupt file is an error naming the file and line, so a bad training
    /// run never silently replaces good tables.
    pub fn load(dir: &Path) -> Result<Models, ModelsError> {
        let mut models = Models::default();
        if !dir.is_dir() {
            return Ok(models);
        }
        let io = |path: &Path, source| ModelsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let inconsistent = |path: &Path, message| ModelsError::Inconsistent {
            path: path.to_path_buf(),
            message,
        };
        let top = dir.join(TOP_TRACKS_FILE);
        if top.is_file() {
            let text = std::fs::read_to_string(&top).map_err(|e| io(&top, e))?;
            let tracks: Vec<TrackId> =
                serde_json::from_str(&text).map_err(|e| ModelsError::Invalid {
                    path: top.clone(),
                    line: e.line(),
                    message: format!("{e}; expected a JSON array of track ids"),
                })?;
            models.top_tracks = Some(tracks);
        }
        let curve = dir.join(LISTEN_CURVE_FILE);
        if curve.is_file() {
            let text = std::fs::read_to_string(&curve).map_err(|e| io(&curve, e))?;
            let parsed: ListenCurve =
                serde_json::from_str(&text).map_err(|e| ModelsError::Invalid {
                    path: curve.clone(),
                    line: e.line(),
                    message: format!(
                        "{e}; expected an object with numbers bias, sharpness and discount"
                    ),
                })?;
            parsed
                .validate()
                .map_err(|message| inconsistent(&curve, message))?;
            models.listen_curve = parsed;
        }
        let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| io(dir, e))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(table) = name
                .strip_suffix(".jsonl")
                .filter(|stem| stem.starts_with(DEFAULT_TABLE))
            {
                let pairs = read_lines(&path, |l: TableLine| (l.track, l.recommendations))?;
                models
                    .tables
                    .insert(table.to_string(), ItemTable::from_pairs(pairs));
            } else if name == USER_LISTS_FILE {
                models.user_lists = read_lines(&path, |l: UserLine| (l.user, l.tracks))?
                    .into_iter()
                    .collect();
            } else if name == EMBEDDING_FILE {
                let lines = read_lines(&path, |l: embedding::EmbeddingLine| l)?;
                models.embedding = EmbeddingIndex::from_lines(lines)
                    .map_err(|message| inconsistent(&path, message))?;
            } else if name == SESSIONS_FILE {
                let lines = read_lines(&path, |l: sessions::SessionLine| l)?;
                models.sessions = SessionIndex::from_lines(lines)
                    .map_err(|message| inconsistent(&path, message))?;
            }
        }
        models.version = fingerprint(dir).map_err(|e| io(dir, e))?;
        Ok(models)
    }

    pub fn table(&self, name: &str) -> Option<&ItemTable> {
        self.tables.get(name)
    }
}

/// The version of a models folder: 16 hex digits of an FNV-1a hash over
/// each regular file's name, size and modification time (nanoseconds),
/// in name order; `None` for a folder without files. `analysis train`
/// replaces every file it writes (a rename), so each training run gives a
/// new version, and replicas reading one shared folder agree on it without
/// reading the data twice.
pub fn fingerprint(dir: &Path) -> std::io::Result<Option<String>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if !metadata.is_file() {
            continue;
        }
        let modified = metadata
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        files.push((entry.file_name(), metadata.len(), modified));
    }
    if files.is_empty() {
        return Ok(None);
    }
    files.sort();
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    for (name, size, modified) in &files {
        let bytes = name.as_encoded_bytes().iter().copied().chain([0]);
        let numbers = size.to_le_bytes().into_iter().chain(modified.to_le_bytes());
        for byte in bytes.chain(numbers) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
    }
    Ok(Some(format!("{hash:016x}")))
}

fn read_lines<L: for<'de> Deserialize<'de>, T>(
    path: &Path,
    convert: impl Fn(L) -> T,
) -> Result<Vec<T>, ModelsError> {
    let io = |source| ModelsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |line, e: serde_json::Error| ModelsError::Invalid {
        path: path.to_path_buf(),
        line,
        message: e.to_string(),
    };
    crate::jsonl::records(path, io, invalid)?
        .map(|record| record.map(|(_, line)| convert(line)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("botify-models-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The error of loading a models folder holding only `file` with
    /// `contents`.
    /// Loading a folder (`name`d) that holds `file` with `contents` fails
    /// with an error naming the file and each of `needles`.
    fn assert_load_error(name: &str, file: &str, contents: &str, needles: &[&str]) {
        let dir = temp_dir(name);
        std::fs::write(dir.join(file), contents).unwrap();
        let err = Models::load(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        for needle in [file].iter().chain(needles) {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn missing_folder_means_no_models() {
        let models = Models::load(Path::new("/nonexistent/botify/models")).unwrap();
        assert!(models.top_tracks.is_none() && models.tables.is_empty());
    }

    #[test]
    fn loads_tables_by_name() {
        let dir = temp_dir("load");
        std::fs::write(dir.join("top_tracks.json"), "[5, 3, 1]").unwrap();
        std::fs::write(
            dir.join("item2item.jsonl"),
            "{\"track\": 1, \"recommendations\": [2, 3]}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("item2item_als.jsonl"),
            "{\"track\": 1, \"recommendations\": [4]}\n",
        )
        .unwrap();
        let models = Models::load(&dir).unwrap();
        assert_eq!(models.top_tracks, Some(vec![5, 3, 1]));
        assert_eq!(models.table("item2item").unwrap().neighbours(1), &[2, 3]);
        assert_eq!(models.table("item2item_als").unwrap().neighbours(1), &[4]);
        assert!(models.table("item2item").unwrap().neighbours(9).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_table_names_file_and_line() {
        assert_load_error(
            "corrupt",
            "item2item.jsonl",
            "{\"track\": 1, \"recommendations\": [2]}\n{\"track\": \"x\"}\n",
            &["item2item.jsonl, line 2"],
        );
    }

    #[test]
    fn loads_the_embedding_and_the_sessions() {
        let dir = temp_dir("learned");
        std::fs::write(
            dir.join(EMBEDDING_FILE),
            "{\"track\": 2, \"vector\": [0.6, 0.8], \"neighbours\": [0]}\n\
             {\"track\": 0, \"vector\": [1.0, 0.0], \"neighbours\": [2]}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(SESSIONS_FILE),
            "{\"tracks\": [1, 2, 3], \"times\": [1.0, 0.9, 0.1]}\n\
             {\"tracks\": [4, 2], \"times\": [1.0, 0.5]}\n",
        )
        .unwrap();
        let models = Models::load(&dir).unwrap();

        let embedding = &models.embedding;
        assert_eq!((embedding.dim(), embedding.len()), (2, 2));
        // 0.6 and 0.8 as bfloat16 keeps them, to three digits.
        let close =
            |v: Vec<f32>, to: [f32; 2]| v.iter().zip(to).all(|(a, b)| (a - b).abs() < 0.004);
        assert!(close(embedding.vector(2).unwrap().to_vec(), [0.6, 0.8]));
        assert_eq!(embedding.vector(0).unwrap().to_vec(), [1.0, 0.0]);
        assert_eq!(embedding.vector(1), None, "a track without a line");
        assert_eq!(embedding.vector(7), None);
        assert_eq!(embedding.neighbours(2), &[0]);
        assert!(embedding.neighbours(1).is_empty());

        let sessions = &models.sessions;
        assert_eq!(sessions.len(), 2);
        let first = sessions.session(0);
        assert_eq!(&*first.tracks, &[1, 2, 3]);
        assert_eq!(&*first.times, &[1.0, 0.9, 0.1]);
        let liked_2: Vec<u32> = sessions.liked(2, 10).collect();
        assert_eq!(liked_2, vec![1, 0], "both liked 2, most recent first");
        assert_eq!(sessions.liked(2, 1).collect::<Vec<_>>(), vec![1]);
        assert_eq!(sessions.liked(3, 10).count(), 0, "3 was skipped");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_vector_of_another_dimension_is_an_error_naming_the_file() {
        assert_load_error(
            "dimension",
            EMBEDDING_FILE,
            "{\"track\": 0, \"vector\": [1.0, 0.0]}\n{\"track\": 1, \"vector\": [1.0, 0.0, 0.0]}\n",
            &["track 1", "dimension"],
        );
    }

    #[test]
    fn a_session_with_more_tracks_than_times_is_an_error_naming_the_file() {
        assert_load_error(
            "session-lengths",
            SESSIONS_FILE,
            "{\"tracks\": [1, 2], \"times\": [1.0, 0.5]}\n{\"tracks\": [1, 2, 3], \"times\": [1.0, 0.5]}\n",
            &["session 2"],
        );
    }
}
