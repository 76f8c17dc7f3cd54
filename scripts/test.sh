#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (real servers + the WeChat emulator), doctests and
# the browser test. Installs what the browser test needs first, from Debian's packages, when it is
# missing: chromium and chromium-driver.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing ${missing[*]} for the browser test" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo test --all-features "$@"
