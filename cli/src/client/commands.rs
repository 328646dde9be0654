//! What each client command does. Each returns whether the command succeeded
//! in the sense its exit code reports (for `--follow`: whether the job did).

use super::api::{next_page, page_results, parse, Api, Artifact, Job};
use super::config::{config_path, resolve};
use super::follow::{follow, FollowOptions};
use super::output::{human_size, paint, status, table, Output, Style};
use super::{
    ArtifactsArgs, ClientOptions, JobArgs, ListArgs, ManifestArgs, ResubmitArgs, ShowArgs,
    SubmitArgs,
};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

const STATUSES: [&str; 7] = [
    "pending",
    "queued",
    "running",
    "success",
    "failed",
    "timeout",
    "cancelled",
];

pub(crate) fn connect(options: &ClientOptions) -> anyhow::Result<(Api, Output)> {
    let config = resolve(
        options.url.clone(),
        options.token.clone(),
        config_path().as_deref(),
    )?;
    let api = Api::new(&config.url, &config.token, options.retry_policy())?;
    Ok((api, Output::new(options.json)))
}

fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

fn read_manifest(path: &Path) -> anyhow::Result<String> {
    let bytes = if is_stdin(path) {
        if std::io::stdin().is_terminal() {
            eprintln!("builds: reading a manifest from standard input (end it with Ctrl-D)");
        }
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        buf
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", describe(path)))?;
    if text.trim().is_empty() {
        bail!("{} is empty", describe(path));
    }
    Ok(text)
}

fn describe(path: &Path) -> String {
    if is_stdin(path) {
        "the manifest on standard input".to_string()
    } else {
        path.display().to_string()
    }
}

/// Submits one manifest; returns the new job's id.
async fn post_job(
    api: &Api,
    manifest: &str,
    note: Option<&str>,
    tags: &[String],
    execute: bool,
    secrets: bool,
) -> anyhow::Result<u64> {
    let mut body = json!({
        "manifest": manifest,
        "tags": tags,
        "execute": execute,
        "secrets": secrets,
    });
    if let Some(note) = note {
        body["note"] = json!(note);
    }
    let answer = api.post_json("/api/jobs", &body).await?;
    answer["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("the API answered without a job id: {answer}"))
}

fn report_submitted(api: &Api, out: &Output, id: u64, execute: bool) {
    let url = api.job_url(id);
    if out.json {
        out.print_json(&json!({ "id": id, "url": url }));
    } else if execute {
        println!("Job {id} queued: {url}");
    } else {
        println!("Job {id} pending (start it with `builds start {id}`): {url}");
    }
}

/// Follows a job to its end: logs to standard output (standard error with
/// `--json`, whose standard output gets the final job resource).
async fn follow_job(api: &Api, out: &Output, id: u64) -> anyhow::Result<bool> {
    let options = FollowOptions {
        color: if out.json { out.stderr_tty } else { out.color },
        spinner: out.stderr_tty,
        ..FollowOptions::default()
    };
    if out.json {
        let followed = follow(api, id, &mut std::io::stderr(), options).await?;
        out.print_json(&followed.raw);
        Ok(followed.succeeded())
    } else {
        let followed = follow(api, id, &mut std::io::stdout(), options).await?;
        Ok(followed.succeeded())
    }
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<bool> {
    let (api, out) = connect(&args.client)?;
    let sources = if args.manifests.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.manifests
    };
    if sources.iter().filter(|p| is_stdin(p)).count() > 1 {
        bail!("standard input (`-`) can be given only once");
    }
    // Every file is read before anything is submitted.
    let texts = sources
        .iter()
        .map(|p| read_manifest(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = &args.submit;
    let mut ids = Vec::new();
    for (path, text) in sources.iter().zip(&texts) {
        let id = post_job(
            &api,
            text,
            options.note.as_deref(),
            &options.tags,
            !options.no_execute,
            !options.no_secrets,
        )
        .await
        .with_context(|| format!("submitting {}", describe(path)))?;
        report_submitted(&api, &out, id, !options.no_execute);
        ids.push(id);
    }
    if !options.follow {
        return Ok(true);
    }
    let mut all_succeeded = true;
    for id in ids {
        all_succeeded &= follow_job(&api, &out, id).await?;
    }
    Ok(all_succeeded)
}

pub(crate) async fn get_job(api: &Api, id: u64) -> anyhow::Result<(Job, Value)> {
    let what = format!("job {id}");
    let raw = api
        .get_json(&format!("/api/jobs/{id}"))
        .await
        .with_context(|| what.clone())?;
    let job = parse(&what, &raw)?;
    Ok((job, raw))
}

fn print_job(job: &Job, color: bool) {
    println!(
        "{} {}",
        paint(&format!("Job {}:", job.id), Style::Bold, color),
        status(&job.status, color)
    );
    let owner = job
        .owner
        .as_ref()
        .and_then(|o| o.canonical_name.clone().or(o.name.clone()));
    let group = job.group_id.map(|g| g.to_string());
    let shell = job
        .shell
        .as_ref()
        .map(|url| format!("`builds ssh {}` ({url})", job.id));
    let fields = [
        ("image", job.image.as_deref()),
        ("note", job.note.as_deref()),
        ("tags", job.tags.as_deref()),
        ("owner", owner.as_deref()),
        ("runner", job.runner.as_deref()),
        ("group", group.as_deref()),
        ("created", job.created.as_deref()),
        ("updated", job.updated.as_deref()),
        ("setup log", job.setup_log.as_deref()),
        ("ssh", shell.as_deref()),
    ];
    for (label, value) in fields {
        if let Some(value) = value {
            let mut lines = value.lines();
            let first = lines.next().unwrap_or("");
            println!("  {:<10} {first}", format!("{label}:"));
            for more in lines {
                println!("  {:<10} {more}", "");
            }
        }
    }
    if !job.tasks.is_empty() {
        println!("  tasks:");
        let width = job.tasks.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for task in &job.tasks {
            let pad = width.saturating_sub(task.name.len());
            let line = format!(
                "    {}{}  {}  {}",
                task.name,
                " ".repeat(pad),
                status(&task.status, color),
                task.log.as_deref().unwrap_or("")
            );
            println!("{}", line.trim_end());
        }
    }
}

pub async fn show(args: ShowArgs) -> anyhow::Result<bool> {
    let (api, out) = connect(&args.client)?;
    if args.follow {
        return follow_job(&api, &out, args.id).await;
    }
    let (job, raw) = get_job(&api, args.id).await?;
    if out.json {
        out.print_json(&raw);
    } else {
        print_job(&job, out.color);
    }
    Ok(true)
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

pub async fn list(args: ListArgs) -> anyhow::Result<bool> {
    for wanted in &args.statuses {
        if !STATUSES.contains(&wanted.as_str()) {
            bail!("unknown status {wanted:?}: one of {}", STATUSES.join(", "));
        }
    }
    let (api, out) = connect(&args.client)?;
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut matched: Vec<(Job, Value)> = Vec::new();
    let mut start: Option<String> = None;
    'pages: while matched.len() < limit {
        let path = match &start {
            Some(start) => format!("/api/jobs?start={start}"),
            None => "/api/jobs".to_string(),
        };
        let page = api.get_json(&path).await.context("listing jobs")?;
        for raw in page_results("the job list", &page)? {
            let job: Job = parse("the job list", &raw)?;
            let status_ok = args.statuses.is_empty() || args.statuses.contains(&job.status);
            let tags = job.tag_list();
            let tags_ok = args.tags.iter().all(|t| tags.contains(&t.as_str()));
            if status_ok && tags_ok {
                matched.push((job, raw));
                if matched.len() >= limit {
                    break 'pages;
                }
            }
        }
        match next_page(&page) {
            Some(next) if Some(&next) != start.as_ref() => {
                if !next.chars().all(|c| c.is_ascii_alphanumeric()) {
                    bail!("the job list gave an unexpected next page: {next:?}");
                }
                start = Some(next);
            }
            _ => break,
        }
    }
    if out.json {
        let all: Vec<Value> = matched.into_iter().map(|(_, raw)| raw).collect();
        out.print_json(&Value::Array(all));
        return Ok(true);
    }
    if matched.is_empty() {
        eprintln!("builds: no jobs match");
        return Ok(true);
    }
    let rows: Vec<Vec<String>> = matched
        .iter()
        .map(|(job, _)| {
            vec![
                job.id.to_string(),
                status(&job.status, out.color),
                job.image.clone().unwrap_or_default(),
                job.tags.clone().unwrap_or_default(),
                first_line(job.note.as_deref().unwrap_or(""), 60),
            ]
        })
        .collect();
    table(&["ID", "STATUS", "IMAGE", "TAGS", "NOTE"], &rows, out.color);
    Ok(true)
}

/// `start` and `cancel`: the action, then the job as it is now.
async fn act(args: JobArgs, action: &str) -> anyhow::Result<bool> {
    let (api, out) = connect(&args.client)?;
    let id = args.id;
    api.post_json(&format!("/api/jobs/{id}/{action}"), &json!({}))
        .await
        .with_context(|| format!("job {id}"))?;
    let (job, raw) = get_job(&api, id).await?;
    if out.json {
        out.print_json(&raw);
    } else {
        println!("Job {id}: {}", status(&job.status, out.color));
    }
    Ok(true)
}

pub async fn cancel(args: JobArgs) -> anyhow::Result<bool> {
    act(args, "cancel").await
}

pub async fn start(args: JobArgs) -> anyhow::Result<bool> {
    act(args, "start").await
}

/// A file name for an artifact that stays inside the download directory.
fn safe_file_name(artifact: &Artifact) -> String {
    let base = artifact
        .name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .trim();
    if base.is_empty() || base == "." || base == ".." {
        format!("artifact-{}", artifact.id)
    } else {
        base.to_string()
    }
}

pub async fn artifacts(args: ArtifactsArgs) -> anyhow::Result<bool> {
    let (api, out) = connect(&args.client)?;
    let id = args.id;
    let mut items: Vec<(Artifact, Value)> = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let path = match &start {
            Some(start) => format!("/api/jobs/{id}/artifacts?start={start}"),
            None => format!("/api/jobs/{id}/artifacts"),
        };
        let page = api
            .get_json(&path)
            .await
            .with_context(|| format!("the artifacts of job {id}"))?;
        for raw in page_results("the artifact list", &page)? {
            items.push((parse("the artifact list", &raw)?, raw));
        }
        match next_page(&page) {
            Some(next)
                if Some(&next) != start.as_ref()
                    && next.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                start = Some(next)
            }
            _ => break,
        }
    }
    if items.is_empty() {
        if out.json {
            out.print_json(&json!([]));
        } else {
            let (job, _) = get_job(&api, id).await?;
            let why = if job.status == "success" {
                String::new()
            } else {
                format!(
                    " (artifacts are kept when a job succeeds; this one is {})",
                    job.status
                )
            };
            eprintln!("builds: job {id} has no artifacts{why}");
        }
        return Ok(true);
    }
    let Some(dir) = args.download else {
        if out.json {
            let all: Vec<Value> = items.into_iter().map(|(_, raw)| raw).collect();
            out.print_json(&Value::Array(all));
        } else {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|(a, _)| {
                    vec![
                        a.name.clone(),
                        human_size(a.size),
                        a.path.clone(),
                        a.url.clone(),
                    ]
                })
                .collect();
            table(&["NAME", "SIZE", "PATH", "URL"], &rows, out.color);
        }
        return Ok(true);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut used = std::collections::HashSet::new();
    let mut written = Vec::new();
    for (artifact, mut raw) in items {
        let mut name = safe_file_name(&artifact);
        if !used.insert(name.clone()) {
            name = format!("{}-{name}", artifact.id);
            used.insert(name.clone());
        }
        let target = dir.join(&name);
        let partial = dir.join(format!(".{name}.partial"));
        let size = api.download(&artifact.url, &partial).await;
        let size = match size {
            Ok(size) => size,
            Err(err) => {
                let _ = std::fs::remove_file(&partial);
                return Err(err.context(format!("artifact {}", artifact.name)));
            }
        };
        if artifact.size != 0 && size != artifact.size {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "artifact {}: downloaded {size} bytes, but the API says it has {}",
                artifact.name,
                artifact.size
            );
        }
        std::fs::rename(&partial, &target)
            .with_context(|| format!("cannot write {}", target.display()))?;
        if out.json {
            raw["file"] = json!(target.display().to_string());
            written.push(raw);
        } else {
            println!("{}  {}", target.display(), human_size(size));
        }
    }
    if out.json {
        out.print_json(&Value::Array(written));
    }
    Ok(true)
}

/// Opens `text` in the user's editor; returns what they saved.
async fn edit(text: &str, id: u64) -> anyhow::Result<String> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string());
    let file = tempfile::Builder::new()
        .prefix(&format!("builds-{id}-"))
        .suffix(".yml")
        .tempfile()
        .context("cannot create a temporary file")?;
    std::fs::write(file.path(), text).context("cannot write the temporary file")?;
    // Through the shell, so EDITOR may carry arguments ("code --wait").
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status()
        .await
        .with_context(|| format!("cannot run the editor ({editor})"))?;
    if !status.success() {
        bail!("the editor ({editor}) exited with {status}: nothing was submitted");
    }
    std::fs::read_to_string(file.path()).context("cannot read the edited manifest")
}

