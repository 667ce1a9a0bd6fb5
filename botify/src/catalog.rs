//! The track catalog: `tracks.jsonl` loaded into memory at start-up.
//!
//! Everything a recommender may know about a track comes from here or from
//! models trained on logs — never from the simulator's embeddings. Besides the
//! records, the catalog keeps the indexes cold-start recommenders need: tracks
//! per artist and per genre, and the catalog-wide popularity order.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub type TrackId = u32;
/// A [`TrackId`] in the API description: any u32. utoipa would describe
/// the alias as `int32`, which caps it at 2^31 − 1.
pub enum TrackIdSchema {}

impl utoipa::PartialSchema for TrackIdSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        unsigned_id_schema("track", u32::MAX.into()).into()
    }
}

/// The schema of a `what` id that is any integer in 0..=`max` (all ones: an
/// unsigned type's bound), for the API description: its exact bounds and no
/// `format`, since int32 and int64 are signed and would cap it at half.
pub fn unsigned_id_schema(what: &str, max: u64) -> utoipa::openapi::schema::ObjectBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let bits = max.count_ones();
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .minimum(Some(0))
        .maximum(Some(max))
        .description(Some(format!(
            "A {what} id: a non-negative integer that fits {bits} bits"
        )))
}

impl ToSchema for TrackIdSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "TrackId".into()
    }
}

/// Index of an artist in [`Catalog::artist_name`]; stable while the service runs
/// because artists are only ever appended.
pub type ArtistId = u32;

