//! Entries of the manifest's `sources` list: `[dir::][git+|hg+]url[#ref]`.

use serde::Serialize;

/// One repository to clone into the build user's home directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Directory under the home directory; never empty, never contains `/` or `..`.
    pub dir: String,
    /// The URL to clone, without the `git+`/`hg+` prefix and without `#ref`.
    pub url: String,
    /// What to check out after cloning (`#ref`), if given.
    pub reference: Option<String>,
    pub scheme: SourceScheme,
}

/// Which version control system clones the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceScheme {
    Git,
    Hg,
}

/// Parse one `sources` entry. The error is a human sentence.
///
/// - `dir::url` names the directory; without it the directory is the last path
///   segment of the URL, trailing slashes ignored and a trailing `.git` removed.
///   The text before the first `::` is taken as the directory unless it contains
///   `://` or `[` (so an IPv6 URL such as `https://[::1]/r` still works).
/// - `git+url` and `hg+url` choose the scheme (the prefix is removed from the
///   URL); anything else is git.
/// - The URL is `scheme://…` or, for git, scp-like `[user@]host:path`.
/// - `#ref` is the reference to check out; an empty one (`url#`) means none.
/// - Rejected: empty entries, whitespace or control characters anywhere, an
///   empty directory or URL, and directories that contain `/` or `..`, are `.`,
///   or start with `-` (they would read as an option to git/hg).
pub fn parse_source(text: &str) -> Result<Source, String> {
    if text.trim().is_empty() {
        return Err("a source must not be empty".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "source '{}' contains whitespace or control characters",
            text.escape_default()
        ));
    }

    let (explicit_dir, rest) = match text.find("::") {
        Some(i) if !text[..i].contains("://") && !text[..i].contains('[') => {
            (Some(&text[..i]), &text[i + 2..])
        }
        _ => (None, text),
    };
    if explicit_dir == Some("") {
        return Err(format!(
            "source '{text}' has no directory name before '::' (write dir::url, or just the url)"
        ));
    }
    if rest.is_empty() {
        return Err(format!("source '{text}' has no URL after '::'"));
    }

    let (with_scheme, reference) = match rest.split_once('#') {
        Some((url, reference)) if !reference.is_empty() => (url, Some(reference.to_owned())),
        Some((url, _)) => (url, None),
        None => (rest, None),
    };
    let (scheme, url) = if let Some(url) = with_scheme.strip_prefix("git+") {
        (SourceScheme::Git, url)
    } else if let Some(url) = with_scheme.strip_prefix("hg+") {
        (SourceScheme::Hg, url)
    } else {
        (SourceScheme::Git, with_scheme)
    };
    if url.is_empty() {
        return Err(format!("source '{text}' has no URL"));
    }

    let path = url_path(url, scheme)?;
    let dir = match explicit_dir {
        Some(dir) => dir.to_owned(),
        None => {
            let last = path.split('/').rev().find(|s| !s.is_empty()).unwrap_or("");
            let dir = last.strip_suffix(".git").unwrap_or(last);
            if dir.is_empty() || dir == "." || dir == ".." {
                return Err(format!(
                    "cannot work out a directory name from '{url}'; write the source as dir::{rest}"
                ));
            }
            dir.to_owned()
        }
    };
    check_dir(&dir)?;

    Ok(Source {
        dir,
        url: url.to_owned(),
        reference,
        scheme,
    })
}

/// The path part of `url`, after checking its shape.
fn url_path(url: &str, scheme: SourceScheme) -> Result<&str, String> {
    if let Some((name, after)) = url.split_once("://") {
        let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_name {
            return Err(format!("'{url}' does not start with a valid URL scheme"));
        }
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if authority.is_empty() && !name.eq_ignore_ascii_case("file") {
            return Err(format!("'{url}' has no host"));
        }
        let path = path.split('?').next().unwrap_or("");
        return Ok(path);
    }
    // scp-like: [user@]host:path (git only).
    if scheme == SourceScheme::Git {
        if let Some((host, path)) = url.split_once(':') {
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            if !host.is_empty() && !host.contains('/') && !path.is_empty() {
                return Ok(path);
            }
        }
    }
    Err(format!(
        "'{url}' is not a URL (expected scheme://host/path{})",
        if scheme == SourceScheme::Git {
            " or user@host:path"
        } else {
            ""
        }
    ))
}

