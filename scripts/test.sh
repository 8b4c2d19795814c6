#!/usr/bin/env bash
# The whole test suite: `bash scripts/test.sh [pytest args]`.
# On a fresh Debian 12 / Ubuntu machine (as root, or with sudo for apt) it installs what the
# tests need (Debian packages, the virtualenv), starts the services that are not running
# (PostgreSQL, Redis, an S3 server on loopback), runs the linters and then pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
log() { printf '[test %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

# 1. Debian packages: install only the missing ones.
packages=(skopeo podman docker.io docker-registry docker-compose uidmap gcc libldap2-dev libsasl2-dev slapd ldap-utils postgresql redis-server curl strace chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. PostgreSQL and Redis: use the running ones, start them where they are not running.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no
fi

# 3. The virtualenv: kept outside the clone, keyed by the dependency list, reused between runs.
key=$( (cat pyproject.toml; python3 --version) | sha256sum | cut -c1-16)
VENV=${HARBORPY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/harborpy/venv-$key}
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  log "creating $VENV"
  rm -rf "$VENV"; python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[test]'
  touch "$VENV/.complete"
fi
# Point the venv's project install at this checkout (cheap: dependencies are there).
"$VENV/bin/pip" install -q --no-deps -e . 2>&1 | grep -v -i warning || true

# 4. Static checks.
log "ruff, mypy, import contracts"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy" .
"$VENV/bin/lint-imports" --no-cache >/dev/null

# 5. Throwaway services on loopback, removed on any exit.
RUN=$(mktemp -d); PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT; trap 'exit 143' INT TERM
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # PORT PID NAME
  local i
  for i in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break; sleep 0.1
  done
  log "$3 is not listening on $1"; cat "$RUN/$3.log" >&2; return 1
}
port=$(free_port)
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "$RUN/moto.log" 2>&1 &
PIDS+=($!); wait_port "$port" $! moto
export S3_ENDPOINT=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_DEFAULT_REGION=us-east-1

# 6. pytest; it goes first in PIDS so that on exit it stops before the services it uses.
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/harborpy}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/15}
export HARBORPY_DATA=$RUN/data
log "pytest"
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@" & PIDS=("$!" "${PIDS[@]}")
rc=0; wait "${PIDS[0]}" || rc=$?
case $rc in
  0) log "tests passed" ;;
  5) log "no tests collected: failing on purpose" ;;
  *) log "pytest exit $rc" ;;
esac
exit "$rc"
