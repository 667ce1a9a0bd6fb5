//! Training the models botify serves, from its own logs (docs/analysis.md#training).
//!
//! Every model learns from closed sessions only (the events [`crate::sessions`]
//! keeps), so `train --holdout F` can leave the latest sessions out for
//! `eval --holdout F`. Outputs, in the formats botify loads from `--models`:
//!
//! - [`TOP_TRACKS`]: a JSON array of track ids, most popular first;
//! - [`ITEM2ITEM`] (co-listening) and [`ITEM2ITEM_ALS`] (ALS item factors):
//!   JSON lines `{"track": t, "recommendations": [..]}`, best first.
//!
//! Files are written atomically (temp file + rename), so a service reloading
//! mid-write never reads half a file.

pub mod als;
pub mod colisten;
pub mod exposure;
pub mod item2vec;
pub mod listen_curve;
pub mod popularity;
pub mod recent_sessions;
pub mod session_factors;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use botify::catalog::Catalog;

use crate::logs::Record;
use crate::output;
use crate::sessions::Session;

/// Popularity, most popular first.
pub const TOP_TRACKS: &str = "top_tracks.json";
/// Co-listening item-to-item table.
pub const ITEM2ITEM: &str = "item2item.jsonl";
/// Item-to-item table from ALS item factors.
pub const ITEM2ITEM_ALS: &str = "item2item_als.jsonl";

/// Learned track vectors and their neighbour lists (`embedding`).
pub const EMBEDDING: &str = botify::models::EMBEDDING_FILE;
/// Recent sessions (`session_knn`).
pub const SESSIONS: &str = botify::models::SESSIONS_FILE;
/// Expected listen time in the learned space (`session_interest`).
pub const LISTEN_CURVE: &str = botify::models::LISTEN_CURVE_FILE;

/// A track's neighbours, best first, for each track that has any; sorted by track.
pub type ItemTable = Vec<(u32, Vec<u32>)>;

/// One line of an item-to-item file.
#[derive(Debug, Serialize, Deserialize)]
struct ItemLine {
    track: u32,
    recommendations: Vec<u32>,
}

/// Training input: sorted records, the closed sessions cut from them, and
/// each record's [exposure weight](exposure) (none: every listen weighs 1).
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    pub records: &'a [Record],
    pub sessions: &'a [Session],
    exposure: &'a [f32],
}

impl<'a> Data<'a> {
    /// Training input whose listens all weigh 1.
    pub fn new(records: &'a [Record], sessions: &'a [Session]) -> Data<'a> {
        Data {
            records,
            sessions,
            exposure: &[],
        }
    }

    /// Training input whose record `i` weighs `exposure[i]` (see
    /// [`exposure::weights`]).
    pub fn with_exposure(self, exposure: &'a [f32]) -> Data<'a> {
        Data { exposure, ..self }
    }

    /// The first listen of each catalog track in `session`, in order, as
    /// (event index, event, plays of its artist earlier in the session).
    /// Repeats are left out: they say nothing new of a track and are no new
    /// play of its artist; so are tracks the catalog does not hold (added
    /// after its file was written: no artist to count).
    pub fn first_listens(
        &self,
        session: &Session,
        catalog: &Catalog,
    ) -> Vec<(usize, &'a Record, u32)> {
        let mut plays = botify::recommenders::session::ArtistPlays::default();
        let mut heard: Vec<u32> = Vec::new();
        let mut listens = Vec::new();
        for (k, event) in session.events(self.records).iter().enumerate() {
            if !catalog.contains(event.track) || heard.contains(&event.track) {
                continue;
            }
            heard.push(event.track);
            listens.push((k, event, plays.record(catalog.artist_of(event.track))));
        }
        listens
    }

    /// The exposure weight of event `k` of `session`.
    pub fn weight(&self, session: &Session, k: usize) -> f64 {
        self.exposure
            .get(session.first + k)
            .map_or(1.0, |&w| f64::from(w))
    }

    /// Every event of every session, in session order.
    pub fn events(&self) -> impl Iterator<Item = &'a Record> + 'a {
        let records = self.records;
        self.sessions.iter().flat_map(move |s| s.events(records))
    }
}

/// Dense indices for the track ids seen in training.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    /// Track ids, ascending; a track's index is its position.
    pub ids: Vec<u32>,
}

impl Vocab {
    pub fn new(mut ids: Vec<u32>) -> Vocab {
        ids.sort_unstable();
        ids.dedup();
        Vocab { ids }
    }

