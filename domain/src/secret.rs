//! Secrets: what a user stores (SSH keys, PGP keys, files), the rules a new one
//! must meet, how a manifest's `secrets:` entries resolve to the owner's
//! secrets, and the guest commands that install them. The secret bytes are
//! sealed (encrypted) by a [`crate::ports::SecretSealer`] before any store sees
//! them; a record holds only the sealed form.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;
use time::OffsetDateTime;

/// Largest secret accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// Mode of a file secret when none is given.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

static NAME: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
        .unwrap_or_else(|_| unreachable!("a valid pattern"))
});

/// What a secret is, and so how it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// A private SSH key: `~/.ssh/<id>`, mode 600; the first also `~/.ssh/id_rsa`.
    SshKey,
    /// A private PGP key: `gpg --import`.
    PgpKey,
    /// A file at a path with a mode.
    File,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::SshKey => "ssh_key",
            SecretKind::PgpKey => "pgp_key",
            SecretKind::File => "file",
        }
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of `ssh_key`, `pgp_key`, `file`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown secret type {0:?} (expected ssh_key, pgp_key or file)")]
pub struct UnknownSecretKind(pub String);

impl FromStr for SecretKind {
    type Err = UnknownSecretKind;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ssh_key" => Ok(SecretKind::SshKey),
            "pgp_key" => Ok(SecretKind::PgpKey),
            // builds.sr.ht calls file secrets "plaintext files".
            "file" | "plaintext_file" => Ok(SecretKind::File),
            other => Err(UnknownSecretKind(other.to_string())),
        }
    }
}

/// A stored secret: its description in the clear, its bytes sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// A UUID (lowercase, hyphenated).
    pub id: String,
    pub owner: String,
    pub name: Option<String>,
    pub kind: SecretKind,
    /// Where a file secret goes (`~/…` or absolute).
    pub path: Option<String>,
    /// A file secret's mode.
    pub mode: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The secret bytes as the sealer sealed them, hex-encoded.
    #[serde(with = "hex_bytes")]
    pub sealed: Vec<u8>,
}

impl SecretRecord {
    /// What the sealer binds the bytes to: opening them under another record
    /// (another owner or id) fails.
    pub fn seal_context(owner: &str, id: &str) -> String {
        format!("{owner}/{id}")
    }

    pub fn context(&self) -> String {
        Self::seal_context(&self.owner, &self.id)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// A secret as a user hands it in, before it is checked and sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecret {
    pub name: Option<String>,
    pub kind: SecretKind,
    pub path: Option<String>,
    pub mode: Option<u32>,
    pub data: Vec<u8>,
}

/// One problem with a [`NewSecret`]: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretProblem {
    pub field: &'static str,
    pub reason: String,
}

