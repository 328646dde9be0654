//! `builds serve`: the whole service on one machine.

use builds_storage::Backend;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BUILDS_ADDR")]
    addr: SocketAddr,
    /// Where the embedded backend keeps its data.
    #[arg(long, default_value = "./.builds", env = "BUILDS_DATA_DIR")]
    data_dir: PathBuf,
}

pub fn run(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("builds: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("builds: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let origin = format!("http://{}", args.addr);
    let backend = Backend::embedded(&args.data_dir, &origin)?;
    let mut app = axum::Router::new();
    if let Some(blobs) = backend.dir_blobs.clone() {
        app = app.merge(builds_functions::blobs::router(blobs));
    }
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(addr = %args.addr, data_dir = %args.data_dir.display(), "serving");
    axum::serve(listener, app).await?;
    Ok(())
}
