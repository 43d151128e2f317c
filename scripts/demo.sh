#!/usr/bin/env bash
# Runs the federation's main job end to end on the embedded default (SQLite): five service
# processes, a synthetic world, bookings through the SIB's agency edge, a summary at the end.
# Extra arguments go to `scfed demo` (for example --json, --bookings 500, --database-url ...).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec .venv/bin/scfed demo --bookings "${BOOKINGS:-200}" --seed "${SEED:-1}" "$@"
