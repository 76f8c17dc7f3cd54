#!/usr/bin/env bash
# Fuzzes WeChat's answer parser and the return-to check with cargo-fuzz (libFuzzer, address
# sanitizer, debug assertions): the targets in fuzz/fuzz_targets/, results in RELIABILITY.md.
#
#   scripts/fuzz.sh                  # every target, 60 s each
#   scripts/fuzz.sh 600              # every target, 600 s each
#   scripts/fuzz.sh 600 return_to    # one target
#
# Needs a nightly toolchain (rustup; no download is attempted when one is installed) and
# cargo-fuzz (installed from crates.io when missing). Builds go to target/fuzz/; corpora grow in
# target/fuzz/corpus/<target>/, seeded from fuzz/seeds/<target>/; a crash is kept in
# fuzz/artifacts/<target>/ and ends the run with a non-zero status; the libFuzzer output of each
# target is in target/fuzz/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(parse_answers return_to)

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "installing a nightly toolchain (cargo-fuzz needs one)" >&2
  rustup toolchain install nightly --profile minimal
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

mkdir -p target/fuzz
for target in "${targets[@]}"; do
  corpus="target/fuzz/corpus/$target"
  mkdir -p "$corpus"
  echo "== $target: ${secs} s" >&2
  set +e
  cargo +nightly fuzz run --fuzz-dir fuzz --target-dir target/fuzz "$target" \
    "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    2>&1 | tee "target/fuzz/$target.log" |
    grep --line-buffered -E '^(#[0-9]+ +(DONE|INITED)|stat::|==[0-9]+==|SUMMARY|thread)'
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    echo "$target: libFuzzer exited with $status (see target/fuzz/$target.log, fuzz/artifacts/$target/)" >&2
    exit "$status"
  fi
done
