//! Names of the AWS resources, from the environment, with the defaults that
//! `infra/` deploys.

/// Which tables, queue and bucket the AWS backend uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsNames {
    pub jobs_table: String,
    pub groups_table: String,
    pub tokens_table: String,
    pub counters_table: String,
    /// Secrets (partition `owner`, sort `id`), their bytes sealed.
    pub secrets_table: String,
    /// Users' SSH public keys (partition `owner`, sort `id`).
    pub ssh_keys_table: String,
    /// The KMS key that seals secrets (id, ARN or alias); the worker needs
    /// none (the sealed bytes name their key), the API does to add secrets.
    pub secrets_key: Option<String>,
    /// The queue's name; its URL is looked up unless `queue_url` is given.
    pub queue_name: String,
    pub queue_url: Option<String>,
    pub bucket: String,
}

/// The jobs table's index by owner (partition `owner`, sort `id`).
pub const OWNER_INDEX: &str = "by-owner";

impl AwsNames {
    /// Every name made from one prefix: `<prefix>jobs`, `<prefix>groups`,
    /// `<prefix>tokens`, `<prefix>counters`, `<prefix>secrets`, `<prefix>ssh-keys`, queue `<prefix>jobs`, bucket `<prefix>blobs`.
    pub fn with_prefix(prefix: &str) -> Self {
        AwsNames {
            jobs_table: format!("{prefix}jobs"),
            groups_table: format!("{prefix}groups"),
            tokens_table: format!("{prefix}tokens"),
            counters_table: format!("{prefix}counters"),
            secrets_table: format!("{prefix}secrets"),
            ssh_keys_table: format!("{prefix}ssh-keys"),
            secrets_key: None,
            queue_name: format!("{prefix}jobs"),
            queue_url: None,
            bucket: format!("{prefix}blobs"),
        }
    }

    /// From the environment:
    /// - `BUILDS_AWS_PREFIX` (default `builds-`): prefix of every default name;
    /// - `BUILDS_JOBS_TABLE`, `BUILDS_GROUPS_TABLE`, `BUILDS_TOKENS_TABLE`,
    ///   `BUILDS_COUNTERS_TABLE`, `BUILDS_SECRETS_TABLE`, `BUILDS_SSH_KEYS_TABLE`:
    ///   table names;
    /// - `BUILDS_SECRETS_KEY`: the KMS key that seals new secrets (no default);
    /// - `BUILDS_QUEUE_NAME` or `BUILDS_QUEUE_URL`: the job queue;
    /// - `BUILDS_BUCKET`: the bucket for logs and artifacts.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let prefix = get("BUILDS_AWS_PREFIX").unwrap_or_else(|| "builds-".to_string());
        let defaults = AwsNames::with_prefix(&prefix);
        AwsNames {
            jobs_table: get("BUILDS_JOBS_TABLE").unwrap_or(defaults.jobs_table),
            groups_table: get("BUILDS_GROUPS_TABLE").unwrap_or(defaults.groups_table),
            tokens_table: get("BUILDS_TOKENS_TABLE").unwrap_or(defaults.tokens_table),
            counters_table: get("BUILDS_COUNTERS_TABLE").unwrap_or(defaults.counters_table),
            secrets_table: get("BUILDS_SECRETS_TABLE").unwrap_or(defaults.secrets_table),
            ssh_keys_table: get("BUILDS_SSH_KEYS_TABLE").unwrap_or(defaults.ssh_keys_table),
            secrets_key: get("BUILDS_SECRETS_KEY"),
            queue_name: get("BUILDS_QUEUE_NAME").unwrap_or(defaults.queue_name),
            queue_url: get("BUILDS_QUEUE_URL"),
            bucket: get("BUILDS_BUCKET").unwrap_or(defaults.bucket),
        }
    }

    pub fn dead_letter_queue_name(&self) -> String {
        format!("{}-dead-letter", self.queue_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_from_the_prefix_and_can_be_overridden() {
        let names = AwsNames::from_lookup(|name| match name {
            "BUILDS_AWS_PREFIX" => Some("dev-".into()),
            "BUILDS_BUCKET" => Some("my-bucket".into()),
            _ => None,
        });
        assert_eq!(names.jobs_table, "dev-jobs");
        assert_eq!(names.tokens_table, "dev-tokens");
        assert_eq!(names.queue_name, "dev-jobs");
        assert_eq!(names.bucket, "my-bucket");
        assert_eq!(AwsNames::from_lookup(|_| None).jobs_table, "builds-jobs");
    }
}