impl NewSecret {
    /// Every problem at once; empty when the secret may be stored. For file
    /// secrets, a missing mode becomes [`DEFAULT_FILE_MODE`].
    pub fn check(&mut self) -> Vec<SecretProblem> {
        let mut problems = Vec::new();
        let mut problem =
            |field: &'static str, reason: String| problems.push(SecretProblem { field, reason });
        if let Some(name) = &self.name {
            if !NAME.is_match(name) {
                problem(
                    "name",
                    "a name is 1-128 letters, digits and ._+- and starts with a letter or digit"
                        .to_string(),
                );
            } else if uuid::Uuid::parse_str(name).is_ok() {
                problem(
                    "name",
                    "a name cannot be a UUID (manifests name secrets by UUID or name)".to_string(),
                );
            }
        }
        if self.data.is_empty() {
            problem("secret", "the secret is empty".to_string());
        } else if self.data.len() > MAX_SECRET_BYTES {
            problem(
                "secret",
                format!("the secret is larger than {MAX_SECRET_BYTES} bytes"),
            );
        }
        let text = String::from_utf8_lossy(&self.data);
        match self.kind {
            SecretKind::SshKey => {
                if !(text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----")) {
                    problem(
                        "secret",
                        "an ssh_key secret is a private key in PEM or OpenSSH form \
                         (-----BEGIN … PRIVATE KEY-----)"
                            .to_string(),
                    );
                }
            }
            SecretKind::PgpKey => {
                if !text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
                    problem(
                        "secret",
                        "a pgp_key secret is an ASCII-armored private key \
                         (-----BEGIN PGP PRIVATE KEY BLOCK-----)"
                            .to_string(),
                    );
                }
            }
            SecretKind::File => {}
        }
        if self.kind == SecretKind::File {
            match &self.path {
                None => problem("path", "a file secret needs a path".to_string()),
                Some(path) => {
                    if let Err(reason) = check_file_path(path) {
                        problem("path", reason);
                    }
                }
            }
            match self.mode {
                None => self.mode = Some(DEFAULT_FILE_MODE),
                Some(mode) if mode > 0o777 => {
                    problem("mode", format!("mode {mode:o} is not a file mode (0-777)"))
                }
                Some(_) => {}
            }
        } else {
            if self.path.is_some() {
                problem(
                    "path",
                    format!("only file secrets have a path, not {}", self.kind),
                );
            }
            if self.mode.is_some() {
                problem(
                    "mode",
                    format!("only file secrets have a mode, not {}", self.kind),
                );
            }
        }
        problems
    }
}

/// A file secret's path: `~/…` or absolute, no `..`, no control characters.
fn check_file_path(path: &str) -> Result<(), String> {
    let rest = if let Some(rest) = path.strip_prefix("~/") {
        rest
    } else if let Some(rest) = path.strip_prefix('/') {
        rest
    } else {
        return Err(format!("path {path:?} must start with ~/ or /"));
    };
    if rest.is_empty() || rest.ends_with('/') {
        return Err(format!("path {path:?} names a directory, not a file"));
    }
    if rest.split('/').any(|part| part.is_empty() || part == "..") {
        return Err(format!("path {path:?} must not have empty or .. parts"));
    }
    if path.chars().any(char::is_control) || path.len() > 1024 {
        return Err(format!("path {path:?} is not a plain path"));
    }
    Ok(())
}

/// Parses a mode written in octal (`600`, `0644`, `0o600`).
pub fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777)
}

/// The owner's secrets that a manifest's `secrets:` entries name, in order, or
/// one line per entry that names none of them. An entry is a UUID or a name;
/// another owner's secret is as missing as one that never was.
pub fn resolve<'a>(
    requested: &[String],
    owned: &'a [SecretRecord],
) -> Result<Vec<&'a SecretRecord>, Vec<String>> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for entry in requested {
        let by_id = uuid::Uuid::parse_str(entry).ok().and_then(|wanted| {
            owned
                .iter()
                .find(|s| uuid::Uuid::parse_str(&s.id).ok() == Some(wanted))
        });
        let matches: Vec<&SecretRecord> = match by_id {
            Some(secret) => vec![secret],
            None => owned
                .iter()
                .filter(|s| s.name.as_deref() == Some(entry.as_str()))
                .collect(),
        };
        match matches.as_slice() {
            [secret] => {
                if !found.iter().any(|s: &&SecretRecord| s.id == secret.id) {
                    found.push(*secret);
                }
            }
            [] => problems.push(format!(
                "secret {entry}: not found (no secret of the job's owner has this UUID or name)"
            )),
            _ => problems.push(format!(
                "secret {entry}: {} secrets have this name; name it by UUID",
                matches.len()
            )),
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(problems)
    }
}

/// How a resolved secret is installed: a shell script (run as `build`) that
/// reads the secret bytes from its standard input and never prints them, and
/// the line for the setup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallStep {
    pub script: String,
    pub description: String,
}

