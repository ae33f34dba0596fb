#!/usr/bin/env bash
# Install and run the whole test suite, once on SQLite and once on PostgreSQL.
# Starts the local PostgreSQL cluster (or installs it) when it is not running.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

PG_URL=${TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432}
pg_up() { .venv/bin/python - "$PG_URL" <<'PYEOF'
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1] + "/postgres", timeout=3)
    await conn.close()
try:
    asyncio.run(main())
except Exception:
    sys.exit(1)
PYEOF
}
if ! pg_up; then
  echo "PostgreSQL is not answering on $PG_URL; starting it"
  if ! ls /etc/postgresql >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || true
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL could not be started" >&2; exit 1; }
fi

status=0
echo "=== test suite on SQLite ==="
TEST_DB=sqlite .venv/bin/python -m pytest "$@" || status=$?
echo "=== test suite on PostgreSQL ==="
TEST_DB=postgres TEST_PG_URL="$PG_URL" .venv/bin/python -m pytest "$@" || status=$?
exit $status
