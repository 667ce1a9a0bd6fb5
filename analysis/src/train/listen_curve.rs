//! The listen curve `session_interest` ranks by (botify's
//! [`ListenCurve`]): expected listen time as a logistic curve of a track's
//! cosine with the session's first track in the learned space, discounted
//! per earlier play of its artist in the session.
//!
//! Fitted by least squares over a grid, on every recommended listen of the
//! training sessions that is not a repeat; the discount keeps its prior
//! unless enough listens are of an artist already heard. Which tracks were served depends
//! on the serving policy, but only through what the policy saw — the
//! session so far, summarised here by the cosine and the artist's plays —
//! so the fit of listen time *given* those is not biased by it, and needs
//! no importance weights.

use botify::catalog::Catalog;
use botify::models::{dot, ListenCurve};

use super::item2vec::Embedding;
use super::Data;

/// At most this many listens enter the fit (evenly strided): three numbers
/// are well determined long before.
const MAX_SAMPLES: usize = 100_000;
/// Below this many listens the prior is kept: too few to fit three numbers.
const MIN_SAMPLES: usize = 1_000;

/// One recommended listen: cosine with the first track, earlier plays of
/// its artist this session, listen time.
#[derive(Debug, Clone, Copy)]
struct Sample {
    cosine: f32,
    plays: i32,
    time: f32,
}

/// The fitted curve, or `None` when the sessions hold fewer than
/// [`MIN_SAMPLES`] recommended listens of tracks with a vector.
pub fn fit(data: Data<'_>, catalog: &Catalog, embedding: &Embedding) -> Option<ListenCurve> {
    let samples = samples(data, catalog, embedding);
    if samples.len() < MIN_SAMPLES {
        return None;
    }
    // The discount is only seen in listens of an artist heard before: a
    // log with few of them (uniformly random traffic) says nothing about
    // it, and a fit to noise could drop it to 1, serving one artist until
    // the listener tires. Then the prior stands.
    let repeats = samples.iter().filter(|s| s.plays > 0).count();
    let discounts: Vec<f32> = if repeats >= MIN_SAMPLES {
        (10..=20).map(|d| d as f32 * 0.05).collect()
    } else {
        vec![ListenCurve::default().discount]
    };
    let stride = samples.len().div_ceil(MAX_SAMPLES);
    let samples: Vec<Sample> = samples.into_iter().step_by(stride).collect();
    let mut best = (f64::INFINITY, ListenCurve::default());
    for &discount in &discounts {
        let scales: Vec<f32> = samples.iter().map(|s| discount.powi(s.plays)).collect();
        for bias in (-8..=20).map(|b| b as f32 * 0.05) {
            for sharpness in [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0] {
                let curve = ListenCurve {
                    bias,
                    sharpness,
                    discount,
                };
                let error: f64 = samples
                    .iter()
                    .zip(&scales)
                    .map(|(s, scale)| {
                        let fresh = curve.expected_time(s.cosine, 0);
                        f64::from(fresh * scale - s.time).powi(2)
                    })
                    .sum();
                if error < best.0 {
                    best = (error, curve);
                }
            }
        }
    }
    Some(best.1)
}

fn samples(data: Data<'_>, catalog: &Catalog, embedding: &Embedding) -> Vec<Sample> {
    let mut samples = Vec::new();
    for session in data.sessions {
        let listens = data.first_listens(session, catalog);
        // Every catalog track has a vector (the embedding is fitted on it).
        let Some(&(0, first, _)) = listens.first() else {
            continue;
        };
        for &(_, event, plays) in &listens[1..] {
            samples.push(Sample {
                cosine: dot(embedding.vector(first.track), embedding.vector(event.track)),
                plays: plays as i32,
                time: event.time as f32,
            });
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing::{bare_track, data};

    /// Four tracks in two dimensions: 0, 1 and 3 close, 2 orthogonal to
    /// them; 1 and 3 by one artist, 0 and 2 by others.
    fn catalog() -> Catalog {
        let tracks = [0, 1, 2, 1]
            .iter()
            .zip(0..)
            .map(|(artist, t)| bare_track(t, &format!("a{artist}"), None));
        Catalog::from_tracks(tracks.collect())
    }

    fn embedding() -> Embedding {
        Embedding {
            dim: 2,
            vectors: vec![1.0, 0.0, 0.96, 0.28, 0.0, 1.0, 0.96, 0.28],
            neighbours: vec![Vec::new(); 4],
        }
    }

    #[test]
    fn fits_a_curve_that_rises_with_the_cosine_and_falls_with_artist_plays() {
        let catalog = catalog();
        let embedding = embedding();
        // Close tracks are listened fully, the orthogonal one skipped; a
        // second track of an artist (3 after 1) is listened half.
        let session: &[(u32, f64)] = &[(0, 1.0), (1, 1.0), (2, 0.0), (3, 0.5)];
        let sessions = vec![session; 1_000];
        let (records, sessions) = data(&sessions);
        let data = Data::new(&records, &sessions);
        let curve = fit(data, &catalog, &embedding).expect("3,000 samples, 1,000 repeats");
        assert!(curve.expected_time(0.96, 0) > 0.9, "{curve:?}");
        assert!(curve.expected_time(0.0, 0) < 0.1, "{curve:?}");
        assert!((0.45..=0.55).contains(&curve.discount), "{curve:?}");
    }

    #[test]
    fn the_discount_keeps_its_prior_without_enough_repeated_artists() {
        let catalog = catalog();
        // 1 and 3 share an artist: 3 after 1 is the only repeat, 500 times.
        let session: &[(u32, f64)] = &[(0, 1.0), (1, 1.0), (2, 0.0), (3, 1.0)];
        let (records, sessions) = data(&vec![session; 500]);
        let data = Data::new(&records, &sessions);
        let curve = fit(data, &catalog, &embedding()).expect("1,500 samples");
        assert_eq!(curve.discount, ListenCurve::default().discount);
        assert!(curve.expected_time(0.96, 0) > curve.expected_time(0.0, 0));
    }

    #[test]
    fn too_few_listens_keep_the_prior() {
        let catalog = catalog();
        let session: &[(u32, f64)] = &[(0, 1.0), (1, 1.0)];
        let (records, sessions) = data(&[session; 10]);
        let data = Data::new(&records, &sessions);
        assert_eq!(fit(data, &catalog, &embedding()), None);
    }
}
