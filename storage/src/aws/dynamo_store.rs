//! [`JobStore`] on DynamoDB. Each record is one item: its keys, the attributes
//! an index or condition needs, and the whole record as JSON in `doc`. Ids come
//! from an atomic counter item; every job write is conditional on `version`.

use super::names::{AwsNames, OWNER_INDEX};
use super::sdk_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, Select};
use aws_sdk_dynamodb::Client;
use builds_domain::job::{Group, GroupId, Job, JobId, NewGroup, NewJob};
use builds_domain::ports::{JobPage, JobStore, StoreError, StoreResult};
use builds_domain::secret::SecretRecord;
use builds_domain::ssh_key::SshKeyRecord;
use builds_domain::token::TokenRecord;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoJobStore {
    client: Client,
    names: AwsNames,
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn doc_of<T: serde::de::DeserializeOwned>(item: &Item) -> StoreResult<T> {
    let doc = item
        .get("doc")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Backend("item has no doc attribute".into()))?;
    serde_json::from_str(doc)
        .map_err(|err| StoreError::Backend(format!("stored record is not valid: {err}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(StoreError::backend)
}

fn job_item(job: &Job) -> StoreResult<Item> {
    Ok(HashMap::from([
        ("id".to_string(), n(job.id)),
        ("owner".to_string(), s(job.owner.clone())),
        ("status".to_string(), s(job.status.as_str())),
        ("version".to_string(), n(job.version)),
        ("doc".to_string(), s(to_json(job)?)),
    ]))
}

/// Records kept per owner (secrets, SSH keys): partition `owner`, sort `id`.
impl DynamoJobStore {
    async fn put_owned(&self, table: &str, owner: &str, id: &str, doc: String) -> StoreResult<()> {
        let result = self
            .client
            .put_item()
            .table_name(table)
            .item("owner", s(owner))
            .item("id", s(id))
            .item("doc", s(doc))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn list_owned<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        owner: &str,
    ) -> StoreResult<Vec<T>> {
        let mut found = Vec::new();
        let mut start_key = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("#owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(owner))
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items() {
                found.push(doc_of(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start_key = Some(key.clone()),
                _ => break,
            }
        }
        Ok(found)
    }

    async fn delete_owned(&self, table: &str, owner: &str, id: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(table)
            .key("owner", s(owner))
            .key("id", s(id))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }
}

impl DynamoJobStore {
    pub fn new(client: Client, names: AwsNames) -> Self {
        DynamoJobStore { client, names }
    }

    /// The next value of the counter `name` (1, 2, 3, …), atomically.
    async fn next_id(&self, name: &str) -> StoreResult<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.names.counters_table)
            .key("name", s(name))
            .update_expression("ADD #value :one")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk_error)?;
        out.attributes()
            .and_then(|a| a.get("value"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Backend(format!("counter {name} returned no value")))
    }

    /// The record in `table` under `key`, read consistently.
    async fn get_doc<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: (&str, AttributeValue),
    ) -> StoreResult<Option<T>> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(key.0, key.1)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(doc_of).transpose()
    }

    async fn count_jobs(&self, owner: &str) -> StoreResult<u64> {
        let mut total = 0u64;
        let mut start_key = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.names.jobs_table)
                .index_name(OWNER_INDEX)
                .key_condition_expression("#owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(owner))
                .select(Select::Count)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(sdk_error)?;
            total += out.count().max(0) as u64;
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start_key = Some(key.clone()),
                _ => return Ok(total),
            }
        }
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create_job(&self, new: NewJob) -> StoreResult<Job> {
        let id = self.next_id("job").await?;
        let job = new.into_job(id, builds_domain::job::now());
        self.client
            .put_item()
            .table_name(&self.names.jobs_table)
            .set_item(Some(job_item(&job)?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(job)
    }

    async fn get_job(&self, id: JobId) -> StoreResult<Option<Job>> {
        self.get_doc(&self.names.jobs_table, ("id", n(id))).await
    }

    async fn replace_job(&self, job: &Job) -> StoreResult<Job> {
        let mut stored = job.clone();
        stored.version = job.version + 1;
        let result = self
            .client
            .put_item()
            .table_name(&self.names.jobs_table)
            .set_item(Some(job_item(&stored)?))
            .condition_expression("attribute_exists(id) AND version = :expected")
            .expression_attribute_values(":expected", n(job.version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(stored),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                match self.get_job(job.id).await? {
                    Some(_) => Err(StoreError::Conflict),
                    None => Err(StoreError::NotFound(format!("job {}", job.id))),
                }
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn list_jobs(
        &self,
        owner: &str,
        start: Option<JobId>,
        limit: usize,
    ) -> StoreResult<JobPage> {
        let mut jobs: Vec<Job> = Vec::new();
        let mut start_key = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.names.jobs_table)
                .index_name(OWNER_INDEX)
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(owner))
                .scan_index_forward(false)
                .limit((limit + 1 - jobs.len()).min(i32::MAX as usize) as i32)
                .set_exclusive_start_key(start_key);
            query = match start {
                Some(start) => query
                    .key_condition_expression("#owner = :owner AND id <= :start")
                    .expression_attribute_values(":start", n(start)),
                None => query.key_condition_expression("#owner = :owner"),
            };
            let out = query.send().await.map_err(sdk_error)?;
            for item in out.items() {
                jobs.push(doc_of(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() && jobs.len() <= limit => {
                    start_key = Some(key.clone())
                }
                _ => break,
            }
        }
        let next = if jobs.len() > limit {
            jobs.truncate(limit + 1);
            jobs.pop().map(|job| job.id)
        } else {
            None
        };
        let total = self.count_jobs(owner).await?;
        Ok(JobPage { jobs, next, total })
    }

    async fn create_group(&self, new: NewGroup) -> StoreResult<Group> {
        let id = self.next_id("group").await?;
        let group = Group {
            id,
            owner: new.owner,
            note: new.note,
            job_ids: new.job_ids,
            triggers: new.triggers,
            created: builds_domain::job::now(),
        };
        self.client
            .put_item()
            .table_name(&self.names.groups_table)
            .item("id", n(id))
            .item("owner", s(group.owner.clone()))
            .item("doc", s(to_json(&group)?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(group)
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        self.get_doc(&self.names.groups_table, ("id", n(id))).await
    }

    async fn claim_group_triggers(&self, id: GroupId) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.names.groups_table)
            .key("id", n(id))
            .update_expression("SET triggered = :yes")
            .condition_expression("attribute_exists(id) AND attribute_not_exists(triggered)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn put_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.names.tokens_table)
            .item("hash", s(token.hash.clone()))
            .item("owner", s(token.owner.clone()))
            .item("doc", s(to_json(token)?));
        if let Some(expires) = token.expires {
            // DynamoDB's TTL removes the item some time after this.
            put = put.item("expires_at", n(expires.unix_timestamp()));
        }
        put.send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn get_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.get_doc(&self.names.tokens_table, ("hash", s(hash)))
            .await
    }

    async fn delete_token(&self, hash: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.names.tokens_table)
            .key("hash", s(hash))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn put_secret(&self, secret: &SecretRecord) -> StoreResult<()> {
        self.put_owned(
            &self.names.secrets_table,
            &secret.owner,
            &secret.id,
            to_json(secret)?,
        )
        .await
    }

    async fn list_secrets(&self, owner: &str) -> StoreResult<Vec<SecretRecord>> {
        let mut secrets: Vec<SecretRecord> =
            self.list_owned(&self.names.secrets_table, owner).await?;
        secrets.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        Ok(secrets)
    }

    async fn delete_secret(&self, owner: &str, id: &str) -> StoreResult<bool> {
        self.delete_owned(&self.names.secrets_table, owner, id)
            .await
    }

    async fn put_ssh_key(&self, key: &SshKeyRecord) -> StoreResult<()> {
        self.put_owned(
            &self.names.ssh_keys_table,
            &key.owner,
            &key.id,
            to_json(key)?,
        )
        .await
    }

    async fn list_ssh_keys(&self, owner: &str) -> StoreResult<Vec<SshKeyRecord>> {
        let mut keys: Vec<SshKeyRecord> =
            self.list_owned(&self.names.ssh_keys_table, owner).await?;
        keys.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        Ok(keys)
    }

    async fn delete_ssh_key(&self, owner: &str, id: &str) -> StoreResult<bool> {
        self.delete_owned(&self.names.ssh_keys_table, owner, id)
            .await
    }
}
