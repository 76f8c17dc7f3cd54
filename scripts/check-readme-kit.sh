#!/usr/bin/env bash
# The README's "Testing your app" shows examples/consumer/tests/shop.rs verbatim: fails when they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
shown=$(awk '/^## Testing your app/{s=1} s&&/^```rust/{c=1;next} c&&/^```/{exit} c' README.md)
if ! diff <(printf '%s\n' "$shown") examples/consumer/tests/shop.rs; then
  echo "README.md's 'Testing your app' differs from examples/consumer/tests/shop.rs" >&2
  exit 1
fi
