//! The routes the web player stands on, over real HTTP: the embedded page
//! and its assets, catalog search, a user's treatment, the OpenAPI
//! description, and 405s that name the allowed methods.

use std::collections::HashSet;

use actix_web::http::Method;

use testkit::app::assert_error;
use testkit::{read_events, test_config, TestApp};

#[actix_web::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let app = TestApp::serving(&["random"]).await;
    for (path, content_type, contains) in [
        ("/player", "text/html", "<script src=\"/player/app.js\""),
        ("/player/app.js", "text/javascript", "/next/"),
        ("/player/style.css", "text/css", "max-width"),
    ] {
        let mut response = app.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(header("content-type").starts_with(content_type), "{path}");
        assert!(
            header("content-security-policy").starts_with("default-src 'self'"),
            "{path}"
        );
        let body = response.body().await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(contains), "{path}");
        assert!(
            !body.contains("https://"),
            "{path} loads nothing from elsewhere"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn search_finds_tracks_by_artist_or_title_most_popular_first() {
    let app = TestApp::serving(&["random"]).await;
    // Titles are `t<id>`, artists `artist<id % 20>`; popularity falls with the id.
    let (status, answer) = app.get("/tracks?q=ARTIST19&k=3").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["query"], "ARTIST19");
    let ids: Vec<u64> = answer["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["track"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [19, 39, 59]);
    assert_eq!(answer["tracks"][0]["title"], "t19");
    assert_eq!(answer["tracks"][0]["genre"], "g4");
    let (_, answer) = app.get("/tracks?q=t199").await;
    assert_eq!(answer["tracks"].as_array().unwrap().len(), 1);
    let (status, answer) = app.get("/tracks?q=nothing-like-it").await;
    assert_eq!(
        (status, answer["tracks"].clone()),
        (200, serde_json::json!([]))
    );

    for (path, code, says) in [
        ("/tracks", "missing_query", "expected e.g. /tracks?q="),
        ("/tracks?q=", "invalid_query", "1 to 200 characters"),
        ("/tracks?q=t1&k=0", "invalid_k", "1..=1000"),
    ] {
        let (status, answer) = app.get(path).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(code)),
            "{path}"
        );
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    let long = "x".repeat(201);
    assert_error(
        app.get(&format!("/tracks?q={long}")).await,
        400,
        "invalid_query",
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_users_treatment_is_the_arm_that_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), &["random", "sticky_artist"]);
    let app = TestApp::spawn(&config).await;
    let users = [0u64, 1, 2, 3, 42, u64::MAX];
    let mut answers = Vec::new();
    for user in users {
        let (status, answer) = app.get(&format!("/user/{user}")).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["user"].as_u64(), Some(user));
        assert_eq!(answer["experiment"], "TEST");
        assert_eq!(answer["experiments"]["TEST"], answer["arm"]);
        app.next(user, 5, 1.0).await;
        answers.push(answer);
    }
    assert_error(app.get("/user/-1").await, 400, "invalid_user");
    app.stop().await;
    let events = read_events(&config.log_dir);
    let arms: HashSet<&str> = answers.iter().filter_map(|a| a["arm"].as_str()).collect();
    assert_eq!(arms.len(), 2, "both arms among {users:?}");
    for (user, answer) in users.iter().zip(&answers) {
        let served = events.iter().find(|e| e.user == *user).unwrap();
        assert_eq!(
            answer["arm"].as_str(),
            served.experiments.get("TEST").map(String::as_str)
        );
        assert_eq!(
            answer["recommender"].as_str(),
            served.recommender.as_deref()
        );
    }
}

#[actix_web::test]
async fn the_openapi_description_is_served_and_405s_name_the_allowed_methods() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["random"]);
    config.admin_token = Some("s3cret".into());
    let app = TestApp::spawn(&config).await;
    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec["paths"]["/tracks"]["get"].is_object());
    assert!(spec["paths"]["/player"]["get"].is_object());

    for (method, path, token, allow) in [
        ("GET", "/next/1", None, "POST"),
        ("DELETE", "/top", None, "GET"),
        ("POST", "/player", None, "GET"),
        ("GET", "/admin/reload", Some("s3cret"), "POST"),
        ("DELETE", "/admin/filters", Some("s3cret"), "GET, PUT"),
    ] {
        let mut request = app.request(Method::from_bytes(method.as_bytes()).unwrap(), path);
        if let Some(token) = token {
            request = request.insert_header(("authorization", format!("Bearer {token}")));
        }
        let mut response = request.send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
    }
    // Without the token an admin route says nothing about its methods.
    let response = app
        .request(Method::GET, "/admin/reload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    app.stop().await;
}