/// The install step of `secret`; `first_ssh_key` says whether it is the first
/// SSH key of the job (which is also installed as `~/.ssh/id_rsa`).
pub fn install_step(secret: &SecretRecord, first_ssh_key: bool) -> InstallStep {
    let label = match &secret.name {
        Some(name) => format!("{} ({name})", secret.id),
        None => secret.id.clone(),
    };
    match secret.kind {
        SecretKind::SshKey => {
            let file = format!("\"$HOME\"/.ssh/{}", shell_word(&secret.id));
            let mut script = format!(
                "set -e; umask 077; mkdir -p \"$HOME\"/.ssh; cat > {file}; chmod 600 {file}"
            );
            let mut description = format!("ssh_key {label} at ~/.ssh/{}", secret.id);
            if first_ssh_key {
                script.push_str(&format!("; cp -p {file} \"$HOME\"/.ssh/id_rsa"));
                description.push_str(" and ~/.ssh/id_rsa");
            }
            InstallStep {
                script,
                description,
            }
        }
        SecretKind::PgpKey => InstallStep {
            script: "set -e; if ! command -v gpg >/dev/null; then \
                     echo 'gpg is not installed in this image (add gnupg to packages)' >&2; \
                     exit 1; fi; gpg --batch --quiet --import 2>&1"
                .to_string(),
            description: format!("pgp_key {label} imported with gpg"),
        },
        SecretKind::File => {
            let path = secret.path.as_deref().unwrap_or("~/secret");
            let target = match path.strip_prefix("~/") {
                Some(rest) => format!("\"$HOME\"/{}", shell_word(rest)),
                None => shell_word(path),
            };
            let mode = secret.mode.unwrap_or(DEFAULT_FILE_MODE);
            // Paths outside the home directory may need root: then sudo
            // writes the file and gives it to `build`.
            let script = format!(
                "set -e; f={target}; d=$(dirname \"$f\"); \
                 if mkdir -p \"$d\" 2>/dev/null && [ -w \"$d\" ] && {{ [ ! -e \"$f\" ] || [ -w \"$f\" ]; }}; then \
                 (umask 077; cat > \"$f\"); chmod {mode:o} \"$f\"; \
                 else sudo mkdir -p \"$d\"; sudo sh -c 'umask 077; cat > \"$1\"' sh \"$f\"; \
                 sudo chown build: \"$f\"; sudo chmod {mode:o} \"$f\"; fi"
            );
            InstallStep {
                script,
                description: format!("file {label} at {path}, mode {mode:o}"),
            }
        }
    }
}

