use super::{Candidates, Context, Pool, Recommender};
use crate::state::StateUpdate;

/// A random track by the artist of the track just heard.
pub struct StickyArtist;

impl Recommender for StickyArtist {
    fn name(&self) -> &'static str {
        "sticky_artist"
    }

    fn candidates<'a>(&self, ctx: &Context<'a>, _update: &mut StateUpdate) -> Candidates<'a> {
        let artist = ctx.catalog.artist_of(ctx.track);
        Candidates::Uniform(Pool::Tracks(ctx.catalog.tracks_of_artist(artist)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;

    #[test]
    fn serves_the_same_artist_until_exhausted() {
        let mut f = Fixture::new();
        let (track, _) = f.recommend(&StickyArtist, 3, 1.0);
        assert_eq!(track, Some(4), "artist B has tracks 3 and 4");
        f.heard(&[4]);
        let (track, _) = f.recommend(&StickyArtist, 3, 1.0);
        assert_eq!(track, None, "nothing left: the engine falls back");
    }
}
