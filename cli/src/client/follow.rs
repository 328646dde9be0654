//! Following a job: prints each log as it grows, with a header when the log
//! being printed changes, until the job ends; then a final status line. A
//! spinner shows on a terminal while nothing has been printed yet.

use super::api::{parse, Api, Job};
use super::output::{is_terminal_status, paint, status, Spinner, Style};
use anyhow::Context;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct FollowOptions {
    /// How often the job is read.
    pub poll: Duration,
    /// Colours in `out`.
    pub color: bool,
    /// A spinner on standard error while the job waits.
    pub spinner: bool,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            poll: Duration::from_millis(500),
            color: false,
            spinner: false,
        }
    }
}

/// How a followed job ended.
#[derive(Debug, Clone)]
pub struct Followed {
    pub job: Job,
    /// The job resource as the API sent it.
    pub raw: Value,
}

impl Followed {
    pub fn succeeded(&self) -> bool {
        self.job.status == "success"
    }
}

const SETUP: &str = "setup";

/// One log of a job: the setup log or a task's.
struct Log {
    key: String,
    header: String,
    url: Option<String>,
    /// The log is complete (its task has ended).
    complete: bool,
}

fn logs_of(job: &Job) -> Vec<Log> {
    let mut logs = vec![Log {
        key: SETUP.to_string(),
        header: "setup".to_string(),
        url: job.setup_log.clone(),
        complete: false,
    }];
    for task in &job.tasks {
        logs.push(Log {
            key: format!("task/{}", task.name),
            header: format!("task {}", task.name),
            url: task.log.clone(),
            // The worker finishes a task's log before it records the status.
            complete: matches!(task.status.as_str(), "success" | "failed" | "skipped"),
        });
    }
    logs
}

fn waiting_message(job: &Job) -> String {
    match job.status.as_str() {
        "pending" => format!(
            "job {} is pending: it runs once started (builds start {})",
            job.id, job.id
        ),
        "queued" => format!("job {} is queued, waiting for a worker", job.id),
        "running" => format!("job {} is running, setting up", job.id),
        other => format!("job {} is {other}", job.id),
    }
}

/// The last line: the job's status and each task's.
pub fn status_line(job: &Job, color: bool) -> String {
    let tasks: Vec<String> = job
        .tasks
        .iter()
        .map(|t| format!("{}: {}", t.name, status(&t.status, color)))
        .collect();
    let mut line = format!(
        "{} {}",
        paint(&format!("==> job {}:", job.id), Style::Bold, color),
        status(&job.status, color)
    );
    if !tasks.is_empty() {
        line.push_str(&format!(" ({})", tasks.join(", ")));
    }
    line
}

/// Prints the job's logs to `out` as they grow until it ends.
pub async fn follow(
    api: &Api,
    id: u64,
    out: &mut dyn Write,
    options: FollowOptions,
) -> anyhow::Result<Followed> {
    let mut offsets: HashMap<String, u64> = HashMap::new();
    let mut drained: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut spinner = Spinner::new(options.spinner);
    let mut printed = false;
    let mut printed_task = false;
    let what = format!("job {id}");
    loop {
        let raw = api
            .get_json(&format!("/api/jobs/{id}"))
            .await
            .with_context(|| what.clone())?;
        let job: Job = parse(&what, &raw)?;
        let ended = is_terminal_status(&job.status);
        let mut logs = logs_of(&job);
        if printed_task {
            // Once tasks run, what the worker adds to the setup log (a task
            // failed, complete-build, the job's end) comes after their output.
            logs.rotate_left(1);
        }
        for log in logs {
            let Some(url) = &log.url else { continue };
            if drained.contains(&log.key) {
                continue;
            }
            let offset = offsets.entry(log.key.clone()).or_insert(0);
            let bytes = api
                .read_log(url, *offset)
                .await
                .with_context(|| format!("reading the {} log of job {id}", log.header))?;
            if log.complete {
                drained.insert(log.key.clone());
            }
            if bytes.is_empty() {
                continue;
            }
            spinner.clear();
            if current.as_deref() != Some(&log.key) {
                if printed {
                    writeln!(out)?;
                }
                let header = format!("==> {}", log.header);
                writeln!(out, "{}", paint(&header, Style::Bold, options.color))?;
                current = Some(log.key.clone());
            }
            out.write_all(&bytes)?;
            out.flush()?;
            printed = true;
            printed_task |= log.key != SETUP;
            *offset += bytes.len() as u64;
        }
        if ended {
            // This pass read every log after the status was final: all is drained.
            spinner.clear();
            if printed {
                writeln!(out)?;
            }
            writeln!(out, "{}", status_line(&job, options.color))?;
            out.flush()?;
            return Ok(Followed { job, raw });
        }
        if !printed {
            spinner.set(waiting_message(&job));
        }
        tokio::time::sleep(options.poll).await;
    }
}
