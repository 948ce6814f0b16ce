#!/usr/bin/env bash
# The main job: replay every bundled trace under LRU, ARC, S3-FIFO, SIEVE (and offline-optimal
# Belady) at 1% and 5% of each trace's unique objects, and print a comparison table.
# Extra arguments go to `predis-fl compare` (e.g. --max-requests 1000000 --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/predis-fl compare "$@"
