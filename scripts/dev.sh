#!/usr/bin/env bash
# Install, migrate, seed demo data and serve the API on SQLite (./commerce.db).
# Prints an admin API key before the server starts. It listens on HOST:PORT (127.0.0.1:8000);
# a port in use stops it at once, before anything else: PORT=8001 bash scripts/dev.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

# A port in use stops it at once, before installing anything or printing a key (the serve
# command below binds first too, so a port taken meanwhile cannot hang it either).
CHECK_PORT=$(cat <<'PYEOF'
import socket, sys
host, port = sys.argv[1:3]
if not port.isdigit() or not 0 < int(port) < 65536:
    sys.exit(f"scripts/dev.sh: PORT must be a port number (1-65535), not {port!r}.")
with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sys.exit(f"scripts/dev.sh: cannot listen on {host}:{port}: {exc.strerror or exc}.\n"
                 f"Is the API (or something else) already running there? Stop it, or use another port:\n"
                 f"    PORT=8001 bash scripts/dev.sh")
PYEOF
)
"$PY" -c "$CHECK_PORT" "$HOST" "$PORT"

[ -x .venv/bin/python ] || "$PY" -m venv .venv
# (re)install when pyproject.toml is newer than the last install
if [ ! -f .venv/.dev-installed ] || [ pyproject.toml -nt .venv/.dev-installed ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e .
  touch .venv/.dev-installed
fi
export DATABASE_URL=${DATABASE_URL:-sqlite+aiosqlite:///./commerce.db}
export INLINE_WORKER=${INLINE_WORKER:-true}
export WEBHOOK_ALLOW_PRIVATE_URLS=${WEBHOOK_ALLOW_PRIVATE_URLS:-true}  # webhook receivers on this machine
.venv/bin/python -m app.cli migrate
.venv/bin/python -m app.cli seed-demo
KEY=$(.venv/bin/python -m app.cli create-api-key --role admin --name "dev admin" | tail -n 1)
echo
echo "  API:       http://$HOST:$PORT"
echo "  docs:      http://$HOST:$PORT/docs (Authorize with the key, then Try it out), http://$HOST:$PORT/redoc"
echo "  admin key: $KEY"
echo "  try:       curl -H \"Authorization: Bearer $KEY\" http://$HOST:$PORT/v1/channels"
echo
exec .venv/bin/python -m app.cli serve --host "$HOST" --port "$PORT"
