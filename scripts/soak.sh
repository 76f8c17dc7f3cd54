#!/usr/bin/env bash
# The soak under faults (tests/soak.rs): many browsers sign in and browse against the WeChat
# emulator while faults are injected on every endpoint; figures in RELIABILITY.md.
#
#   scripts/soak.sh                 # CI's size: 200 browsers, 15 s of faults (about 20 s)
#   scripts/soak.sh --long          # 200 browsers, 120 s of faults, refresh tokens of 30 s
#   SOAK_BROWSERS=400 SOAK_SECONDS=300 scripts/soak.sh   # any SOAK_* setting of tests/soak.rs
#
# The report is printed and written to target/soak-report.md. Other arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
for arg in "$@"; do
  case "$arg" in
    --long)
      export SOAK_SECONDS="${SOAK_SECONDS:-120}"
      export SOAK_REFRESH_TTL="${SOAK_REFRESH_TTL:-30}"
      ;;
    -h | --help)
      sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) args+=("$arg") ;;
  esac
done

cargo test --all-features "${args[@]}" --test soak -- --nocapture
