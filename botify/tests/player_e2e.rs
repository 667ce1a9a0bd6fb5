//! The web player end to end: the real botify binary, Debian's Chromium
//! driven by playwright-core (`e2e/player.mjs`), a listener on a
//! phone-sized screen. The page loads, bad input shows the API's message, a
//! five-track session with two skips goes through, and the event log then
//! holds exactly those listens with the fractions the page showed.

use std::path::Path;

use botify::events::{Event, Message};
use serde_json::Value;
use testkit::binary::start_botify;
use testkit::tools::{chromium, e2e_dir, node};
use testkit::{free_port, read_events, test_config};

/// The listener the script plays as.
const USER: u64 = 7;
/// What the script types in the search box.
const QUERY: &str = "t17";

/// The test catalog's record of `track` (testkit's `write_catalog`): title,
/// then "artist · genre" as the player shows it.
fn title_and_meta(track: u64) -> (String, String) {
    (
        format!("t{track}"),
        format!("artist{} · g{}", track % 20, track % 5),
    )
}

#[test]
fn a_five_track_session_with_two_skips_in_chromium_is_logged_with_its_fractions() {
    let chromium = chromium();
    let mut node = node();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["random", "sticky_artist"]);
    config.port = free_port();
    let mut processes = start_botify(Path::new(env!("CARGO_BIN_EXE_botify")), &config);

    let output = node
        .arg(e2e_dir().join("player.mjs"))
        .arg(format!("http://127.0.0.1:{}", config.port))
        .env("CHROMIUM", &chromium)
        .current_dir(e2e_dir())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "e2e/player.mjs failed ({}):\n{stdout}\n{}\n--- botify:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        processes.output("botify")
    );
    let page: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the script printed no report ({e}):\n{stdout}"));
    let exit = processes.get_mut("botify").unwrap().stop();
    assert!(exit.success(), "botify exited with {exit}");

    // The page loaded, fits a phone's width and raised no script error.
    assert_eq!(page["status"], 200);
    assert_eq!(page["heading"], "botify");
    assert_eq!(page["overflows"], false, "wider than 390 px");
    assert_eq!(page["overflows_after"], false, "wider than 390 px");
    assert_eq!(page["page_errors"], serde_json::json!([]));

    // Bad input shows the API's own error.
    let empty_search = page["empty_search_error"].as_str().unwrap();
    assert!(
        empty_search.starts_with("invalid_query: "),
        "{empty_search}"
    );
    let bad_user = page["bad_user_error"].as_str().unwrap();
    assert!(
        bad_user.starts_with("invalid_user: ") && bad_user.contains("not-a-user"),
        "{bad_user}"
    );

    // Search by artist or title, most popular first (popularity falls with
    // the id in the test catalog).
    let expected_results: Vec<u64> = (0..200u64)
        .filter(|&t| {
            let (title, _) = title_and_meta(t);
            title.contains(QUERY) || format!("artist{}", t % 20).contains(QUERY)
        })
        .take(10)
        .collect();
    let results: Vec<u64> = serde_json::from_value(page["search_results"].clone()).unwrap();
    assert_eq!(results, expected_results);
    assert_eq!(page["picked"], expected_results[0]);

    // The log holds the session: four /next and a /last, chained.
    let mut events: Vec<Event> = read_events(&config.log_dir)
        .into_iter()
        .filter(|e| e.user == USER)
        .collect();
    events.sort_by_key(|e| e.timestamp);
    let messages: Vec<Message> = events.iter().map(|e| e.message).collect();
    use Message::{Last, Next};
    assert_eq!(messages, [Next, Next, Next, Next, Last], "{events:#?}");
    assert_eq!(events[0].track as u64, expected_results[0]);
    for pair in events.windows(2) {
        assert_eq!(pair[0].recommendation, Some(pair[1].track), "{events:#?}");
    }
    assert_eq!(events[4].recommendation, None);

    // Played, shown and logged agree track by track.
    let played = page["played"].as_array().unwrap();
    let history = page["history"].as_array().unwrap();
    let up_next = page["up_next"].as_array().unwrap();
    assert_eq!((played.len(), history.len(), up_next.len()), (5, 5, 4));
    for (i, event) in events.iter().enumerate() {
        let track = event.track as u64;
        assert_eq!(played[i]["track"], track, "track {i}");
        assert_eq!(history[i]["track"], track, "track {i}");
        assert_eq!(history[i]["time"].as_f64(), Some(event.time), "track {i}");
        assert_eq!(played[i]["meta"], title_and_meta(track).1, "track {i}");
        assert!(played[i]["similar_shown"].as_u64() > Some(0), "track {i}");
        if i > 0 {
            assert_eq!(up_next[i - 1]["track"], track, "up next before {i}");
            assert_eq!(up_next[i - 1]["meta"], title_and_meta(track).1);
        }
    }

    // The fractions: to the end is 1.0, a skip or a stop what was heard.
    let times: Vec<f64> = events.iter().map(|e| e.time).collect();
    assert_eq!((times[0], times[2]), (1.0, 1.0), "{times:?}");
    for (i, at_least) in [(1, 0.45), (3, 0.25), (4, 0.55)] {
        assert_eq!(
            played[i]["shown_heard"].as_f64(),
            Some(times[i]),
            "track {i}: the fraction sent is the one shown"
        );
        assert!(
            (at_least..1.0).contains(&times[i]),
            "track {i} heard {}",
            times[i]
        );
    }
    let total: f64 = times.iter().sum();
    assert_eq!(page["listen_time"], format!("{total:.2}"));

    // The arm and recommender shown are the ones that served.
    assert_eq!(
        page["arm"].as_str(),
        events[0].experiments.get("TEST").map(String::as_str)
    );
    assert_eq!(
        page["recommender"].as_str(),
        events[0].recommender.as_deref()
    );

    // The top panel lists the genre's most popular tracks.
    let top: Vec<u64> = serde_json::from_value(page["top_g2"].clone()).unwrap();
    let expected_top: Vec<u64> = (0..200u64).filter(|t| t % 5 == 2).take(10).collect();
    assert_eq!(top, expected_top);
}
