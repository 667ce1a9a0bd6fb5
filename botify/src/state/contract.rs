//! Behaviour every store must have. Written against the crate's public
//! paths (`botify::…`) so an integration test can include this file too.

use botify::catalog::TrackId;
use botify::state::{
    ArtistStats, Listen, StateQuery, StateStore, StateUpdate, UserState, MAX_SESSION_LISTENS,
};

/// One `#[tokio::test]` per behaviour of this file against the store that
/// `store` makes afresh in each test, after `setup` (what the store needs
/// alive meanwhile, such as its server): how each kind of store runs the
/// whole contract. Called where this module is in scope as `contract`.
macro_rules! tests {
    ($(setup: { $($setup:tt)* })? store: $store:expr) => {
        #[tokio::test]
        async fn listens_accumulate_in_order_and_clear_on_session_end() {
            $($($setup)*)?
            contract::listens_accumulate_in_order_and_clear_on_session_end(&$store).await;
        }

        #[tokio::test]
        async fn profile_accumulates_and_first_listen_sets_the_favourite() {
            $($($setup)*)?
            contract::profile_accumulates_and_first_listen_sets_the_favourite(&$store).await;
        }

        #[tokio::test]
        async fn a_session_keeps_only_its_latest_listens() {
            $($($setup)*)?
            contract::a_session_keeps_only_its_latest_listens(&$store).await;
        }
    };
}
pub(crate) use tests;

fn listen(track: TrackId, time: f64) -> Listen {
    Listen { track, time }
}

pub async fn listens_accumulate_in_order_and_clear_on_session_end(store: &dyn StateStore) {
    let (user, query) = (77, StateQuery::default());
    let mut state = UserState::default();
    for (track, time) in [(3, 1.0), (5, 0.25), (3, 0.75)] {
        state = store
            .record(user, listen(track, time), query)
            .await
            .unwrap();
    }
    assert_eq!(
        state.listens,
        vec![listen(3, 1.0), listen(5, 0.25), listen(3, 0.75)]
    );
    assert_eq!(state.heard(), vec![3, 5], "sorted, each once");
    assert_eq!(state.favourite, None, "no profile was asked for");
    let ended = store
        .end_session(user, listen(5, 0.5), query)
        .await
        .unwrap();
    assert!(ended.listens.is_empty());
    let state = store.record(user, listen(9, 0.5), query).await.unwrap();
    assert_eq!(
        state.listens,
        vec![listen(9, 0.5)],
        "a new session starts empty"
    );
}

pub async fn profile_accumulates_and_first_listen_sets_the_favourite(store: &dyn StateStore) {
    let user = 78;
    let (artist6, artist7) = (
        StateQuery {
            profile_artist: Some(6),
        },
        StateQuery {
            profile_artist: Some(7),
        },
    );
    let state = store.record(user, listen(1, 0.5), artist6).await.unwrap();
    assert_eq!(state.artist, ArtistStats { sum: 0.5, count: 1 });
    assert_eq!(state.favourite, Some((6, 0.5)), "the first listen ever");
    let state = store.record(user, listen(2, 1.0), artist6).await.unwrap();
    assert_eq!(state.artist, ArtistStats { sum: 1.5, count: 2 });
    assert_eq!(state.favourite, Some((6, 0.5)), "changed only by apply");
    let update = StateUpdate {
        favourite: Some((6, 0.75)),
    };
    store.apply(user, &update).await.unwrap();

    let ended = store
        .end_session(user, listen(3, 0.25), artist7)
        .await
        .unwrap();
    assert!(ended.listens.is_empty());
    assert_eq!(
        ended.artist,
        ArtistStats {
            sum: 0.25,
            count: 1
        }
    );
    assert_eq!(ended.favourite, Some((6, 0.75)));
    let state = store.record(user, listen(4, 1.0), artist6).await.unwrap();
    assert_eq!(
        state.artist,
        ArtistStats { sum: 2.5, count: 3 },
        "long-term stats outlive the session"
    );
    assert_eq!(state.listens, vec![listen(4, 1.0)]);
}

pub async fn a_session_keeps_only_its_latest_listens(store: &dyn StateStore) {
    let (user, query) = (79, StateQuery::default());
    let total = MAX_SESSION_LISTENS as TrackId + 3;
    let mut state = UserState::default();
    for track in 0..total {
        state = store.record(user, listen(track, 0.5), query).await.unwrap();
    }
    assert_eq!(state.listens.len(), MAX_SESSION_LISTENS);
    assert_eq!(state.listens[0].track, 3, "the oldest listens go first");
    assert_eq!(state.listens.last().unwrap().track, total - 1);
}
