//! `builds serve`: the whole service on one machine.

use crate::backend_args::BackendArgs;
use builds_functions::config::parse_image_list;
use builds_functions::{api_router, ApiConfig, AppState};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BUILDS_ADDR")]
    addr: SocketAddr,
    /// Scheme, host and port that links in responses start with [default: http://ADDR].
    #[arg(long, env = "BUILDS_ORIGIN")]
    origin: Option<String>,
    /// Directory of guest images (DIR/<distro>/<release>/); manifests naming
    /// another image are refused. Without it, BUILDS_IMAGES (comma-separated)
    /// lists the images; without either, any image is accepted.
    #[arg(long)]
    images: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Image names a directory of images offers: `DIR/<distro>/<release>/`.
pub fn offered_images(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut images = Vec::new();
    for distro in std::fs::read_dir(dir)? {
        let distro = distro?;
        if !distro.file_type()?.is_dir() {
            continue;
        }
        for release in std::fs::read_dir(distro.path())? {
            let release = release?;
            if release.file_type()?.is_dir() {
                images.push(format!(
                    "{}/{}",
                    distro.file_name().to_string_lossy(),
                    release.file_name().to_string_lossy()
                ));
            }
        }
    }
    images.sort();
    Ok(images)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    let origin = args.origin.unwrap_or_else(|| format!("http://{addr}"));
    let backend = args.backend.open(&origin).await?;
    let mut config = ApiConfig::new(&origin);
    config.images = match &args.images {
        Some(dir) => Some(
            offered_images(dir)
                .map_err(|err| anyhow::anyhow!("cannot list images in {}: {err}", dir.display()))?,
        ),
        None => std::env::var("BUILDS_IMAGES")
            .ok()
            .map(|list| parse_image_list(&list)),
    };
    let app = api_router(AppState::new(backend, config));
    tracing::info!(%addr, %origin, backend = ?args.backend.backend, "serving the builds API");
    println!("builds: serving on {origin}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
