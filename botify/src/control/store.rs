//! Where the control plane is kept: Redis (shared by every replica), a file
//! in `--data-dir` (embedded mode), or memory (embedded without a data
//! folder: changes last until the process ends).
//!
//! Every backend offers the same three operations: read the version, read
//! the whole versioned control plane, and replace it only if the version is
//! still the one the change was made from (compare-and-set), so two
//! operators changing it through two replicas never lose a change.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{ControlDoc, ControlError, Versioned};
use crate::redis_link::RedisLink;

/// Redis layout, under the namespace: `{ns}:control` is a HASH with
/// `version` (a counter, bumped by every change) and `doc` (the JSON
/// [`ControlDoc`]); every change is published on the channel `{ns}:control`
/// with the new version as the message.
pub struct RedisControl {
    link: Arc<RedisLink>,
    key: String,
}

/// Replaces the document if the version is still `ARGV[1]`, bumps the
/// version and publishes it; answers the new version, or -1 when the
/// version moved on. One script, so the check and the write are atomic.
const REPLACE_SCRIPT: &str = r"
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return -1 end
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'doc', ARGV[2])
redis.call('PUBLISH', KEYS[1], version)
return version
";

impl RedisControl {
    pub fn new(link: Arc<RedisLink>, namespace: &str) -> RedisControl {
        RedisControl {
            link,
            key: Self::key(namespace),
        }
    }

    /// `{namespace}:control`: the hash, and the pub/sub channel.
    pub fn key(namespace: &str) -> String {
        format!("{namespace}:control")
    }

    pub fn channel(&self) -> &str {
        &self.key
    }

    async fn version(&self) -> Result<u64, ControlError> {
        let version: Option<u64> = self
            .link
            .cmd(redis::cmd("HGET").arg(&self.key).arg("version"))
            .await?;
        Ok(version.unwrap_or(0))
    }

    async fn load(&self) -> Result<Option<Versioned>, ControlError> {
        let (version, doc): (Option<u64>, Option<String>) = self
            .link
            .cmd(redis::cmd("HMGET").arg(&self.key).arg("version").arg("doc"))
            .await?;
        match (version, doc) {
            (Some(version), Some(doc)) => Ok(Some(Versioned {
                version,
                doc: serde_json::from_str(&doc)
                    .map_err(|e| ControlError::Corrupt(format!("{}: {e}", self.key)))?,
            })),
            _ => Ok(None),
        }
    }

    async fn replace(&self, expected: u64, doc: &ControlDoc) -> Result<Option<u64>, ControlError> {
        let json = serde_json::to_string(doc).expect("the control plane serialises");
        let version: i64 = self
            .link
            .cmd(
                redis::cmd("EVAL")
                    .arg(REPLACE_SCRIPT)
                    .arg(1)
                    .arg(&self.key)
                    .arg(expected)
                    .arg(json),
            )
            .await?;
        Ok(u64::try_from(version).ok())
    }
}

/// `<data-dir>/control.json`: `{"version": n, "doc": {..}}`, replaced
/// atomically (written aside, synced, renamed), so a crash leaves either the
/// old or the new file, never half of one.
pub struct FileControl {
    path: PathBuf,
}

pub const CONTROL_FILE: &str = "control.json";

impl FileControl {
    /// Creates the data folder if needed.
    pub fn open(dir: &Path) -> Result<FileControl, ControlError> {
        std::fs::create_dir_all(dir).map_err(|source| ControlError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(FileControl {
            path: dir.join(CONTROL_FILE),
        })
    }

    fn load(&self) -> Result<Option<Versioned>, ControlError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ControlError::Corrupt(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ControlError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn replace(&self, expected: u64, doc: &ControlDoc) -> Result<Option<u64>, ControlError> {
        let current = self.load()?.map_or(0, |v| v.version);
        if current != expected {
            return Ok(None);
        }
        let versioned = Versioned {
            version: current + 1,
            doc: doc.clone(),
        };
        let io = |source| ControlError::Io {
            path: self.path.clone(),
            source,
        };
        let aside = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&aside).map_err(io)?;
        serde_json::to_writer_pretty(&mut file, &versioned).expect("the control plane serialises");
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&aside, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            // The rename is durable once the folder is synced.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(Some(versioned.version))
    }
}

pub enum ControlStore {
    Redis(RedisControl),
    File(FileControl),
    Memory(Mutex<Option<Versioned>>),
}

impl ControlStore {
    /// `redis`, `file` or `memory`, for `/health`.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlStore::Redis(_) => "redis",
            ControlStore::File(_) => "file",
            ControlStore::Memory(_) => "memory",
        }
    }

    /// The stored version; 0 when nothing was ever stored.
    pub async fn version(&self) -> Result<u64, ControlError> {
        match self {
            ControlStore::Redis(redis) => redis.version().await,
            ControlStore::File(file) => Ok(file.load()?.map_or(0, |v| v.version)),
            ControlStore::Memory(memory) => Ok(lock(memory).as_ref().map_or(0, |v| v.version)),
        }
    }

    /// The stored control plane; `None` when nothing was ever stored.
    pub async fn load(&self) -> Result<Option<Versioned>, ControlError> {
        match self {
            ControlStore::Redis(redis) => redis.load().await,
            ControlStore::File(file) => file.load(),
            ControlStore::Memory(memory) => Ok(lock(memory).clone()),
        }
    }

    /// Stores `doc` if the stored version is still `expected`; answers the
    /// new version, or `None` when another change came first.
    pub async fn replace(
        &self,
        expected: u64,
        doc: &ControlDoc,
    ) -> Result<Option<u64>, ControlError> {
        match self {
            ControlStore::Redis(redis) => redis.replace(expected, doc).await,
            ControlStore::File(file) => file.replace(expected, doc),
            ControlStore::Memory(memory) => {
                let mut stored = lock(memory);
                let current = stored.as_ref().map_or(0, |v| v.version);
                if current != expected {
                    return Ok(None);
                }
                *stored = Some(Versioned {
                    version: current + 1,
                    doc: doc.clone(),
                });
                Ok(Some(current + 1))
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_store_replaces_only_from_the_current_version_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileControl::open(&dir.path().join("data")).unwrap();
        assert!(store.load().unwrap().is_none());
        let mut doc = ControlDoc {
            models_version: Some("a".into()),
            ..ControlDoc::default()
        };
        assert_eq!(store.replace(0, &doc).unwrap(), Some(1));
        assert_eq!(store.replace(0, &doc).unwrap(), None, "stale version");
        doc.models_version = Some("b".into());
        assert_eq!(store.replace(1, &doc).unwrap(), Some(2));
        let reopened = FileControl::open(&dir.path().join("data")).unwrap();
        let stored = reopened.load().unwrap().unwrap();
        assert_eq!((stored.version, stored.doc), (2, doc));
        assert!(!dir.path().join("data/control.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_control_plane() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONTROL_FILE), "{not json").unwrap();
        let store = FileControl::open(dir.path()).unwrap();
        assert!(matches!(store.load(), Err(ControlError::Corrupt(_))));
    }
}
