//! Popularity: tracks ranked by total listen time in the logs.
//!
//! Listen time (the sum of listened fractions), not play count, because a
//! track that is served often and skipped is not popular: botify's logs come
//! from a recommender, so plays partly measure what it chose to serve, while
//! listen time measures what listeners kept. Ties go to more plays, then to the
//! lower id, so the ranking is deterministic.

use super::{Data, Vocab};

/// Listen time and plays per track of the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    pub vocab: Vocab,
    /// Sum of `time` per track, by vocabulary index.
    pub listen_time: Vec<f64>,
    /// Events per track, by vocabulary index.
    pub plays: Vec<u64>,
}

impl Popularity {
    pub fn from_data(data: Data<'_>) -> Popularity {
        let vocab = Vocab::new(data.events().map(|r| r.track).collect());
        let mut listen_time = vec![0.0; vocab.len()];
        let mut plays = vec![0; vocab.len()];
        for r in data.events() {
            let i = vocab.index(r.track).expect("vocabulary holds every track");
            listen_time[i] += r.time;
            plays[i] += 1;
        }
        Popularity {
            vocab,
            listen_time,
            plays,
        }
    }

    /// Track ids, most popular first (every track seen in training).
    pub fn ranking(&self) -> Vec<u32> {
        let mut order: Vec<usize> = (0..self.vocab.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            self.listen_time[b]
                .total_cmp(&self.listen_time[a])
                .then(self.plays[b].cmp(&self.plays[a]))
                .then(a.cmp(&b))
        });
        order.into_iter().map(|i| self.vocab.ids[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Record;
    use crate::sessions;

    #[test]
    fn ranks_by_listen_time_then_plays_then_id() {
        let ev = |ts, track, time, last: bool| {
            Record::new(1, ts, track, time, 0.001, (!last).then_some(0), 0, last)
        };
        // listen time: 2 → 1.75; 8 → 1.0 in 2 plays; 5 → 1.0 in 1 play;
        // 9 and 6 → 0.25 each in 1 play (id order).
        let mut records = vec![
            ev(1, 2, 1.0, false),
            ev(2, 8, 0.5, false),
            ev(3, 9, 0.25, false),
            ev(4, 5, 1.0, false),
            ev(5, 8, 0.5, false),
            ev(6, 6, 0.25, false),
            ev(7, 2, 0.75, true),
            ev(8, 1, 1.0, false), // open session: ignored
        ];
        sessions::sort(&mut records);
        let (sessions, _) = sessions::sessionize(&records);
        let pop = Popularity::from_data(Data::new(&records, &sessions));
        assert_eq!(pop.ranking(), vec![2, 8, 5, 6, 9]);
        assert_eq!(pop.vocab.ids, vec![2, 5, 6, 8, 9]);
    }
}