pub async fn resubmit(args: ResubmitArgs) -> anyhow::Result<bool> {
    let (api, out) = connect(&args.client)?;
    let id = args.id;
    let (old, _) = get_job(&api, id).await?;
    let mut manifest = api
        .get_text(&format!("/api/jobs/{id}/manifest"))
        .await
        .with_context(|| format!("the manifest of job {id}"))?;
    if args.edit {
        manifest = edit(&manifest, id).await?;
        if manifest.trim().is_empty() {
            bail!("the edited manifest is empty: nothing was submitted");
        }
    }
    let tags: Vec<String> = old.tag_list().into_iter().map(str::to_string).collect();
    let note = args.note.or(old.note);
    let new = post_job(&api, &manifest, note.as_deref(), &tags, true, true)
        .await
        .with_context(|| format!("resubmitting job {id}"))?;
    report_submitted(&api, &out, new, true);
    if args.follow {
        return follow_job(&api, &out, new).await;
    }
    Ok(true)
}

pub async fn manifest(args: ManifestArgs) -> anyhow::Result<bool> {
    let Some(id) = args.id else {
        bail!("which job? builds manifest ID");
    };
    let (api, out) = connect(&args.client)?;
    let text = api
        .get_text(&format!("/api/jobs/{id}/manifest"))
        .await
        .with_context(|| format!("the manifest of job {id}"))?;
    if out.json {
        out.print_json(&json!({ "id": id, "manifest": text }));
    } else if text.ends_with('\n') {
        print!("{text}");
    } else {
        println!("{text}");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(name: &str) -> Artifact {
        Artifact {
            id: 7,
            path: String::new(),
            name: name.to_string(),
            url: String::new(),
            size: 0,
        }
    }

    #[test]
    fn artifact_names_stay_in_the_directory() {
        assert_eq!(safe_file_name(&artifact("out.txt")), "out.txt");
        assert_eq!(safe_file_name(&artifact("../../etc/passwd")), "passwd");
        assert_eq!(safe_file_name(&artifact("..")), "artifact-7");
        assert_eq!(safe_file_name(&artifact("dir/")), "artifact-7");
    }

    #[test]
    fn notes_are_cut_to_one_line() {
        assert_eq!(first_line("short\nsecond", 60), "short");
        assert_eq!(first_line("abcdef", 4), "abc…");
    }
}
