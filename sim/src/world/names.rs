//! Made-up but readable names for genres, artists and track titles.
//!
//! Names carry no signal the user model uses; they exist so that logs, reports
//! and `GET /track/{id}` look like a music catalog, and so that artists are
//! told apart by name, which is how botify identifies them.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::Rng;

const GENRES: &[&str] = &[
    "pop",
    "rock",
    "hip-hop",
    "electronic",
    "r&b",
    "indie",
    "metal",
    "jazz",
    "classical",
    "country",
    "folk",
    "latin",
    "reggae",
    "blues",
    "punk",
    "soul",
    "techno",
    "house",
    "ambient",
    "k-pop",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "ven", "tor", "sa", "li", "no", "del", "mar", "zu", "fe", "ri", "an",
    "bel", "co", "dra", "el", "fi", "go", "ha", "ja", "ke", "lu", "mo", "ne", "or", "pa", "qui",
    "ro", "si", "ta", "ul", "vi", "wo", "xe", "ya", "zo", "ber", "cas", "din", "ess", "fal", "gri",
    "hol", "ist", "jun", "kor", "lem", "nys", "ost", "pel", "rin", "sol", "tam", "ux", "val",
];

const TITLE_WORDS: &[&str] = &[
    "Love",
    "Night",
    "Fire",
    "Rain",
    "Heart",
    "City",
    "Dream",
    "Summer",
    "Gold",
    "River",
    "Light",
    "Shadow",
    "Road",
    "Home",
    "Blue",
    "Wild",
    "Electric",
    "Silent",
    "Golden",
    "Broken",
    "Midnight",
    "Ocean",
    "Stars",
    "Echo",
    "Paper",
    "Glass",
    "Neon",
    "Velvet",
    "Storm",
    "Sugar",
    "Ghost",
    "Lonely",
    "Dance",
    "Forever",
    "Again",
    "Tonight",
    "Down",
    "Away",
    "Slow",
    "Fast",
    "Young",
    "Honey",
    "Moon",
    "Sun",
    "Waves",
    "Fever",
    "Runaway",
    "Satellite",
    "Daylight",
    "Tides",
];

/// Name of genre `index`: the common genres first, then numbered variants
/// ("pop 2", ...) if more genres are asked for than the list holds.
pub(super) fn genre(index: usize) -> String {
    let base = GENRES[index % GENRES.len()];
    match index / GENRES.len() {
        0 => base.to_string(),
        n => format!("{base} {}", n + 1),
    }
}

fn word<R: Rng>(rng: &mut R, min_syllables: usize, max_syllables: usize) -> String {
    let n = rng.gen_range(min_syllables..=max_syllables);
    let mut w: String = (0..n)
        .map(|_| *SYLLABLES.choose(rng).expect("non-empty"))
        .collect();
    w[..1].make_ascii_uppercase();
    w
}

/// A fresh artist name, unique among `taken` (which it is added to): artists
/// are identified by name in `tracks.jsonl`, so two artists must never share one.
pub(super) fn artist<R: Rng>(rng: &mut R, taken: &mut HashSet<String>) -> String {
    let name = match rng.gen_range(0..5) {
        0 => format!("{} {}", word(rng, 2, 2), word(rng, 2, 3)),
        1 => format!("The {}s", word(rng, 2, 3)),
        2 => word(rng, 2, 3),
        3 => format!("DJ {}", word(rng, 1, 2)),
        _ => format!("{} & the {}s", word(rng, 2, 2), word(rng, 2, 2)),
    };
    let mut unique = name.clone();
    let mut n = 2;
    while taken.contains(&unique) {
        unique = format!("{name} {n}");
        n += 1;
    }
    taken.insert(unique.clone());
    unique
}

/// A track title of one to three words.
pub(crate) fn title<R: Rng>(rng: &mut R) -> String {
    let n = rng.gen_range(1..=3);
    let words: Vec<&str> = (0..n)
        .map(|_| *TITLE_WORDS.choose(rng).expect("non-empty"))
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::derived_rng;

    #[test]
    fn artist_names_are_unique() {
        let mut rng = derived_rng(1, 1, 1);
        let mut taken = HashSet::new();
        let names: Vec<String> = (0..20_000).map(|_| artist(&mut rng, &mut taken)).collect();
        let distinct: HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len());
    }

    #[test]
    fn genres_beyond_the_list_are_numbered() {
        assert_eq!(genre(0), "pop");
        assert_eq!(genre(GENRES.len()), "pop 2");
    }
}