/// `text` quoted for a POSIX shell.
fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: Option<&str>, kind: SecretKind) -> SecretRecord {
        SecretRecord {
            id: id.to_string(),
            owner: "alice".to_string(),
            name: name.map(str::to_string),
            kind,
            path: None,
            mode: None,
            created: OffsetDateTime::UNIX_EPOCH,
            sealed: vec![1, 2, 3],
        }
    }

    const KEY: &[u8] =
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n";

    #[test]
    fn new_secrets_are_checked_field_by_field() {
        let mut ok = NewSecret {
            name: Some("deploy-key".into()),
            kind: SecretKind::SshKey,
            path: None,
            mode: None,
            data: KEY.to_vec(),
        };
        assert!(ok.check().is_empty());

        let mut file = NewSecret {
            name: None,
            kind: SecretKind::File,
            path: Some("~/.config/token".into()),
            mode: None,
            data: b"t0ken".to_vec(),
        };
        assert!(file.check().is_empty());
        assert_eq!(file.mode, Some(0o600), "the default mode is filled in");

        let mut bad = NewSecret {
            name: Some("11097f83-8e5a-46c9-be7f-d4c746730000".into()),
            kind: SecretKind::SshKey,
            path: Some("~/x".into()),
            mode: Some(0o600),
            data: b"not a key".to_vec(),
        };
        let fields: Vec<&str> = bad.check().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["name", "secret", "path", "mode"]);

        for path in ["relative", "~/", "/etc/", "~/../x", "/a//b", "~/a\nb"] {
            let mut file = NewSecret {
                name: None,
                kind: SecretKind::File,
                path: Some(path.into()),
                mode: Some(0o1777),
                data: b"x".to_vec(),
            };
            let fields: Vec<&str> = file.check().iter().map(|p| p.field).collect();
            assert_eq!(fields, ["path", "mode"], "{path:?}");
        }
        let mut empty = NewSecret {
            name: Some("bad name".into()),
            kind: SecretKind::PgpKey,
            path: None,
            mode: None,
            data: vec![],
        };
        let fields: Vec<&str> = empty.check().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["name", "secret", "secret"]);
    }

    #[test]
    fn kinds_and_modes_parse() {
        assert_eq!("ssh_key".parse(), Ok(SecretKind::SshKey));
        assert_eq!("plaintext_file".parse(), Ok(SecretKind::File));
        assert!("password".parse::<SecretKind>().is_err());
        assert_eq!(parse_mode("600"), Some(0o600));
        assert_eq!(parse_mode("0o644"), Some(0o644));
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("800"), None);
        assert_eq!(parse_mode("1777"), None);
    }

    #[test]
    fn entries_resolve_by_uuid_or_name_among_the_owners_secrets() {
        let a = record(
            "11097f83-8e5a-46c9-be7f-d4c746730000",
            Some("deploy"),
            SecretKind::SshKey,
        );
        let b = record(
            "22097f83-8e5a-46c9-be7f-d4c746730000",
            Some("twin"),
            SecretKind::File,
        );
        let c = record(
            "33097f83-8e5a-46c9-be7f-d4c746730000",
            Some("twin"),
            SecretKind::File,
        );
        let owned = vec![a.clone(), b.clone(), c];
        let found = resolve(
            &[
                "deploy".into(),
                "22097F83-8E5A-46C9-BE7F-D4C746730000".into(),
                a.id.clone(),
            ],
            &owned,
        )
        .unwrap();
        assert_eq!(
            found,
            vec![&a, &b],
            "by name, by UUID in any case, once each"
        );

        let problems = resolve(
            &[
                "missing".into(),
                "twin".into(),
                "44097f83-8e5a-46c9-be7f-d4c746730000".into(),
            ],
            &owned,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3);
        assert!(problems[0].contains("secret missing: not found"));
        assert!(problems[1].contains("2 secrets have this name"));
        assert!(problems[2].contains("not found"));
    }

    #[test]
    fn install_steps_read_the_secret_from_stdin_and_put_it_where_the_design_says() {
        let key = record(
            "11097f83-8e5a-46c9-be7f-d4c746730000",
            None,
            SecretKind::SshKey,
        );
        let first = install_step(&key, true);
        assert!(first.script.contains("cat > \"$HOME\"/.ssh/'11097f83"));
        assert!(first.script.contains("chmod 600"));
        assert!(first.script.contains(".ssh/id_rsa"));
        assert!(!install_step(&key, false).script.contains("id_rsa"));

        let mut file = record(
            "22097f83-8e5a-46c9-be7f-d4c746730000",
            Some("cfg"),
            SecretKind::File,
        );
        file.path = Some("~/it's/here".into());
        file.mode = Some(0o640);
        let step = install_step(&file, false);
        assert!(
            step.script.contains("f=\"$HOME\"/'it'\\''s/here'"),
            "{}",
            step.script
        );
        assert!(step.script.contains("chmod 640"));
        assert_eq!(
            step.description,
            "file 22097f83-8e5a-46c9-be7f-d4c746730000 (cfg) at ~/it's/here, mode 640"
        );

        let pgp = install_step(&record("x", None, SecretKind::PgpKey), false);
        assert!(pgp.script.contains("gpg --batch --quiet --import"));
    }

    #[test]
    fn records_keep_sealed_bytes_as_hex() {
        let secret = record("id", Some("n"), SecretKind::PgpKey);
        let json = serde_json::to_value(&secret).unwrap();
        assert_eq!(json["sealed"], "010203");
        assert_eq!(json["kind"], "pgp_key");
        let back: SecretRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, secret);
        assert_eq!(secret.context(), "alice/id");
    }
}