fn check_dir(dir: &str) -> Result<(), String> {
    if dir.contains('/') || dir.contains('\\') {
        return Err(format!(
            "directory '{dir}' must be a single name, without '/'"
        ));
    }
    if dir.contains("..") || dir == "." {
        return Err(format!("directory '{dir}' must not be '.' or contain '..'"));
    }
    if dir.starts_with('-') {
        return Err(format!("directory '{dir}' must not start with '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Source {
        parse_source(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn src(dir: &str, url: &str, reference: Option<&str>, scheme: SourceScheme) -> Source {
        Source {
            dir: dir.into(),
            url: url.into(),
            reference: reference.map(Into::into),
            scheme,
        }
    }

    #[test]
    fn full_form() {
        assert_eq!(
            ok("dir::git+https://host/repo.git#ref"),
            src(
                "dir",
                "https://host/repo.git",
                Some("ref"),
                SourceScheme::Git
            )
        );
    }

    #[test]
    fn dir_from_url() {
        assert_eq!(
            ok("https://git.sr.ht/~sircmpwn/harec"),
            src(
                "harec",
                "https://git.sr.ht/~sircmpwn/harec",
                None,
                SourceScheme::Git
            )
        );
        assert_eq!(ok("https://github.com/3615/webhook.git").dir, "webhook");
        assert_eq!(ok("https://host/a/repo.git/").dir, "repo");
        assert_eq!(ok("https://host/a/repo///").dir, "repo");
        assert_eq!(ok("git://c9x.me/qbe.git").dir, "qbe");
        assert_eq!(ok("https://host/repo.git?x=1").dir, "repo");
        assert_eq!(ok("file:///srv/git/thing.git").dir, "thing");
        // Only a trailing .git goes.
        assert_eq!(ok("https://host/my.github.io").dir, "my.github.io");
    }

    #[test]
    fn reference() {
        let s = ok("https://github.com/emersion/go-imap#v2");
        assert_eq!(s.reference.as_deref(), Some("v2"));
        assert_eq!(s.url, "https://github.com/emersion/go-imap");
        assert_eq!(s.dir, "go-imap");
        assert_eq!(ok("https://host/r#").reference, None);
        assert_eq!(
            ok("x::https://host/r#refs/heads/dev").reference.as_deref(),
            Some("refs/heads/dev")
        );
    }

    #[test]
    fn hg() {
        assert_eq!(
            ok("hg+https://hg.sr.ht/~vnorilo/kronos"),
            src(
                "kronos",
                "https://hg.sr.ht/~vnorilo/kronos",
                None,
                SourceScheme::Hg
            )
        );
        assert_eq!(
            ok("k::hg+https://hg.sr.ht/~vnorilo/kronos#tip"),
            src(
                "k",
                "https://hg.sr.ht/~vnorilo/kronos",
                Some("tip"),
                SourceScheme::Hg
            )
        );
    }

    #[test]
    fn scp_like() {
        assert_eq!(
            ok("git@git.sr.ht:~tpt/NoteworthyII"),
            src(
                "NoteworthyII",
                "git@git.sr.ht:~tpt/NoteworthyII",
                None,
                SourceScheme::Git
            )
        );
        assert_eq!(ok("git@github.com:owner/repo.git").dir, "repo");
        assert_eq!(ok("host:repo.git").dir, "repo");
        assert_eq!(ok("mine::git@host:owner/repo#main").dir, "mine");
        assert!(parse_source("hg+git@host:owner/repo").is_err());
    }

    #[test]
    fn ipv6_url_is_not_a_dir() {
        let s = ok("https://[::1]:8080/owner/repo");
        assert_eq!(s.dir, "repo");
        assert_eq!(s.url, "https://[::1]:8080/owner/repo");
        assert_eq!(ok("d::https://[::1]/r").dir, "d");
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "   ",
            "::https://host/repo",
            "dir::",
            "a/b::https://host/repo",
            "..::https://host/repo",
            "a..b::https://host/repo",
            ".::https://host/repo",
            "-x::https://host/repo",
            "https://host/..",
            "https://host/",
            "https://host",
            "https://host/.git",
            "https:///nohost",
            "git+",
            "hg+",
            "not a url",
            "plainword",
            "1http://host/repo",
            "https://host/repo\n",
            "https://host/re po",
        ] {
            assert!(parse_source(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn error_messages_are_helpful() {
        let e = parse_source("https://host/").unwrap_err();
        assert!(e.contains("dir::"), "{e}");
        let e = parse_source("a/b::https://host/r").unwrap_err();
        assert!(e.contains("'/'"), "{e}");
    }
}
