//! Exposure weights: how much each logged listen counts in training, so
//! that models learn from what the serving policy explored, not only from
//! what it already believed.
//!
//! A policy serves a track with a probability it logs (`propensity`). The
//! tracks it serves often are over-represented in its logs, and a model
//! trained on them as they are learns mostly what the policy already
//! served. Weighting a listen by the inverse of the probability it was
//! served with (inverse propensity) undoes that skew: a track served once
//! in a hundred counts as much as the hundred times the favourite was
//! served. Weights are capped at `cap` (a rare draw must not dominate a
//! model; the cap bounds the variance the correction adds) and then
//! divided by their mean, so the evidence thresholds and learning rates
//! keep their meaning whatever the policy.
//!
//! A listen whose recommendation logged no propensity (a log written
//! before botify logged them, the listener's own first track) weighs 1.

use super::Data;

/// The default cap on `1 / propensity`: a greedy pick among fifty has
/// propensity near 1, a softmax draw from its tail about 0.01; capping at
/// 10 lets explored picks count up to ten times a sure one.
pub const DEFAULT_CAP: f64 = 10.0;

/// One weight per record of the training data (`Data::records` order).
pub fn weights(data: &Data<'_>, cap: f64) -> Vec<f32> {
    let cap = cap.max(1.0);
    let mut weights = vec![1.0f32; data.records.len()];
    let mut weighted: Vec<usize> = Vec::new();
    for session in data.sessions {
        let events = session.events(data.records);
        for k in 1..events.len() {
            if let Some(p) = events[k - 1].propensity() {
                let index = session.first + k;
                weights[index] = (1.0 / p).min(cap) as f32;
                weighted.push(index);
            }
        }
    }
    if !weighted.is_empty() {
        let mean =
            weighted.iter().map(|&i| f64::from(weights[i])).sum::<f64>() / weighted.len() as f64;
        for &i in &weighted {
            weights[i] = (f64::from(weights[i]) / mean) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing::data;

    #[test]
    fn rarely_served_listens_weigh_more_up_to_the_cap_and_weights_average_one() {
        let session: &[(u32, f64)] = &[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)];
        let (mut records, sessions) = data(&[session]);
        // Track 1 was served with probability 0.5, 2 with 0.01 (capped at
        // 10), 3 with 0.25.
        for (record, p) in records.iter_mut().zip([0.5, 0.01, 0.25]) {
            *record = record.with_propensity(Some(p));
        }
        let data = Data::new(&records, &sessions);
        let w = weights(&data, 10.0);
        assert_eq!(w[0], 1.0, "the listener's own pick");
        let raw = [2.0, 10.0, 4.0];
        let mean = raw.iter().sum::<f64>() / 3.0;
        for (got, raw) in w[1..].iter().zip(raw) {
            assert!((f64::from(*got) - raw / mean).abs() < 1e-6, "{w:?}");
        }
        let uncapped = weights(&data, 1000.0);
        assert!(uncapped[2] / uncapped[1] > 40.0, "1/0.01 against 1/0.5");
    }

    #[test]
    fn logs_without_propensities_weigh_one_everywhere() {
        let session: &[(u32, f64)] = &[(0, 1.0), (1, 0.3), (2, 1.0)];
        let (records, sessions) = data(&[session, session]);
        let data = Data::new(&records, &sessions);
        assert!(weights(&data, DEFAULT_CAP).iter().all(|&w| w == 1.0));
    }
}
