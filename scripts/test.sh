#!/usr/bin/env bash
# Runs the whole test suite in its own environment (.venv): lint, format, types, then unit,
# integration and end-to-end tests on SQLite and on PostgreSQL at 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

# PostgreSQL: start the local cluster when it is installed but not running.
if ! (command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q); then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do
      pg_isready -h 127.0.0.1 -p 5432 -q && break
      sleep 1
    done
  fi
fi
if command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; then
  export SCFED_REQUIRE_POSTGRES=1
elif [ -n "${CI:-}" ]; then
  echo "PostgreSQL is required in CI but 127.0.0.1:5432 does not answer" >&2
  exit 1
else
  echo "PostgreSQL is not running: its tests will be skipped" >&2
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The contracts (buf.yaml): lint, format, and no breaking change against the last release.
.venv/bin/buf lint
.venv/bin/buf format --diff --exit-code
.venv/bin/buf breaking --against proto/baseline/scfed-1.0.0.binpb
# One worker per core; a module's tests stay on one worker (their module fixtures, such as the
# compose smoke test's Docker engine, are made once).
exec .venv/bin/python -m pytest -n auto --dist loadfile --durations=25 "$@"
