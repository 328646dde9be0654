//! OAuth-style bearer tokens: scopes, the stored (hashed) record, and how a
//! presented token is checked.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

/// A grant a token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "jobs:read")]
    JobsRead,
    #[serde(rename = "jobs:write")]
    JobsWrite,
    #[serde(rename = "secrets:read")]
    SecretsRead,
    #[serde(rename = "secrets:write")]
    SecretsWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::SecretsRead,
        Scope::SecretsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsRead => "jobs:read",
            Scope::JobsWrite => "jobs:write",
            Scope::SecretsRead => "secrets:read",
            Scope::SecretsWrite => "secrets:write",
        }
    }

    /// The scopes a manifest's `oauth:` grants give a job token, and the grants
    /// this service cannot give. Grants are separated by spaces, in the
    /// sr.ht form `builds.sr.ht/JOBS:RO` (or `:RW`), or as our scope names
    /// (`jobs:read`). Other services' grants (`git.sr.ht/…`) are not ours to give.
    pub fn from_oauth_grants(grants: &str) -> (Vec<Scope>, Vec<String>) {
        let mut scopes = Vec::new();
        let mut refused = Vec::new();
        for grant in grants.split_whitespace() {
            let given: &[Scope] = match grant {
                "builds.sr.ht/JOBS:RO" | "builds/JOBS:RO" | "jobs:read" => &[Scope::JobsRead],
                "builds.sr.ht/JOBS:RW" | "builds/JOBS:RW" => &[Scope::JobsRead, Scope::JobsWrite],
                "jobs:write" => &[Scope::JobsWrite],
                _ => {
                    refused.push(grant.to_string());
                    &[]
                }
            };
            for scope in given {
                if !scopes.contains(scope) {
                    scopes.push(*scope);
                }
            }
        }
        (scopes, refused)
    }

    /// Parses a comma-separated list such as `jobs:read,jobs:write`.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, UnknownScope> {
        let mut scopes: Vec<Scope> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?} (known: jobs:read, jobs:write, secrets:read, secrets:write)")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_string()))
    }
}

/// A token as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Hex SHA-256 of the token text; the store's key.
    pub hash: String,
    pub owner: String,
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::timestamp::option")]
    pub expires: Option<OffsetDateTime>,
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
}

impl TokenRecord {
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Hex SHA-256 of a token's text: what the store keys tokens by.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (256 bits, hex) and the record that stores it.
pub fn mint_token(
    owner: &str,
    scopes: Vec<Scope>,
    expires: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> (String, TokenRecord) {
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    let record = TokenRecord {
        hash: hash_token(&token),
        owner: owner.to_string(),
        scopes,
        expires,
        created: now,
    };
    (token, record)
}

/// Takes the token out of an `Authorization` header value: `Bearer T` or `token T`.
pub fn token_from_header(value: &str) -> Option<&str> {
    let (kind, rest) = value.trim().split_once(char::is_whitespace)?;
    let token = rest.trim();
    let known = kind.eq_ignore_ascii_case("bearer") || kind.eq_ignore_ascii_case("token");
    (known && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_grants_give_job_scopes_only() {
        let (scopes, refused) =
            Scope::from_oauth_grants("builds.sr.ht/JOBS:RW git.sr.ht/REPOSITORIES:RO jobs:read");
        assert_eq!(scopes, [Scope::JobsRead, Scope::JobsWrite]);
        assert_eq!(refused, ["git.sr.ht/REPOSITORIES:RO"]);
        let (scopes, refused) = Scope::from_oauth_grants("builds.sr.ht/JOBS:RO");
        assert_eq!((scopes, refused.len()), (vec![Scope::JobsRead], 0));
        assert_eq!(Scope::from_oauth_grants("  ").0, []);
    }

    #[test]
    fn scopes_parse_from_a_comma_list() {
        assert_eq!(
            Scope::parse_list("jobs:write, jobs:read,jobs:read").unwrap(),
            vec![Scope::JobsRead, Scope::JobsWrite]
        );
        assert!(Scope::parse_list("jobs:admin").is_err());
    }

    #[test]
    fn minted_tokens_are_stored_hashed_and_unique() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let (a, record) = mint_token("alice", vec![Scope::JobsRead], None, now);
        let (b, _) = mint_token("alice", vec![Scope::JobsRead], None, now);
        assert_ne!(a, b);
        assert_eq!(record.hash, hash_token(&a));
        assert!(!record.hash.contains(&a));
        assert!(record.allows(Scope::JobsRead));
        assert!(!record.allows(Scope::JobsWrite));
    }

    #[test]
    fn expiry_is_checked_against_now() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let (_, mut record) = mint_token("a", vec![], Some(now), OffsetDateTime::UNIX_EPOCH);
        assert!(record.is_expired(now));
        record.expires = Some(now + time::Duration::seconds(1));
        assert!(!record.is_expired(now));
    }

    #[test]
    fn both_header_forms_are_accepted() {
        assert_eq!(token_from_header("Bearer abc"), Some("abc"));
        assert_eq!(token_from_header("token abc"), Some("abc"));
        assert_eq!(token_from_header("bearer   abc "), Some("abc"));
        assert_eq!(token_from_header("Basic abc"), None);
        assert_eq!(token_from_header("Bearer"), None);
        assert_eq!(token_from_header("Bearer "), None);
    }
}
