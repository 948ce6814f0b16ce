#!/usr/bin/env bash
# The main job: a federated simulation of the `default` scenario (ten customers played by the
# bundled real traces, sample-level DP-SGD, local Flower simulation engine) that writes
# report.json, report.md and PNG plots into runs/simulate-default-<time>/ (or the --out you pass).
# Extra arguments go to `predis-fl simulate` (e.g. --scenario smoke --rounds 1, --no-dp).
# The replay comparison of the eviction policies is `.venv/bin/predis-fl compare`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/predis-fl simulate --scenario default "$@"
