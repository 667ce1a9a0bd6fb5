//! The real botify server, in this process, on a free loopback port: the
//! `spawn_app` of zero-to-production. Needs a Tokio runtime with a
//! `LocalSet` (`#[actix_web::test]`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::Method;
use botify::app::Application;
use botify::config::Config;
use botify::engine::Engine;
use serde_json::Value;
use tempfile::TempDir;

use crate::redis::RedisServer;

/// A running server; [`TestApp::stop`] stops it gracefully.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub base: String,
    pub handle: ServerHandle,
    pub engine: Arc<Engine>,
    done: Option<tokio::task::JoinHandle<anyhow::Result<u64>>>,
    /// The folder of [`TestApp::serving`]'s files, removed when dropped.
    _files: Option<TempDir>,
}

impl TestApp {
    /// Builds the server from `config` (bind it to port 0: see
    /// [`crate::config::test_config`]) and starts serving.
    pub async fn spawn(config: &Config) -> TestApp {
        let app = Application::build(config).expect("server builds");
        let base = format!("http://{}:{}", crate::ports::LOOPBACK, app.port());
        let handle = app.handle();
        let engine = app.engine();
        let done = tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            handle,
            engine,
            done: Some(done),
            _files: None,
        }
    }

    /// The server of [`crate::test_config`] with one arm per recommender,
    /// its files in a temp folder of its own: for tests that need nothing
    /// but a server.
    pub async fn serving(recommenders: &[&str]) -> TestApp {
        TestApp::in_own_folder(|dir| crate::test_config(dir, recommenders)).await
    }

    /// [`TestApp::serving`] with its state in `redis`
    /// ([`crate::redis_config`]).
    pub async fn serving_on(redis: &RedisServer, recommenders: &[&str]) -> TestApp {
        TestApp::in_own_folder(|dir| crate::redis_config(dir, redis, recommenders)).await
    }

    /// The server of the configuration `config` makes for a temp folder of
    /// its own, which goes when the server is dropped.
    async fn in_own_folder(config: impl FnOnce(&Path) -> Config) -> TestApp {
        let files = tempfile::tempdir().unwrap();
        let app = TestApp::spawn(&config(files.path())).await;
        TestApp {
            _files: Some(files),
            ..app
        }
    }

    /// Stops gracefully; returns the number of event lines written.
    pub async fn stop(mut self) -> u64 {
        self.handle.stop(true).await;
        self.done.take().unwrap().await.unwrap().unwrap()
    }

    fn client(&self) -> awc::Client {
        awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .finish()
    }

    /// A `method` request to `path` on this server, to send.
    pub fn request(&self, method: Method, path: &str) -> awc::ClientRequest {
        self.client()
            .request(method, format!("{}{path}", self.base))
    }

    /// POSTs a JSON `body`: the status and the JSON answer (`Null` if none).
    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let mut response = self
            .request(Method::POST, path)
            .insert_header(("content-type", "application/json"))
            .send_body(body.to_string())
            .await
            .unwrap();
        let bytes = response.body().await.unwrap();
        (
            response.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// GETs `path`: the status and the JSON answer, or the text one as a
    /// JSON string.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self.request(Method::GET, path).send().await.unwrap();
        let bytes = response.body().limit(1 << 24).await.unwrap();
        (
            response.status().as_u16(),
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        )
    }

    /// An admin request (`GET`, `PUT`, else `POST`) with the bearer `token`
    /// if given: the status and the JSON answer (`Null` if none).
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let method = match method {
            "GET" => Method::GET,
            "PUT" => Method::PUT,
            _ => Method::POST,
        };
        let mut request = self.request(method, path);
        if let Some(token) = token {
            request = request.insert_header(("authorization", format!("Bearer {token}")));
        }
        let mut response = request.send_body(body.to_string()).await.unwrap();
        let bytes = response.body().await.unwrap();
        (
            response.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `POST /admin/tracks` of the `track` record with the bearer `token`:
    /// the status and the JSON answer.
    pub async fn add_track(&self, token: &str, track: &str) -> (u16, Value) {
        self.admin("POST", "/admin/tracks", Some(token), track)
            .await
    }

    /// Adds "new song" by `artist{artist}` in genre `g{artist}` with the
    /// bearer `token`, and checks it became track 200, the first id after
    /// the test catalog's 200 tracks: the admin answer.
    pub async fn add_new_song(&self, token: &str, artist: u32) -> Value {
        let track =
            format!(r#"{{"artist": "artist{artist}", "title": "new song", "genre": "g{artist}"}}"#);
        let (status, added) = self.add_track(token, &track).await;
        assert_eq!(status, 201, "{added}");
        assert_eq!(added["track"], 200);
        added
    }

    /// `PUT /admin/filters` with the bearer `token`: the status and the
    /// JSON answer.
    pub async fn put_filters(&self, token: &str, filters: &str) -> (u16, Value) {
        self.admin("PUT", "/admin/filters", Some(token), filters)
            .await
    }

    /// `POST /next/{user}`: the recommended track.
    pub async fn next(&self, user: u64, track: u32, time: f64) -> u32 {
        let body = self.next_answer(user, track, time).await;
        body["track"].as_u64().unwrap() as u32
    }

    /// `POST /next/{user}`: the whole answer (track, propensity, …).
    pub async fn next_answer(&self, user: u64, track: u32, time: f64) -> Value {
        self.report("next", user, track, time).await
    }

    /// `POST /last/{user}`.
    pub async fn last(&self, user: u64, track: u32, time: f64) {
        self.report("last", user, track, time).await;
    }

    /// Reports a listen on `/{route}/{user}`, which must answer 200: the
    /// answer.
    async fn report(&self, route: &str, user: u64, track: u32, time: f64) -> Value {
        let (status, body) = self
            .post(
                &format!("/{route}/{user}"),
                &format!("{{\"track\": {track}, \"time\": {time}}}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// One value of `GET /metrics` (see [`metric`]).
    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        metric(body.as_str().unwrap(), name_and_labels)
    }
}

/// The value of the first sample of a Prometheus text exposition starting
/// with `name_and_labels`; 0 when there is none (a counter never touched).
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Asserts that `answer` (status, body) is the API's error `code` with
/// `status`, showing the body (whose `message` says why) when it is not;
/// returns the body for what else a test reads in it.
pub fn assert_error(answer: (u16, Value), status: u16, code: &str) -> Value {
    let (got, body) = answer;
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    body
}
