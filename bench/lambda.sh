#!/usr/bin/env bash
# Builds every Lambda function binary in release, then prints a table: each
# function's binary size and init time (median of RUNS starts) against the
# design's goal, init < 50 ms. See bench/README.md. Not run in CI; stops by
# itself (the build is bounded by BUILD_TIMEOUT, every measured start by 10 s).
#
#   bench/lambda.sh                 # RUNS=9, build with cargo lambda if it and zig are there
#   BUILD=cargo bench/lambda.sh     # plain `cargo build --release` instead
#   RUNS=25 bench/lambda.sh
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${RUNS:-9}"
build="${BUILD:-auto}"                  # auto | lambda | cargo
build_timeout="${BUILD_TIMEOUT:-5400}"  # seconds; a cold release build on 2 cores takes ~30 min
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac

functions=()
for source in functions/src/bin/*.rs; do
    functions+=("$(basename "$source" .rs)")
done

have_cargo_lambda() { cargo lambda --version >/dev/null 2>&1; }
# zig on PATH, or the one the `ziglang` PyPI package ships (a dependency of
# the `cargo-lambda` package; cargo-lambda finds it through `python3 -m ziglang`).
zig_version() { zig version 2>/dev/null || python3 -m ziglang version 2>/dev/null; }

if [ "$build" = auto ]; then
    if have_cargo_lambda && zig_version >/dev/null; then build=lambda; else build=cargo; fi
fi

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"; }
case "$build" in
lambda)
    echo "== cargo lambda build --release ($(cargo lambda --version), zig $(zig_version))"
    timeout "$build_timeout" cargo lambda build --release --package builds-functions \
        --lambda-dir "$target_dir/lambda"
    binary_of() { echo "$target_dir/lambda/$1/bootstrap"; }
    ;;
cargo)
    echo "== cargo build --release --package builds-functions --bins (no cargo lambda or zig)"
    timeout "$build_timeout" cargo build --release --package builds-functions --bins
    binary_of() { echo "$target_dir/release/$1"; }
    ;;
*)
    echo "BUILD must be auto, lambda or cargo, not $build" >&2
    exit 2
    ;;
esac

binaries=()
for function in "${functions[@]}"; do
    binary="$(binary_of "$function")"
    [ -x "$binary" ] || { echo "no binary for $function at $binary" >&2; exit 1; }
    binaries+=("$function=$binary")
done

# cargo-lambda's runtime emulator, without the functions (the measurement
# starts each binary itself), for the "cargo-lambda emulator" column.
emulator_args=()
emulator_pid=""
stop_emulator() {
    if [ -n "$emulator_pid" ]; then
        kill -TERM -- "-$emulator_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$emulator_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$emulator_pid" 2>/dev/null || true
    fi
}
trap stop_emulator EXIT
if have_cargo_lambda; then
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    log="${TMPDIR:-/tmp}/builds-bench-emulator-$$.log"
    setsid cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 \
        --invoke-port "$port" >"$log" 2>&1 </dev/null &
    emulator_pid=$!
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            emulator_args=(--emulator "http://127.0.0.1:$port")
            break
        fi
        kill -0 "$emulator_pid" 2>/dev/null || break
        sleep 0.2
    done
    if [ "${#emulator_args[@]}" -eq 0 ]; then
        echo "NOTE: cargo lambda watch did not start; no emulator column. Its log:"
        cat "$log"
    fi
else
    echo "NOTE: cargo lambda is not installed: no emulator column (python3 -m pip install cargo-lambda)"
fi

echo "== init time: median of $runs starts per function ($(load) before; other work on the machine shows in the figures)"
python3 bench/lambda_init.py --runs "$runs" "${emulator_args[@]}" "${binaries[@]}"
