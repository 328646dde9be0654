//! [`JobStore`] on SQLite: each record is a JSON document with the columns
//! needed to find it; `replace_job` is an `UPDATE … WHERE version = ?`.

use super::sqlite::{json_err, sql_err, Database};
use async_trait::async_trait;
use builds_domain::job::{Group, GroupId, Job, JobId, NewGroup, NewJob};
use builds_domain::ports::{JobPage, JobStore, StoreError, StoreResult};
use builds_domain::secret::SecretRecord;
use builds_domain::ssh_key::SshKeyRecord;
use builds_domain::token::TokenRecord;
use rusqlite::{params, OptionalExtension};

#[derive(Clone)]
pub struct SqliteJobStore {
    db: Database,
}

impl SqliteJobStore {
    pub fn new(db: Database) -> Self {
        SqliteJobStore { db }
    }

    pub fn open(path: &std::path::Path) -> StoreResult<Self> {
        Ok(SqliteJobStore::new(Database::open(path)?))
    }
}

/// Tables of records kept per owner (secrets, SSH keys), keyed by owner and
/// id, listed newest first.
#[derive(Clone, Copy)]
enum OwnedTable {
    Secrets,
    SshKeys,
}

impl OwnedTable {
    fn name(self) -> &'static str {
        match self {
            OwnedTable::Secrets => "secrets",
            OwnedTable::SshKeys => "ssh_keys",
        }
    }
}

impl SqliteJobStore {
    async fn put_owned(
        &self,
        table: OwnedTable,
        owner: &str,
        id: &str,
        created: time::OffsetDateTime,
        doc: String,
    ) -> StoreResult<()> {
        let (owner, id) = (owner.to_string(), id.to_string());
        let created = created.unix_timestamp_nanos() as i64;
        self.db
            .run(move |conn| {
                let inserted = conn
                    .execute(
                        &format!(
                            "INSERT OR IGNORE INTO {} (owner, id, created_ns, doc) \
                             VALUES (?1, ?2, ?3, ?4)",
                            table.name()
                        ),
                        params![owner, id, created, doc],
                    )
                    .map_err(sql_err)?;
                if inserted == 0 {
                    return Err(StoreError::Conflict);
                }
                Ok(())
            })
            .await
    }

    async fn list_owned<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        table: OwnedTable,
        owner: &str,
    ) -> StoreResult<Vec<T>> {
        let owner = owner.to_string();
        self.db
            .run(move |conn| {
                let mut statement = conn
                    .prepare(&format!(
                        "SELECT doc FROM {} WHERE owner = ?1 ORDER BY created_ns DESC, id DESC",
                        table.name()
                    ))
                    .map_err(sql_err)?;
                let docs = statement
                    .query_map(params![owner], |row| row.get::<_, String>(0))
                    .map_err(sql_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_err)?;
                docs.iter()
                    .map(|doc| serde_json::from_str(doc).map_err(json_err))
                    .collect()
            })
            .await
    }

    async fn delete_owned(&self, table: OwnedTable, owner: &str, id: &str) -> StoreResult<bool> {
        let (owner, id) = (owner.to_string(), id.to_string());
        self.db
            .run(move |conn| {
                let n = conn
                    .execute(
                        &format!("DELETE FROM {} WHERE owner = ?1 AND id = ?2", table.name()),
                        params![owner, id],
                    )
                    .map_err(sql_err)?;
                Ok(n > 0)
            })
            .await
    }
}

fn parse_job(doc: String) -> StoreResult<Job> {
    serde_json::from_str(&doc).map_err(json_err)
}

/// The id after the largest in `table`, inside the caller's transaction.
fn next_id(tx: &rusqlite::Transaction<'_>, table: &str) -> StoreResult<i64> {
    tx.query_row(
        &format!("SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"),
        [],
        |r| r.get(0),
    )
    .map_err(sql_err)
}

