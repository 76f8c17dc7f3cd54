#!/usr/bin/env bash
# The benchmark suite: the middleware's cost against SessionMiddleware alone, and its upstream
# economy, measured over loopback on real servers (results and method: BENCHMARKS.md).
#
#   scripts/bench.sh            # release build, 5 rounds of 10 s per case, criterion; rewrites the
#                               # results section of BENCHMARKS.md (about 10 minutes on 2 cores
#                               # once the release dependencies are built)
#   scripts/bench.sh --smoke    # debug build, 1 round of 1 s, tiny counts, each criterion case run
#                               # once as a test; prints the results, writes nothing (CI)
#   scripts/bench.sh --no-micro # without the criterion micro-benchmark
#
# Other options go to the driver (examples/bench_driver/): --rounds N, --secs S, --connections C,
# --browsers B, --storm N, --rtt-count N, --out FILE, --no-pin, and --compare-bin PATH (a second
# bench_server build, e.g. with a fix, measured in the same rounds). Installs wrk from Debian's
# packages when it is missing. App servers run on CPU 0, everything else on CPU 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
micro=1
driver_args=()
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    --no-micro) micro=0 ;;
    -h | --help)
      sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) driver_args+=("$arg") ;;
  esac
done

if ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "bench: installing wrk" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi

# Pin the load side to CPU 1 when there are two CPUs to pin to (the driver pins the servers to 0).
pin=()
if command -v taskset >/dev/null 2>&1 && [ "$(grep -c ^processor /proc/cpuinfo)" -ge 2 ]; then
  pin=(taskset -c 1)
  micro_pin=(taskset -c 0)
else
  micro_pin=()
fi

target_dir="${CARGO_TARGET_DIR:-target}"
if ((smoke)); then
  # The debug build: its dependencies are already built by `cargo test`.
  cargo build --example bench_server --example bench_driver
  if ((micro)); then
    # criterion runs each case once when the bench binary is started by `cargo test`.
    cargo test -p xtests --bench request_path
  fi
  "${pin[@]}" "$target_dir/debug/examples/bench_driver" run --smoke "${driver_args[@]}"
else
  cargo build --release --example bench_server --example bench_driver
  criterion_args=()
  if ((micro)); then
    cargo bench -p xtests --bench request_path --no-run
    "${micro_pin[@]}" cargo bench -p xtests --bench request_path
    criterion_args=(--criterion "$target_dir/criterion")
  fi
  "${pin[@]}" "$target_dir/release/examples/bench_driver" run "${criterion_args[@]}" "${driver_args[@]}"
fi
