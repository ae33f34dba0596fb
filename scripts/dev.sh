#!/usr/bin/env bash
# Install, migrate, seed demo data and serve the API on SQLite (./commerce.db).
# Prints an admin API key before the server starts.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
export DATABASE_URL=${DATABASE_URL:-sqlite+aiosqlite:///./commerce.db}
export INLINE_WORKER=${INLINE_WORKER:-true}
.venv/bin/python -m app.cli migrate
.venv/bin/python -m app.cli seed-demo
KEY=$(.venv/bin/python -m app.cli create-api-key --role admin --name "dev admin" | tail -n 1)
echo
echo "  API:       http://${HOST:-127.0.0.1}:${PORT:-8000}   docs: http://${HOST:-127.0.0.1}:${PORT:-8000}/docs"
echo "  admin key: $KEY"
echo "  try:       curl -H \"Authorization: Bearer $KEY\" http://${HOST:-127.0.0.1}:${PORT:-8000}/v1/channels"
echo
exec .venv/bin/uvicorn app.main:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