impl SqliteJobStore {
    /// The `doc` column of the row `sql` selects with `key`.
    async fn get_doc<T, K>(&self, sql: &'static str, key: K) -> StoreResult<Option<T>>
    where
        T: serde::de::DeserializeOwned,
        K: rusqlite::ToSql + Send + Sync + 'static,
    {
        let doc: Option<String> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(sql)?
                    .query_row(params![key], |r| r.get(0))
                    .optional()
            })
            .await?;
        doc.map(|d| serde_json::from_str(&d).map_err(json_err))
            .transpose()
    }
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn create_job(&self, new: NewJob) -> StoreResult<Job> {
        self.db
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                let next = next_id(&tx, "jobs")?;
                let job = new.into_job(next as JobId, builds_domain::job::now());
                let doc = serde_json::to_string(&job).map_err(json_err)?;
                tx.execute(
                    "INSERT INTO jobs (id, owner, version, doc) VALUES (?1, ?2, ?3, ?4)",
                    params![next, job.owner, job.version as i64, doc],
                )
                .map_err(sql_err)?;
                tx.commit().map_err(sql_err)?;
                Ok(job)
            })
            .await
    }

    async fn get_job(&self, id: JobId) -> StoreResult<Option<Job>> {
        self.get_doc("SELECT doc FROM jobs WHERE id = ?1", id as i64)
            .await
    }

    async fn replace_job(&self, job: &Job) -> StoreResult<Job> {
        let mut stored = job.clone();
        stored.version = job.version + 1;
        let doc = serde_json::to_string(&stored).map_err(json_err)?;
        let (id, expected, new_version) =
            (job.id as i64, job.version as i64, stored.version as i64);
        let changed = self
            .db
            .run(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE jobs SET version = ?1, doc = ?2 WHERE id = ?3 AND version = ?4",
                        params![new_version, doc, id, expected],
                    )
                    .map_err(sql_err)?;
                if changed == 1 {
                    return Ok(true);
                }
                let exists = conn
                    .query_row("SELECT 1 FROM jobs WHERE id = ?1", params![id], |_| Ok(()))
                    .optional()
                    .map_err(sql_err)?;
                match exists {
                    Some(()) => Ok(false),
                    None => Err(StoreError::NotFound(format!("job {id}"))),
                }
            })
            .await?;
        if changed {
            Ok(stored)
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn list_jobs(
        &self,
        owner: &str,
        start: Option<JobId>,
        limit: usize,
    ) -> StoreResult<JobPage> {
        let owner = owner.to_string();
        let start = start
            .map(|s| s.min(i64::MAX as u64) as i64)
            .unwrap_or(i64::MAX);
        let (docs, total) = self
            .db
            .run(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT doc FROM jobs WHERE owner = ?1 AND id <= ?2 ORDER BY id DESC LIMIT ?3",
                    )
                    .map_err(sql_err)?;
                let docs = stmt
                    .query_map(params![owner, start, limit as i64 + 1], |r| {
                        r.get::<_, String>(0)
                    })
                    .map_err(sql_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_err)?;
                let total: i64 = conn
                    .query_row(
                        "SELECT COUNT(*) FROM jobs WHERE owner = ?1",
                        params![owner],
                        |r| r.get(0),
                    )
                    .map_err(sql_err)?;
                Ok((docs, total))
            })
            .await?;
        let mut jobs = docs
            .into_iter()
            .map(parse_job)
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if jobs.len() > limit {
            jobs.pop().map(|job| job.id)
        } else {
            None
        };
        Ok(JobPage {
            jobs,
            next,
            total: total as u64,
        })
    }

    async fn create_group(&self, new: NewGroup) -> StoreResult<Group> {
        self.db
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                let next = next_id(&tx, "groups")?;
                let group = Group {
                    id: next as GroupId,
                    owner: new.owner,
                    note: new.note,
                    job_ids: new.job_ids,
                    triggers: new.triggers,
                    created: builds_domain::job::now(),
                };
                let doc = serde_json::to_string(&group).map_err(json_err)?;
                tx.execute(
                    "INSERT INTO groups (id, doc) VALUES (?1, ?2)",
                    params![next, doc],
                )
                .map_err(sql_err)?;
                tx.commit().map_err(sql_err)?;
                Ok(group)
            })
            .await
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        self.get_doc("SELECT doc FROM groups WHERE id = ?1", id as i64)
            .await
    }

    async fn claim_group_triggers(&self, id: GroupId) -> StoreResult<bool> {
        self.db
            .run(move |conn| {
                let inserted = conn
                    .execute(
                        "INSERT OR IGNORE INTO groups_triggered (group_id) \
                         SELECT id FROM groups WHERE id = ?1",
                        params![id as i64],
                    )
                    .map_err(sql_err)?;
                Ok(inserted == 1)
            })
            .await
    }

    async fn put_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let doc = serde_json::to_string(token).map_err(json_err)?;
        let hash = token.hash.clone();
        self.db
            .run(move |conn| {
                conn.execute(
                    "INSERT OR REPLACE INTO tokens (hash, doc) VALUES (?1, ?2)",
                    params![hash, doc],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn get_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.get_doc("SELECT doc FROM tokens WHERE hash = ?1", hash.to_string())
            .await
    }

    async fn delete_token(&self, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_string();
        self.db
            .run(move |conn| {
                let n = conn
                    .execute("DELETE FROM tokens WHERE hash = ?1", params![hash])
                    .map_err(sql_err)?;
                Ok(n > 0)
            })
            .await
    }

    async fn put_secret(&self, secret: &SecretRecord) -> StoreResult<()> {
        let doc = serde_json::to_string(secret).map_err(json_err)?;
        self.put_owned(
            OwnedTable::Secrets,
            &secret.owner,
            &secret.id,
            secret.created,
            doc,
        )
        .await
    }

    async fn list_secrets(&self, owner: &str) -> StoreResult<Vec<SecretRecord>> {
        self.list_owned(OwnedTable::Secrets, owner).await
    }

    async fn delete_secret(&self, owner: &str, id: &str) -> StoreResult<bool> {
        self.delete_owned(OwnedTable::Secrets, owner, id).await
    }

    async fn put_ssh_key(&self, key: &SshKeyRecord) -> StoreResult<()> {
        let doc = serde_json::to_string(key).map_err(json_err)?;
        self.put_owned(OwnedTable::SshKeys, &key.owner, &key.id, key.created, doc)
            .await
    }

    async fn list_ssh_keys(&self, owner: &str) -> StoreResult<Vec<SshKeyRecord>> {
        self.list_owned(OwnedTable::SshKeys, owner).await
    }

    async fn delete_ssh_key(&self, owner: &str, id: &str) -> StoreResult<bool> {
        self.delete_owned(OwnedTable::SshKeys, owner, id).await
    }
}
