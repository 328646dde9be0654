//! Following a job over the API: prints each log as it grows, with a header per
//! log, until the job ends. Used by `builds run` (and the client commands).

use anyhow::{bail, Context};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(300);
const TERMINAL: &[&str] = &["success", "failed", "timeout", "cancelled"];

pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.context("reading the response")?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {}", envelope_text(&body));
        }
        Ok(body)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.context("reading the response")?;
        if !status.is_success() {
            bail!("{}", envelope_text(&body));
        }
        Ok(body)
    }
}

/// The reasons of an sr.ht error envelope, one per line, with their fields.
pub fn envelope_text(body: &Value) -> String {
    match body["errors"].as_array() {
        Some(errors) => errors
            .iter()
            .map(|e| match e["field"].as_str() {
                Some(field) => format!("{field}: {}", e["reason"].as_str().unwrap_or("")),
                None => e["reason"].as_str().unwrap_or("").to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        None => body.to_string(),
    }
}

/// Reads the bytes of `url` past `offset`.
async fn read_from(http: &reqwest::Client, url: &str, offset: u64) -> anyhow::Result<Vec<u8>> {
    let response = http
        .get(url)
        .header("Range", format!("bytes={offset}-"))
        .send()
        .await?;
    match response.status().as_u16() {
        200 => Ok(response
            .bytes()
            .await?
            .get(offset as usize..)
            .unwrap_or_default()
            .to_vec()),
        206 => Ok(response.bytes().await?.to_vec()),
        416 => Ok(Vec::new()),
        code => bail!("reading a log gave HTTP {code}"),
    }
}

/// Prints the job's logs as they grow until it ends; returns its final status.
pub async fn follow(api: &Api, id: u64, out: &mut dyn Write) -> anyhow::Result<String> {
    let mut offsets: HashMap<String, u64> = HashMap::new();
    let mut current: Option<String> = None;
    loop {
        let job = api.get_json(&format!("/api/jobs/{id}")).await?;
        let status = job["status"].as_str().unwrap_or("unknown").to_string();
        let mut logs = vec![(
            "setup".to_string(),
            job["setup_log"].as_str().map(str::to_string),
        )];
        if let Some(tasks) = job["tasks"].as_array() {
            for task in tasks {
                logs.push((
                    task["name"].as_str().unwrap_or("?").to_string(),
                    task["log"].as_str().map(str::to_string),
                ));
            }
        }
        for (name, url) in logs {
            let Some(url) = url else { continue };
            let offset = offsets.entry(name.clone()).or_insert(0);
            let bytes = read_from(&api.http, &url, *offset).await?;
            if bytes.is_empty() {
                continue;
            }
            if current.as_deref() != Some(&name) {
                writeln!(out, "\n==> {name}")?;
                current = Some(name.clone());
            }
            out.write_all(&bytes)?;
            out.flush()?;
            *offset += bytes.len() as u64;
        }
        if TERMINAL.contains(&status.as_str()) {
            // One more pass happened after the status was final: logs are drained.
            writeln!(out, "\n==> job {id}: {status}")?;
            return Ok(status);
        }
        tokio::time::sleep(POLL).await;
    }
}
