use clap::Parser;

use botify::app::{migrate, Application};
use botify::config::{Command, Config};

// The request path allocates small, short-lived buffers on every worker
// thread (HTTP, JSON, Redis replies); mimalloc's thread-local free lists
// make that cheaper than glibc malloc (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .init();
    let config = Config::parse();
    let result = match config.command {
        Some(Command::Migrate) => migrate(&config).await,
        None => match Application::build(&config) {
            Ok(app) => app.run_until_stopped().await.map(|_| ()),
            Err(err) => Err(err),
        },
    };
    if let Err(err) = result {
        eprintln!("botify: error: {err:#}");
        std::process::exit(1);
    }
}
