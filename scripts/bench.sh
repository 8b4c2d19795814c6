#!/usr/bin/env bash
# Benchmark harborpy side by side with the Go reference registry (Debian's docker-registry),
# back to back on this machine, with the shared harness in ../shared/bench.
#   bash scripts/bench.sh [OUT_DIR]        (RUNS=3 by default; about 20 minutes)
# Then: python3 scripts/bench_table.py OUT_DIR > docs/performance-table.md (see docs/performance.md)
# Needs: docker-registry nginx-light skopeo wrk apache2-utils curl, PostgreSQL on 127.0.0.1.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=${BENCH_DIR:-../shared/bench}
OUT=$(mkdir -p "${1:-/tmp/harborpy-bench}" && cd "${1:-/tmp/harborpy-bench}" && pwd)
RUNS=${RUNS:-3}
H=${HARBORPY:-.venv/bin/harborpy}
HP=
# harborpy asks for credentials: bench.py logs in as the admin and uses bearer tokens,
# as docker does (the reference registry runs without auth, as registry:2 usually does).
export HARBORPY_ADMIN_PASSWORD=${HARBORPY_ADMIN_PASSWORD:-bench-admin-password}
HP_AUTH=(--user admin --password "$HARBORPY_ADMIN_PASSWORD")
start_hp() {  # PORT DATA [VAR=value...]
  local port=$1 data=$2; shift 2
  rm -rf "$data"; mkdir -p "$data"
  env "$@" HARBORPY_DATA="$data" "$H" serve --listen "127.0.0.1:$port" --data "$data" > "$data.log" 2>&1 &
  HP=$!
  for _ in $(seq 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then
      # bench.py pushes to bench/...: its project must exist
      env "$@" HARBORPY_DATA="$data" "$H" project create bench >/dev/null && return 0
    fi
    sleep 0.2
  done
  echo "harborpy did not start:"; cat "$data.log"; return 1
}
stop_hp() { kill "$HP"; wait "$HP" 2>/dev/null; }
fresh_db() { psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS hp_bench" -c "CREATE DATABASE hp_bench" 2>/dev/null; }
bench() { python3 "$B/bench.py" --tmpdir "$OUT" "$@"; }
trap 'kill $HP 2>/dev/null' EXIT

date -u +"%Y-%m-%d %H:%M UTC" > "$OUT/date"
echo "== reference (docker-registry, nginx, machine limits)"
bash "$B/reference.sh" "$RUNS" > "$OUT/reference.txt" 2> "$OUT/reference.err"
echo "== harborpy embedded default (SQLite, filesystem, fsync on)"
start_hp 5070 "$OUT/hp-embedded" && {
  bench --url http://127.0.0.1:5070 "${HP_AUTH[@]}" --pid "$HP" --runs "$RUNS" > "$OUT/hp-embedded.txt" 2> "$OUT/hp-embedded.err"; stop_hp; }
echo "== harborpy on PostgreSQL (fsync on)"
fresh_db
start_hp 5071 "$OUT/hp-pg" DATABASE_URL=postgres://postgres@127.0.0.1/hp_bench && {
  bench --url http://127.0.0.1:5071 "${HP_AUTH[@]}" --pid "$HP" --runs "$RUNS" > "$OUT/hp-pg.txt" 2> "$OUT/hp-pg.err"; stop_hp; }
echo "== harborpy on PostgreSQL, fsync off (the reference's durability)"
fresh_db
start_hp 5072 "$OUT/hp-nofsync" DATABASE_URL=postgres://postgres@127.0.0.1/hp_bench HARBORPY_STORAGE_FSYNC=false && {
  bench --url http://127.0.0.1:5072 "${HP_AUTH[@]}" --pid "$HP" --runs "$RUNS" --only upload,blob_get,push_big,pull_big,push_small \
    > "$OUT/hp-nofsync.txt" 2> "$OUT/hp-nofsync.err"; stop_hp; }
echo "== 2 GiB blob: reference"
W=$(mktemp -d "$OUT/ref2g-XXXX")
printf 'version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp: {addr: "127.0.0.1:5073"}\n' "$W/registry" > "$W/r.yml"
docker-registry serve "$W/r.yml" > "$W/log" 2>&1 & RP=$!
sleep 1
bench --url http://127.0.0.1:5073 --pid "$RP" --only upload,blob_get --blob-size 2G > "$OUT/ref-2g.txt" 2> "$OUT/ref-2g.err"
kill "$RP"; wait "$RP" 2>/dev/null; rm -rf "$W"
echo "== 2 GiB blob: harborpy embedded"
start_hp 5074 "$OUT/hp-2g" && {
  bench --url http://127.0.0.1:5074 "${HP_AUTH[@]}" --pid "$HP" --only upload,blob_get --blob-size 2G > "$OUT/hp-2g.txt" 2> "$OUT/hp-2g.err"; stop_hp; }
rm -rf "$OUT/hp-embedded" "$OUT/hp-pg" "$OUT/hp-nofsync" "$OUT/hp-2g"
echo "== done: $OUT"
