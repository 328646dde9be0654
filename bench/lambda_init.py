#!/usr/bin/env python3
"""Init time of Lambda function binaries, against a tiny fake Lambda runtime API.

For each binary and each run: start the process with the environment a
deployed function has (AWS_LAMBDA_RUNTIME_API pointing here), and take

  init   = process start -> its first GET /2018-06-01/runtime/invocation/next
           (the function has built its backend and is ready for an event);
  first  = process start -> its POST .../response to that first event (a
           function URL request for a path the function does not route, so the
           answer is the router's 404 and no storage call is made).

Prints one row per binary: size, median init, median first response, and the
50 ms goal. Each run is bounded (RUN_TIMEOUT seconds); the process is killed
after its first response. Standard library only.

Usage: lambda_init.py --runs N NAME=PATH [NAME=PATH ...]
"""

import argparse
import http.server
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

GOAL_MS = 50.0
RUN_TIMEOUT = 10.0
NEXT_PATH = "/2018-06-01/runtime/invocation/next"


class FakeRuntime(http.server.ThreadingHTTPServer):
    """One pending event per run; records when the function asks and answers."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.function = ""
        self.reset()

    def handle_error(self, request, client_address):
        pass  # a killed function drops its connections: expected

    def reset(self):
        with self.lock:
            self.polled_at = None
            self.responded_at = None
            self.response = None
            self.request_id = str(uuid.uuid4())
            self.served = False
            self.done = threading.Event()


def function_url_event(function, path):
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "localhost", "user-agent": "bench"},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "bench",
            "domainName": "localhost",
            "domainPrefix": function,
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bench",
            },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def this_run(self):
        """The path without its run prefix, or None for a request from an
        earlier run's process (killed, but its last request may still be
        on its way)."""
        prefix = "/" + self.server.request_id
        if self.path.startswith(prefix + "/"):
            return self.path[len(prefix):]
        return None

    def do_GET(self):
        server = self.server
        path = self.this_run()
        if path != NEXT_PATH:
            return self.reply(410 if path is None else 404, b"{}")
        now = time.perf_counter()
        with server.lock:
            if server.polled_at is None:
                server.polled_at = now
            first = not server.served
            server.served = True
            request_id = server.request_id
            function = server.function
        if not first:
            # Later polls wait (as on Lambda) until the run ends.
            server.done.wait(RUN_TIMEOUT)
            return self.reply(500, b"{}")
        body = json.dumps(function_url_event(function, "/bench/no-such-route")).encode()
        deadline_ms = int((time.time() + 30) * 1000)
        self.reply(
            200,
            body,
            {
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:us-east-1:000000000000:function:{function}",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
            },
        )

    def do_POST(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        now = time.perf_counter()
        path = self.this_run()
        if path is None:
            self.reply(410, b"{}")
        elif path.endswith("/response") or path.endswith("/error"):
            with server.lock:
                server.responded_at = now
                server.response = (path.rsplit("/", 1)[-1], payload)
            self.reply(202, b"{}")
            server.done.set()
        else:
            self.reply(202, b"{}")

    def reply(self, status, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def function_env(name, runtime_api):
    """What a deployed function sees (see README, "The AWS backend"); nothing
    here is contacted during init or the 404 invocation."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIABENCHBENCHBENCH0",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "BUILDS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/builds-jobs",
        "BUILDS_SIGNING_KEY": "00" * 32,
        "BUILDS_ORIGIN": "https://builds.invalid",
        "RUST_LOG": "warn",
    }