/// One catalog record, as in `tracks.jsonl` and as served by `GET /track/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"track": 576, "artist": "Nova Ash", "title": "Blue Hour", "genre": "ambient", "year": 2019, "popularity": 0.73}))]
pub struct Track {
    /// The track id: contiguous from 0.
    #[schema(value_type = TrackIdSchema)]
    pub track: TrackId,
    pub artist: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    /// Catalog popularity; higher is more popular.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog {path}: {source}; pass --catalog with a tracks.jsonl (`sim world` writes one)")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("catalog {path}, line {line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

/// Why a track could not be added at runtime.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AddTrackError {
    #[error("track id {given} is not the next free id; track ids are contiguous, use {expected}")]
    NotNextId { given: TrackId, expected: TrackId },
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tracks: Vec<Track>,
    artist_of: Vec<ArtistId>,
    artist_names: Vec<String>,
    artist_ids: HashMap<String, ArtistId>,
    /// Per artist, its tracks, most popular first.
    by_artist: Vec<Vec<TrackId>>,
    /// Per genre, its tracks, most popular first.
    by_genre: HashMap<String, Vec<TrackId>>,
    /// Every track, most popular first (catalog popularity).
    by_popularity: Vec<TrackId>,
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let display = path.display().to_string();
        let io = |source| CatalogError::Io {
            path: display.clone(),
            source,
        };
        let invalid = |line, message| CatalogError::Invalid {
            path: display.clone(),
            line,
            message,
        };
        let not_a_track = |line, e| {
            let expected = r#"{"track": <id>, "artist": "...", "title": "..."}"#;
            invalid(line, format!("{e}; expected {expected}"))
        };
        let mut tracks = Vec::new();
        for record in crate::jsonl::records(path, io, not_a_track)? {
            let (number, track): (usize, Track) = record?;
            if track.track as usize != tracks.len() {
                return Err(invalid(
                    number,
                    format!(
                        "track id {} out of order; ids must be contiguous from 0, expected {}",
                        track.track,
                        tracks.len()
                    ),
                ));
            }
            tracks.push(track);
        }
        if tracks.is_empty() {
            return Err(CatalogError::Invalid {
                path: display,
                line: 0,
                message: "the catalog has no tracks".into(),
            });
        }
        Ok(Catalog::from_tracks(tracks))
    }

    /// Builds the catalog and its indexes. Ids must be contiguous from 0.
    pub fn from_tracks(tracks: Vec<Track>) -> Catalog {
        let mut catalog = Catalog::default();
        for track in tracks {
            catalog.index_track(track);
        }
        catalog.sort_indexes();
        catalog
    }

    fn index_track(&mut self, track: Track) {
        let next_id = self.artist_names.len() as ArtistId;
        let artist = *self
            .artist_ids
            .entry(track.artist.clone())
            .or_insert(next_id);
        if artist == next_id {
            self.artist_names.push(track.artist.clone());
            self.by_artist.push(Vec::new());
        }
        self.by_artist[artist as usize].push(track.track);
        if let Some(genre) = &track.genre {
            self.by_genre
                .entry(genre.clone())
                .or_default()
                .push(track.track);
        }
        self.by_popularity.push(track.track);
        self.artist_of.push(artist);
        self.tracks.push(track);
    }

    fn sort_indexes(&mut self) {
        let popularity: Vec<f64> = self
            .tracks
            .iter()
            .map(|t| t.popularity.unwrap_or(0.0))
            .collect();
        let order = |list: &mut Vec<TrackId>| {
            list.sort_by(|&a, &b| {
                popularity[b as usize]
                    .total_cmp(&popularity[a as usize])
                    .then(a.cmp(&b))
            })
        };
        self.by_artist.iter_mut().for_each(order);
        self.by_genre.values_mut().for_each(order);
        order(&mut self.by_popularity);
    }

    /// Adds a track at runtime (admin API). Returns the new catalog, so the
    /// service can swap it in atomically while requests keep reading the old.
    pub fn with_track(&self, track: Track) -> Result<Catalog, AddTrackError> {
        let expected = self.tracks.len() as TrackId;
        if track.track != expected {
            return Err(AddTrackError::NotNextId {
                given: track.track,
                expected,
            });
        }
        let mut catalog = self.clone();
        catalog.index_track(track);
        catalog.sort_indexes();
        Ok(catalog)
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn get(&self, track: TrackId) -> Option<&Track> {
        self.tracks.get(track as usize)
    }

    pub fn contains(&self, track: TrackId) -> bool {
        (track as usize) < self.tracks.len()
    }

    /// The artist of a known track.
    pub fn artist_of(&self, track: TrackId) -> ArtistId {
        self.artist_of[track as usize]
    }

    pub fn artist_name(&self, artist: ArtistId) -> &str {
        &self.artist_names[artist as usize]
    }

    pub fn artist_id(&self, name: &str) -> Option<ArtistId> {
        self.artist_ids.get(name).copied()
    }

    /// The artist's tracks, most popular first.
    pub fn tracks_of_artist(&self, artist: ArtistId) -> &[TrackId] {
        &self.by_artist[artist as usize]
    }

    /// The genre's tracks, most popular first; empty for an unknown genre.
    pub fn tracks_of_genre(&self, genre: &str) -> &[TrackId] {
        self.by_genre.get(genre).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn genres(&self) -> impl Iterator<Item = &str> {
        self.by_genre.keys().map(String::as_str)
    }

    /// Every track, most popular first by catalog metadata.
    pub fn by_popularity(&self) -> &[TrackId] {
        &self.by_popularity
    }

    /// Tracks whose artist or title contains `query`, ignoring case, most
    /// popular first: how a listener finds a first track. A scan rather
    /// than an index: it serves a person typing, not the `/next` hot path,
    /// and an index would cost memory and work on every catalog change.
    pub fn search(&self, query: &str) -> impl Iterator<Item = TrackId> + '_ {
        let needle = query.to_lowercase();
        self.by_popularity.iter().copied().filter(move |&t| {
            let record = &self.tracks[t as usize];
            record.artist.to_lowercase().contains(&needle)
                || record.title.to_lowercase().contains(&needle)
        })
    }

    /// Metadata-only neighbours for cold start: the same artist's tracks, then
    /// the same genre's, each most popular first; the track itself excluded.
    pub fn metadata_neighbours(&self, track: TrackId) -> impl Iterator<Item = TrackId> + '_ {
        let record = self.get(track);
        let same_artist = record
            .map(|_| self.tracks_of_artist(self.artist_of(track)))
            .unwrap_or(&[]);
        let same_genre = record
            .and_then(|t| t.genre.as_deref())
            .map(|g| self.tracks_of_genre(g))
            .unwrap_or(&[]);
        let artist = record.map(|_| self.artist_of(track));
        same_artist
            .iter()
            .copied()
            .chain(
                same_genre
                    .iter()
                    .copied()
                    .filter(move |&t| Some(self.artist_of(t)) != artist),
            )
            .filter(move |&t| t != track)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small catalog: artists A (tracks 0,1,2), B (3,4), C (5); genres rock
    /// (A, B) and jazz (C). Popularity rises with the id within an artist.
    pub(crate) fn small() -> Catalog {
        let rows = [
            ("A", "rock", 0.1),
            ("A", "rock", 0.5),
            ("A", "rock", 0.3),
            ("B", "rock", 0.9),
            ("B", "rock", 0.2),
            ("C", "jazz", 0.4),
        ];
        Catalog::from_tracks(
            rows.iter()
                .enumerate()
                .map(|(i, (artist, genre, pop))| Track {
                    track: i as TrackId,
                    artist: artist.to_string(),
                    title: format!("t{i}"),
                    genre: Some(genre.to_string()),
                    year: None,
                    popularity: Some(*pop),
                })
                .collect(),
        )
    }

    #[test]
    fn indexes_sort_by_popularity() {
        let c = small();
        assert_eq!(c.by_popularity(), &[3, 1, 5, 2, 4, 0]);
        assert_eq!(c.tracks_of_artist(c.artist_id("A").unwrap()), &[1, 2, 0]);
        assert_eq!(c.tracks_of_genre("rock"), &[3, 1, 2, 4, 0]);
        assert!(c.tracks_of_genre("polka").is_empty());
    }

    #[test]
    fn metadata_neighbours_are_artist_then_genre() {
        let c = small();
        let n: Vec<_> = c.metadata_neighbours(0).collect();
        assert_eq!(n, vec![1, 2, 3, 4]);
    }

    #[test]
    fn search_matches_artist_or_title_ignoring_case_most_popular_first() {
        let c = small();
        assert_eq!(c.search("a").collect::<Vec<_>>(), vec![1, 2, 0]);
        assert_eq!(c.search("T4").collect::<Vec<_>>(), vec![4]);
        assert_eq!(c.search("t").count(), 6);
        assert_eq!(c.search("zzz").count(), 0);
    }

    #[test]
    fn runtime_track_must_take_the_next_id() {
        let c = small();
        let mut t = c.get(0).unwrap().clone();
        t.track = 9;
        assert_eq!(
            c.with_track(t.clone()).unwrap_err(),
            AddTrackError::NotNextId {
                given: 9,
                expected: 6
            }
        );
        t.track = 6;
        t.artist = "D".into();
        let bigger = c.with_track(t).unwrap();
        assert_eq!(bigger.len(), 7);
        assert_eq!(bigger.artist_name(bigger.artist_of(6)), "D");
        assert_eq!(c.len(), 6, "the original catalog is unchanged");
    }

    #[test]
    fn load_rejects_non_contiguous_ids() {
        let dir = std::env::temp_dir().join(format!("botify-catalog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tracks.jsonl");
        std::fs::write(
            &path,
            "{\"track\":0,\"artist\":\"a\",\"title\":\"x\"}\n{\"track\":2,\"artist\":\"a\",\"title\":\"y\"}\n",
        )
        .unwrap();
        let err = Catalog::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("contiguous"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
