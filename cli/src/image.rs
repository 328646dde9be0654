//! `builds image build NAME`: builds a guest image from Debian packages.

use std::path::PathBuf;

pub fn build(name: &str, images: Option<PathBuf>) -> anyhow::Result<()> {
    let images = images.unwrap_or_else(default_images_dir);
    builds_worker::image::build(&images, name)?;
    Ok(())
}

/// `./.builds/images`, beside the embedded backend's data.
pub fn default_images_dir() -> PathBuf {
    PathBuf::from("./.builds/images")
}
