#!/usr/bin/env bash
# Lint, type-check and run the test suite. `--quick` skips tests marked slow; any other
# arguments go to pytest (e.g. -k replay).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

marker=()
args=()
for a in "$@"; do
    if [ "$a" = "--quick" ]; then marker=(-m "not slow"); else args+=("$a"); fi
done

echo "== ruff" >&2
.venv/bin/ruff check .
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
exec .venv/bin/python -m pytest "${marker[@]}" "${args[@]}"
