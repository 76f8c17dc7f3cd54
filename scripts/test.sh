#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (real servers + the WeChat emulator), doctests and
# the browser test and the Redis scale-out tests. Installs what they need first, from Debian's
# packages, when it is missing: chromium, chromium-driver, redis-server and a CJK font.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The screenshots of the crate's Chinese pages need a CJK font.
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing ${missing[*]} for the tests" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The root package and xtests/ (property tests, the criterion bench run once, the pages example).
cargo test --workspace --all-features "$@"
