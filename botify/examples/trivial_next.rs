//! The reference point for the `/next` benchmark: an actix handler that
//! parses the same JSON body and path as botify's `/next` and returns a
//! constant, so the ratio isolates what botify itself costs. It runs on the
//! same allocator as botify (mimalloc), so the ratio compares code, not
//! allocators.
//!
//! `cargo run --release -p botify --example trivial_next -- 5002`

use actix_web::{web, App, HttpResponse, HttpServer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn next(path: web::Path<u64>, body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(listen) if listen.get("track").is_some() => {
            HttpResponse::Ok().json(serde_json::json!({"user": *path, "track": 0}))
        }
        _ => HttpResponse::BadRequest().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(5002);
    HttpServer::new(|| App::new().route("/next/{user}", web::post().to(next)))
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
