//! Promotion and blocking at the output level (docs/recommenders.md#filters):
//! applied by the engine to whatever any recommender or endpoint is about to serve.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::{Catalog, TrackId, TrackIdSchema};

/// The filter settings, as in the `--filters` file and the admin API.
///
/// Sets are documented as plain arrays: a repeated entry is accepted and
/// counts once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"blocked_tracks": [13], "blocked_artists": ["Nova Ash"], "promoted_tracks": [576], "promote_rate": 0.1}))]
pub struct Filters {
    /// Tracks never served.
    #[serde(default, deserialize_with = "crate::json_integers::track_ids")]
    #[schema(value_type = Vec<TrackIdSchema>)]
    pub blocked_tracks: HashSet<TrackId>,
    /// Artists (by name) whose tracks are never served.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub blocked_artists: HashSet<String>,
    /// Tracks mixed into `/next` answers at `promote_rate`.
    #[serde(default, deserialize_with = "crate::json_integers::track_ids")]
    #[schema(value_type = Vec<TrackIdSchema>)]
    pub promoted_tracks: Vec<TrackId>,
    /// Probability, 0..=1, that an answer is replaced by a promoted track.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
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

    /// Fails naming every track id and artist name that `catalog` does not
    /// know: a typo in a filter would otherwise block or promote nothing
    /// while the operator believes it works.
    pub fn check_known(&self, catalog: &Catalog, origin: &str) -> Result<(), FiltersError> {
        let mut tracks: Vec<TrackId> = self
            .blocked_tracks
            .iter()
            .chain(&self.promoted_tracks)
            .copied()
            .filter(|&t| !catalog.contains(t))
            .collect();
        tracks.sort_unstable();
        tracks.dedup();
        let mut artists: Vec<&str> = self
            .blocked_artists
            .iter()
            .map(String::as_str)
            .filter(|name| catalog.artist_id(name).is_none())
            .collect();
        artists.sort_unstable();
        let mut unknown = Vec::new();
        if !tracks.is_empty() {
            unknown.push(format!("unknown track ids {tracks:?}"));
        }
        if !artists.is_empty() {
            unknown.push(format!("unknown artists {artists:?}"));
        }
        if unknown.is_empty() {
            return Ok(());
        }
        Err(FiltersError::Invalid {
            origin: origin.to_string(),
            message: format!(
                "{}; every track id and artist name must be in the catalog",
                unknown.join(" and ")
            ),
        })
    }

    pub fn blocks_nothing(&self) -> bool {
        self.blocked_tracks.is_empty() && self.blocked_artists.is_empty()
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

/// Filters that block `tracks` and the tracks of `artists`, and nothing
/// more: what most tests of serving under filters set up.
#[cfg(test)]
impl Filters {
    pub(crate) fn blocking(tracks: &[TrackId], artists: &[&str]) -> Filters {
        Filters {
            blocked_tracks: tracks.iter().copied().collect(),
            blocked_artists: artists.iter().map(|a| a.to_string()).collect(),
            ..Filters::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::small;

    #[test]
    fn blocks_tracks_and_artists() {
        let catalog = small();
        let filters = Filters::blocking(&[5], &["B"]);
        let blocked: Vec<_> = (0..6)
            .filter(|&t| filters.is_blocked(&catalog, t))
            .collect();
        assert_eq!(blocked, vec![3, 4, 5]);
    }

    #[test]
    fn names_unknown_tracks_and_artists() {
        let catalog = small();
        let known = Filters {
            promoted_tracks: vec![1],
            ..Filters::blocking(&[5], &["B"])
        };
        assert!(known.check_known(&catalog, "test").is_ok());
        let unknown = Filters {
            promoted_tracks: vec![1, 77],
            ..Filters::blocking(&[5, 99_999_999], &["B", "Nobody"])
        };
        let message = unknown
            .check_known(&catalog, "test")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("unknown track ids [77, 99999999]")
                && message.contains("unknown artists [\"Nobody\"]"),
            "{message}"
        );
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
