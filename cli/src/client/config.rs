//! Where the client finds its API URL and token: `--url`/`--token`, then
//! `BUILDS_URL`/`BUILDS_TOKEN`, then `$XDG_CONFIG_HOME/builds/config.toml`
//! (`~/.config/builds/config.toml`), which must not be readable by others.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config file's contents.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub url: Option<String>,
    pub token: Option<String>,
}

/// What the client connects with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub url: String,
    pub token: String,
}

/// `$XDG_CONFIG_HOME/builds/config.toml`, or `$HOME/.config/builds/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base =
        absolute("XDG_CONFIG_HOME").or_else(|| absolute("HOME").map(|h| h.join(".config")))?;
    Some(base.join("builds").join("config.toml"))
}

/// Reads the config file; `None` when there is none. Refuses a file that
/// others may read (it holds a token).
pub fn read_file(path: &Path) -> anyhow::Result<Option<FileConfig>> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    check_mode(path, &metadata)?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: FileConfig =
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    Ok(Some(config))
}

#[cfg(unix)]
fn check_mode(path: &Path, metadata: &std::fs::Metadata) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o177 != 0 {
        bail!(
            "{path} has mode {mode:o}, wider than 600; it holds a token, so it is not read. \
             Run: chmod 600 {path}",
            path = path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _metadata: &std::fs::Metadata) -> anyhow::Result<()> {
    Ok(())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Flag (or environment, which clap folds into the flag) first, then the file;
/// the file is read only when something is missing.
pub fn resolve(
    url: Option<String>,
    token: Option<String>,
    path: Option<&Path>,
) -> anyhow::Result<Config> {
    let (mut url, mut token) = (non_empty(url), non_empty(token));
    if url.is_none() || token.is_none() {
        if let Some(file) = path.map(read_file).transpose()?.flatten() {
            url = url.or(non_empty(file.url));
            token = token.or(non_empty(file.token));
        }
    }
    let where_ = |key: &str| match path {
        Some(path) => format!("or `{key} = \"…\"` in {}", path.display()),
        None => "(no config file: neither XDG_CONFIG_HOME nor HOME is set)".to_string(),
    };
    let Some(url) = url else {
        bail!("no API URL: pass --url, set BUILDS_URL {}", where_("url"));
    };
    let Some(token) = token else {
        bail!(
            "no API token: pass --token, set BUILDS_TOKEN {}",
            where_("token")
        );
    };
    let parsed = reqwest::Url::parse(&url).with_context(|| format!("the API URL {url:?}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("the API URL {url:?} is not http:// or https://");
    }
    Ok(Config {
        url: url.trim_end_matches('/').to_string(),
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "url = \"http://file.example\"\ntoken = \"from-file\"\n",
            0o600,
        );
        let config = resolve(Some("http://flag.example/".into()), None, Some(&path)).unwrap();
        assert_eq!(config.url, "http://flag.example");
        assert_eq!(config.token, "from-file");
        let config = resolve(None, None, Some(&path)).unwrap();
        assert_eq!(config.url, "http://file.example");
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "token = \"secret\"\n", 0o644);
        let err = resolve(Some("http://x".into()), None, Some(&path)).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("mode 644") && text.contains("chmod 600"),
            "{text}"
        );
        // Not read at all when the flags say everything.
        resolve(Some("http://x".into()), Some("t".into()), Some(&path)).unwrap();
    }

    #[test]
    fn missing_values_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        let err = resolve(None, Some("t".into()), Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("BUILDS_URL"), "{err}");
        let err = resolve(Some("http://x".into()), None, Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("BUILDS_TOKEN"), "{err}");
        let path = write(dir.path(), "tokn = \"typo\"\n", 0o600);
        let err = resolve(Some("http://x".into()), None, Some(&path)).unwrap_err();
        assert!(format!("{err:#}").contains("tokn"), "{err:#}");
        let err = resolve(Some("ftp://x".into()), Some("t".into()), None).unwrap_err();
        assert!(err.to_string().contains("http"), "{err}");
    }
}
