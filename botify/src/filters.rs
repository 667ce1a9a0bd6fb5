//! Promotion and blocking at the output level (docs/recommenders.md#filters):
//! applied by the engine to whatever any recommender or endpoint is about to serve.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, TrackId};

/// The filter settings, as in the `--filters` file and the admin API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Tracks never served.
    #[serde(default)]
    pub blocked_tracks: HashSet<TrackId>,
    /// Artists (by name) whose tracks are never served.
    #[serde(default)]
    pub blocked_artists: HashSet<String>,
    /// Tracks mixed into `/next` answers at `promote_rate`.
    #[serde(default)]
    pub promoted_tracks: Vec<TrackId>,
    /// Probability, 0..=1, that an answer is replaced by a promoted track.
    #[serde(default)]
    pub promote_rate: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum FiltersError {
    #[error("cannot read filters file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid filters {origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Filters {
    pub fn load(path: &Path) -> Result<Filters, FiltersError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FiltersError::Io {
            path: origin.clone(),
            source,
        })?;
        let filters: Filters =
            serde_json::from_str(&text).map_err(|e| FiltersError::Invalid {
                origin: origin.clone(),
                message: format!("{e}; expected {{\"blocked_tracks\": [..], \"blocked_artists\": [..], \"promoted_tracks\": [..], \"promote_rate\": 0.1}}"),
            })?;
        filters.validate(&origin)?;
        Ok(filters)
    }

    pub fn validate(&self, origin: &str) -> Result<(), FiltersError> {
        if !(0.0..=1.0).contains(&self.promote_rate) {
            return Err(FiltersError::Invalid {
                origin: origin.to_string(),
                message: format!("promote_rate {} is outside 0..=1", self.promote_rate),
            });
        }
        Ok(())
    }

    pub fn is_blocked(&self, catalog: &Catalog, track: TrackId) -> bool {
        if self.blocked_tracks.contains(&track) {
            return true;
        }
        !self.blocked_artists.is_empty()
            && catalog.contains(track)
            && self
                .blocked_artists
                .contains(catalog.artist_name(catalog.artist_of(track)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::small;

    #[test]
    fn blocks_tracks_and_artists() {
        let catalog = small();
        let filters = Filters {
            blocked_tracks: HashSet::from([5]),
            blocked_artists: HashSet::from(["B".to_string()]),
            ..Filters::default()
        };
        let blocked: Vec<_> = (0..6)
            .filter(|&t| filters.is_blocked(&catalog, t))
            .collect();
        assert_eq!(blocked, vec![3, 4, 5]);
    }

    #[test]
    fn rejects_rate_outside_unit_interval() {
        let filters = Filters {
            promote_rate: 1.5,
            ..Filters::default()
        };
        assert!(filters.validate("test").is_err());
    }
}
