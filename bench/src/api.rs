//! API: `GET /api/jobs/:id` and `POST /api/jobs` on the local server (embedded
//! backend) under wrk, against a hello-world server on the same stack (axum on
//! tokio, same runtime, same process) in the same run.

use crate::service::Service;
use anyhow::Context;
use std::process::Stdio;

/// What wrk measured.
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: String,
}

/// `1.23ms`, `456.00us`, `1.02s` → milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn parse_wrk(output: &str) -> anyhow::Result<Load> {
    let field = |prefix: &str| {
        output
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix).map(str::trim))
    };
    let requests_per_second = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .context("wrk printed no Requests/sec")?;
    let p50_ms = field("50%").and_then(millis).context("no 50% latency")?;
    let p99_ms = field("99%").and_then(millis).context("no 99% latency")?;
    let errors = output
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Load {
        requests_per_second,
        p50_ms,
        p99_ms,
        errors,
    })
}

async fn wrk(
    url: &str,
    seconds: u32,
    connections: u32,
    script: Option<&std::path::Path>,
    token: Option<&str>,
) -> anyhow::Result<Load> {
    let mut command = tokio::process::Command::new("wrk");
    command.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let said = String::from_utf8_lossy(&output.stderr);
    if !said.trim().is_empty() {
        eprint!("{said}");
    }
    anyhow::ensure!(output.status.success(), "wrk failed: {text}");
    parse_wrk(&text)
}

pub async fn run(seconds: u32, connections: u32) -> anyhow::Result<()> {
    let hello = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hello_url = format!("http://{}/", hello.local_addr()?);
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    tokio::spawn(async move { axum::serve(hello, app).await });

    let service = Service::start(None, 0).await?;
    let job_id = service
        .http
        .post(format!("{}/api/jobs", service.base))
        .bearer_auth(&service.token)
        .json(&serde_json::json!({
            "manifest": "image: debian/bookworm\ntasks:\n  - a: echo a\n",
            "execute": false,
        }))
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?["id"]
        .as_u64()
        .context("job id")?;
    let script = tempfile::Builder::new().suffix(".lua").tempfile()?;
    std::fs::write(
        script.path(),
        format!(
            "wrk.method = \"POST\"\n\
             wrk.body = '{{\"manifest\": \"image: debian/bookworm\\\\ntasks:\\\\n  - a: echo a\\\\n\", \"execute\": false}}'\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.headers[\"Authorization\"] = \"Bearer {}\"\n\
             shown = 0\n\
             response = function(status, headers, body)\n\
               if status ~= 200 and shown < 3 then\n\
                 shown = shown + 1\n\
                 io.stderr:write(\"POST answered \" .. status .. \": \" .. body .. \"\\n\")\n\
               end\n\
             end\n",
            service.token
        ),
    )?;

    println!(
        "api: wrk -t1 -c{connections} -d{seconds}s, embedded backend, same process as hello-world"
    );
    let hello = wrk(&hello_url, seconds, connections, None, None).await?;
    let get = wrk(
        &format!("{}/api/jobs/{job_id}", service.base),
        seconds,
        connections,
        None,
        Some(&service.token),
    )
    .await?;
    let post = wrk(
        &format!("{}/api/jobs", service.base),
        seconds,
        connections,
        Some(script.path()),
        None,
    )
    .await?;
    println!();
    println!("| endpoint | requests/s | p50 | p99 | vs hello-world |");
    println!("|---|---|---|---|---|");
    for (name, load) in [
        ("hello-world (the limit)", &hello),
        ("GET /api/jobs/:id", &get),
        ("POST /api/jobs", &post),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {:.0}% |{}",
            load.requests_per_second,
            load.p50_ms,
            load.p99_ms,
            100.0 * load.requests_per_second / hello.requests_per_second,
            if load.errors.is_empty() {
                String::new()
            } else {
                format!(" {}", load.errors)
            }
        );
    }
    println!();
    println!("goals: p99 < 5 ms; GET ≥ 50% of hello-world throughput");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 1s test @ http://x/\n  Latency Distribution\n     50%  210.00us\n     75%    1.10ms\n     90%    2.00ms\n     99%    4.50ms\n  100 requests in 1.00s, 10KB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:   9876.54\nTransfer/sec:      1.00MB\n";
        let load = parse_wrk(text).unwrap();
        assert_eq!(load.requests_per_second, 9876.54);
        assert!((load.p50_ms - 0.21).abs() < 1e-9);
        assert_eq!(load.p99_ms, 4.5);
        assert_eq!(load.errors, "Non-2xx or 3xx responses: 3");
    }
}