    pub fn index(&self, track: u32) -> Option<usize> {
        self.ids.binary_search(&track).ok()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

pub fn write_top_tracks(path: &Path, ranking: &[u32]) -> Result<()> {
    output::write_atomic(path, |w| {
        serde_json::to_writer(&mut *w, ranking)?;
        w.write_all(b"\n")
    })
}

pub fn write_item_table(path: &Path, table: &ItemTable) -> Result<()> {
    output::write_atomic(path, |w| {
        for (track, recommendations) in table {
            serde_json::to_writer(
                &mut *w,
                &ItemLine {
                    track: *track,
                    recommendations: recommendations.clone(),
                },
            )?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// One `{"track": t, "vector": [..], "neighbours": [..]}` line per track.
pub fn write_embedding(path: &Path, embedding: &item2vec::Embedding) -> Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        track: u32,
        vector: &'a [f32],
        neighbours: &'a [u32],
    }
    output::write_atomic(path, |w| {
        for (track, neighbours) in embedding.neighbours.iter().enumerate() {
            let track = track as u32;
            let line = Line {
                track,
                vector: embedding.vector(track),
                neighbours,
            };
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

pub fn write_listen_curve(path: &Path, curve: &botify::models::ListenCurve) -> Result<()> {
    output::write_atomic(path, |w| {
        serde_json::to_writer(&mut *w, curve)?;
        w.write_all(b"\n")
    })
}

/// One `{"tracks": [..], "times": [..]}` line per session, oldest first.
pub fn write_sessions(path: &Path, sessions: &[recent_sessions::PastSession]) -> Result<()> {
    output::write_atomic(path, |w| {
        for session in sessions {
            serde_json::to_writer(&mut *w, session)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

pub fn read_top_tracks(path: &Path) -> Result<Vec<u32>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a JSON array of track ids; regenerate it with `analysis train`",
            path.display()
        )
    })
}

pub fn read_item_table(path: &Path) -> Result<HashMap<u32, Vec<u32>>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut table = HashMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let item: ItemLine = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: expected {{\"track\": t, \"recommendations\": [..]}}; regenerate it with `analysis train`",
                path.display(),
                n + 1
            )
        })?;
        table.insert(item.track, item.recommendations);
    }
    Ok(table)
}

/// Training input built by hand, for the models' tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::logs::Record;
    use crate::sessions::{self, Session};
    use crate::train::item2vec::{Embedding, NeighbourLists};
    use crate::train::Data;
    use botify::catalog::{Catalog, Track};
    use indicatif::ProgressBar;

    /// One closed session per list of `(track, time)`, user `i` for list
    /// `i`, one after the other in time (a millisecond per event). The
    /// first track is the user's pick; the last closes the session.
    pub fn data(listens: &[&[(u32, f64)]]) -> (Vec<Record>, Vec<Session>) {
        let mut start = 1;
        let timed: Vec<(u64, &[(u32, f64)])> = listens
            .iter()
            .map(|&session| {
                let timed = (start, session);
                start += session.len() as u64;
                timed
            })
            .collect();
        data_at(&timed)
    }

    /// A catalog and sessions of two taste groups: tracks 0–9 in groups
    /// {0..4} and {5..9}. Artists a0 and a1 and the genres cut across the
    /// groups; artist a2 is track 4's alone (in the first group), a3 track
    /// 9's (in the second). Tracks 10–12 are never played: 10 and 12 are by
    /// a2, 11 by a3, all of genre g0. Each session likes one group's tracks
    /// together, with a skip of a track of the other group after its second
    /// like.
    pub fn two_taste_groups() -> (Catalog, Vec<Vec<(u32, f64)>>) {
        let track = |t: u32, artist: u32, genre: u32| {
            bare_track(t, &format!("a{artist}"), Some(&format!("g{genre}")))
        };
        let artists = [0, 1, 0, 1, 2, 0, 1, 0, 1, 3];
        let mut tracks: Vec<Track> = (0..10)
            .map(|t| track(t, artists[t as usize], t % 3))
            .collect();
        tracks.extend([track(10, 2, 0), track(11, 3, 0), track(12, 2, 0)]);
        let sessions = (0..60u32)
            .map(|i| {
                let (group, other) = if i % 2 == 0 { (0, 5) } else { (5, 0) };
                let shift = i / 2;
                let mut listens: Vec<(u32, f64)> = (0..5)
                    .map(|j| (group + (shift + j) % 5, 1.0 - 0.05 * j as f64))
                    .collect();
                listens.insert(2, (other + (shift * 3) % 5, 0.05));
                listens
            })
            .collect();
        (Catalog::from_tracks(tracks), sessions)
    }

    /// Track `id` of the test catalogs: by `artist`, of `genre`, titled
    /// `t<id>`, with no year or popularity.
    pub fn bare_track(id: u32, artist: &str, genre: Option<&str>) -> Track {
        Track {
            track: id,
            artist: artist.to_string(),
            title: format!("t{id}"),
            genre: genre.map(str::to_string),
            year: None,
            popularity: None,
        }
    }

    /// The embedding `fit` learns with `params` from `sessions` (as [`data`]
    /// lays them out) over the [`two_taste_groups`] catalog, with no progress
    /// shown: item2vec and the session factorisation are tested on the same
    /// input.
    pub fn embed<P>(
        sessions: &[Vec<(u32, f64)>],
        params: P,
        fit: impl FnOnce(Data<'_>, &Catalog, P, &ProgressBar) -> Embedding,
    ) -> Embedding {
        let refs: Vec<&[(u32, f64)]> = sessions.iter().map(Vec::as_slice).collect();
        let (records, sessions) = data(&refs);
        let (catalog, _) = two_taste_groups();
        fit(
            Data::new(&records, &sessions),
            &catalog,
            params,
            &ProgressBar::hidden(),
        )
    }

    /// Neighbour lists for the small test catalogs: four, uncapped.
    pub const FOUR_NEIGHBOURS: NeighbourLists = NeighbourLists {
        count: 4,
        per_artist: 0,
    };

    /// The `Params` of the trainer in scope for the small test catalogs:
    /// eight dimensions, [`FOUR_NEIGHBOURS`], one thread, `$epochs` passes
    /// from `$seed`, the rest as served. A macro because item2vec's and the
    /// session factorisation's `Params` share these fields but no type.
    macro_rules! small_params {
        ($epochs:expr, $seed:expr) => {
            Params {
                dim: 8,
                epochs: $epochs,
                neighbours: $crate::train::testing::FOUR_NEIGHBOURS,
                seed: $seed,
                threads: 1,
                ..Params::default()
            }
        };
    }
    pub(crate) use small_params;

    /// The largest difference between the vectors of tracks `a` and `b`
    /// in any dimension: under 1e-6 when they are one vector.
    pub fn largest_difference(e: &Embedding, a: u32, b: u32) -> f32 {
        e.vector(a)
            .iter()
            .zip(e.vector(b))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    }

    /// The mean cosine of `track` with the tracks of [`two_taste_groups`]'
    /// group `group` (0 or 1), itself left out.
    pub fn mean_cosine_with_group(e: &Embedding, track: u32, group: u32) -> f32 {
        let others: Vec<u32> = (group * 5..group * 5 + 5).filter(|&t| t != track).collect();
        others.iter().map(|&t| cosine(e, track, t)).sum::<f32>() / others.len() as f32
    }

    /// The cosine of tracks `a` and `b` in `e` (its vectors are unit
    /// vectors, as served).
    pub fn cosine(e: &Embedding, a: u32, b: u32) -> f32 {
        e.vector(a)
            .iter()
            .zip(e.vector(b))
            .map(|(x, y)| x * y)
            .sum()
    }

    /// Like [`data`], session `i` starting at its own timestamp `start`.
    pub fn data_at(listens: &[(u64, &[(u32, f64)])]) -> (Vec<Record>, Vec<Session>) {
        let mut records = Vec::new();
        for (user, &(start, session)) in listens.iter().enumerate() {
            for (i, &(track, time)) in session.iter().enumerate() {
                let last = i + 1 == session.len();
                let next = session.get(i + 1).map(|x| x.0);
                records.push(Record::new(
                    user as u64,
                    start + i as u64,
                    track,
                    time,
                    0.001,
                    next,
                    0,
                    last,
                ));
            }
        }
        sessions::sort(&mut records);
        let (sessions, _) = sessions::sessionize(&records);
        (records, sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_in_botify_format() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join(TOP_TRACKS);
        write_top_tracks(&top, &[5, 1, 9]).unwrap();
        assert_eq!(fs::read_to_string(&top).unwrap(), "[5,1,9]\n");
        assert_eq!(read_top_tracks(&top).unwrap(), vec![5, 1, 9]);

        let i2i = dir.path().join(ITEM2ITEM);
        write_item_table(&i2i, &vec![(1, vec![2, 3]), (2, vec![1])]).unwrap();
        assert_eq!(
            fs::read_to_string(&i2i).unwrap(),
            "{\"track\":1,\"recommendations\":[2,3]}\n{\"track\":2,\"recommendations\":[1]}\n"
        );
        let table = read_item_table(&i2i).unwrap();
        assert_eq!(table[&1], vec![2, 3]);

        fs::write(&i2i, "{\"track\":1}\n").unwrap();
        let err = format!("{:#}", read_item_table(&i2i).unwrap_err());
        assert!(err.contains(":1: expected"), "{err}");
    }

    #[test]
    fn vocab_is_dense_and_sorted() {
        let v = Vocab::new(vec![30, 10, 30, 20]);
        assert_eq!(v.ids, vec![10, 20, 30]);
        assert_eq!((v.index(20), v.index(25)), (Some(1), None));
    }
}