def one_run(server, name, path):
    server.reset()
    server.function = name
    # Each run's own path prefix (the runtime API address may carry one).
    runtime_api = "http://127.0.0.1:%d/%s" % (server.server_address[1], server.request_id)
    env = function_env(name, runtime_api)
    started = time.perf_counter()
    process = subprocess.Popen(
        [path],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = started + RUN_TIMEOUT
        finished = False
        while time.perf_counter() < deadline:
            if server.done.wait(0.05):
                finished = True
                break
            if process.poll() is not None:
                break
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    if not finished or server.polled_at is None:
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(
            f"{name}: no answer (exit status {process.returncode}): "
            + " | ".join(tail)
        )
    kind, payload = server.response
    if kind != "response":
        raise RuntimeError(f"{name}: the invocation failed: {payload[:300]!r}")
    status = json.loads(payload or b"{}").get("statusCode")
    if status != 404:
        raise RuntimeError(f"{name}: expected the router's 404, got {payload[:300]!r}")
    return (
        (server.polled_at - started) * 1000.0,
        (server.responded_at - started) * 1000.0,
    )


def emulator_run(emulator, name, path):
    """Process start -> the answer to a function URL request sent at once to
    cargo-lambda's emulator (`cargo lambda watch --only-lambda-apis`), which
    holds it until the function polls: init plus one invocation, end to end."""
    env = function_env("_", emulator + "/.rt")  # "_": the emulator's default function
    result = {}

    def request():
        try:
            urllib.request.urlopen(emulator + "/bench/no-such-route", timeout=RUN_TIMEOUT)
            result["status"] = 200
        except urllib.error.HTTPError as err:
            result["status"] = err.code
        except Exception as err:  # noqa: BLE001 - reported below
            result["error"] = str(err)
        result["at"] = time.perf_counter()

    started = time.perf_counter()
    process = subprocess.Popen(
        [path],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    try:
        while thread.is_alive() and process.poll() is None:
            thread.join(0.05)
        thread.join(0.5)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    if result.get("status") != 404:
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(
            f"{name} under the emulator: {result.get('error') or result.get('status')} "
            f"(exit status {process.returncode}): " + " | ".join(tail)
        )
    # Let the emulator see the connection go before the next run.
    time.sleep(0.2)
    return (result["at"] - started) * 1000.0


def human_size(size):
    return f"{size / (1024 * 1024):.1f} MiB"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--emulator", help="base URL of `cargo lambda watch --only-lambda-apis`")
    parser.add_argument("binaries", nargs="+", metavar="NAME=PATH")
    args = parser.parse_args()

    server = FakeRuntime()
    threading.Thread(target=server.serve_forever, daemon=True).start()

    rows = []
    failures = 0
    for spec in args.binaries:
        name, _, path = spec.partition("=")
        size = os.path.getsize(path)
        row = {"name": name, "size": size}
        try:
            one_run(server, name, path)  # warm the page cache, not counted
            runs = [one_run(server, name, path) for _ in range(args.runs)]
            row["init"] = statistics.median(r[0] for r in runs)
            row["worst"] = max(r[0] for r in runs)
            row["first"] = statistics.median(r[1] for r in runs)
            if args.emulator:
                emulator_run(args.emulator, name, path)  # warm-up
                row["emulated"] = statistics.median(
                    emulator_run(args.emulator, name, path) for _ in range(args.runs)
                )
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            failures += 1
        rows.append(row)
    server.shutdown()

    def ms(row, key):
        return f"{row[key]:.1f} ms" if key in row else "-"

    header = ["function", "binary size", "init (median)", "init (max)",
              "first response (median)"]
    if args.emulator:
        header.append("first response, cargo-lambda emulator (median)")
    header.append(f"goal: init < {GOAL_MS:.0f} ms")
    table = [header]
    for row in rows:
        cells = [row["name"], human_size(row["size"]), ms(row, "init"), ms(row, "worst"),
                 ms(row, "first")]
        if args.emulator:
            cells.append(ms(row, "emulated"))
        if "init" not in row:
            verdict = "FAILED"
        else:
            verdict = "met" if row["init"] < GOAL_MS else "MISSED"
        cells.append(verdict)
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print(f"\n{args.runs} runs per function (after one unmeasured warm-up run); "
          "init = process start to its first poll of the runtime API.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
