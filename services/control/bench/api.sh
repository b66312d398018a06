#!/usr/bin/env bash
# Load bench of control's HTTP API (issue 6): wrk on loopback against a
# control built from this tree, over a private database seeded with runs.
#
#   GET  /v1/runs?page_size=20                       (viewer token)
#   POST /v1/pipelines/preventive_maintenance:trigger (admin token, TRIGGER_RATE_LIMIT=0)
#
# Needs a PostgreSQL superuser URL in CMMSFLOW_TEST_DATABASE_URL (as given by
# deploy/local/cmd/testenv; `make bench` runs it that way); without one the
# script re-runs itself under testenv. Pub/Sub: PUBSUB_EMULATOR_HOST points at
# a dead loopback port, so nothing can reach Google; the trigger's publish
# fails locally and its outbox rows stay (the API call does not wait for it).
#
# Settings (environment): BENCH_DURATION (30s), BENCH_THREADS (2),
# BENCH_CONNECTIONS (16), BENCH_RUNS (5000 seeded runs), BENCH_POOL_MAX_CONNS
# (empty: pgx's default, max(4, cores)).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$root"
here=services/control/bench

if [ -z "${CMMSFLOW_TEST_DATABASE_URL:-}" ]; then
  go build -o .local/bin/testenv ./deploy/local/cmd/testenv
  exec .local/bin/testenv -dir .local/bench-pg -- bash "$here/api.sh" "$@"
fi

duration=${BENCH_DURATION:-30s}
threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNECTIONS:-16}
nruns=${BENCH_RUNS:-5000}

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package wrk)"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk ||
    { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
fi

# free_port prints a loopback TCP port nothing listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    if ! ss -Htln "sport = :$p" | grep -q .; then echo "$p"; return; fi
  done
}

admin_url=$CMMSFLOW_TEST_DATABASE_URL
db=control_bench_$$
db_url=$(sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$db#" <<<"$admin_url")
[ -n "${BENCH_POOL_MAX_CONNS:-}" ] && db_url+=$([[ $db_url == *\?* ]] && echo '&' || echo '?')pool_max_conns=$BENCH_POOL_MAX_CONNS
port=$(free_port)
dead=$(free_port)
base=http://127.0.0.1:$port
log=.local/bench-control.log
pid=

cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  psql "$admin_url" -qXc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "bench: building control"
mkdir -p .local/bin
CGO_ENABLED=0 go build -trimpath -o .local/bin/control-bench ./services/control/cmd/control

# Tokens: control keeps only their SHA-256 (API_TOKENS "<sha256>:<role>:<name>").
admin_tok=cmf_$(openssl rand -hex 24)
viewer_tok=cmf_$(openssl rand -hex 24)
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
tokens="$(sha "$admin_tok"):admin:bench-admin,$(sha "$viewer_tok"):viewer:bench-viewer"

psql "$admin_url" -qXv ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null

echo "bench: starting control on $base (log in $log)"
env -i PATH="$PATH" HOME="$HOME" \
  DATABASE_URL="$db_url" HOST=127.0.0.1 PORT="$port" \
  GOOGLE_CLOUD_PROJECT=cmmsflow-bench PUBSUB_EMULATOR_HOST="127.0.0.1:$dead" \
  API_TOKENS="$tokens" TRIGGER_RATE_LIMIT=0 \
  LOG_FORMAT=text LOG_LEVEL=warn \
  .local/bin/control-bench >"$log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "bench: control exited:"; cat "$log"; exit 1; }
  sleep 0.1
done
curl -fs "$base/readyz" >/dev/null || { echo "bench: control not ready after 60 s"; cat "$log"; exit 1; }

echo "bench: seeding $nruns finished runs with their steps"
# The services' search_path (libs/db): the automation tables are in cmmsflow.
export PGOPTIONS="-c search_path=cmms,cmmsflow"
psql "$db_url" -qXv ON_ERROR_STOP=1 -v n="$nruns" >/dev/null <<'SQL'
SET TIME ZONE 'UTC';
WITH r AS (
  SELECT i, (ARRAY['etl_ml_training', 'preventive_maintenance', 'weekly_kpi_report'])[1 + i % 3] AS pipeline,
         date_trunc('hour', now()) - i * interval '1 hour' AS t
  FROM generate_series(1, :n) AS i
)
INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at, started_at, ended_at, error)
SELECT 'scheduled__' || to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'), pipeline,
       CASE WHEN i % 17 = 0 THEN 'failed' ELSE 'success' END, 'scheduled', t, t,
       t + interval '1 second', t + (30 + i % 300) * interval '1 second',
       CASE WHEN i % 17 = 0 THEN 'notifier: smtp: connection refused' ELSE '' END
FROM r;
INSERT INTO steps (run_id, step, position, state, attempts, started_at, ended_at, summary, figures)
SELECT r.run_id, s.step, s.position, 'success', 1, r.started_at, r.ended_at, 'bench', '{"rows": 1500}'
FROM runs r
JOIN (VALUES ('etl_ml_training', 'extractor', 0), ('etl_ml_training', 'featurejob', 1),
             ('etl_ml_training', 'trainer', 2), ('etl_ml_training', 'deployer', 3),
             ('etl_ml_training', 'notifier', 4), ('preventive_maintenance', 'pmgen', 0),
             ('preventive_maintenance', 'notifier', 1), ('weekly_kpi_report', 'reporter', 0),
             ('weekly_kpi_report', 'notifier', 1)) AS s (pipeline, step, position) USING (pipeline);
ANALYZE runs;
ANALYZE steps;
SQL

# Smoke: both calls answer 200 before they are timed.
code=$(curl -s -o /tmp/bench-runs.$$ -w '%{http_code}' -H "Authorization: Bearer $viewer_tok" "$base/v1/runs?page_size=20")
[ "$code" = 200 ] && grep -q '"next_page_token"' /tmp/bench-runs.$$ || { echo "bench: GET /v1/runs answered $code"; cat /tmp/bench-runs.$$; exit 1; }
rm -f /tmp/bench-runs.$$
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' \
  -H "Authorization: Bearer $admin_tok" "$base/v1/pipelines/preventive_maintenance:trigger")
[ "$code" = 200 ] || { echo "bench: trigger answered $code"; exit 1; }

# cpu_ticks prints the CPU time (clock ticks, user+system) pid has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# bench NAME METHOD TOKEN PATH runs wrk and appends control's CPU use (cores,
# averaged over the run) to wrk's RESULT line.
bench() {
  local name=$1 method=$2 token=$3 path=$4 t0 c0 c1 t1
  echo
  echo "== wrk -t$threads -c$conns -d$duration --latency -s $here/api.lua ($method) $base$path"
  t0=$(date +%s.%N) c0=$(cpu_ticks "$pid")
  BENCH_TOKEN=$token BENCH_METHOD=$method BENCH_NAME=$name \
    wrk -t"$threads" -c"$conns" -d"$duration" --latency -s "$here/api.lua" "$base$path" >".local/bench-api-$name.txt"
  c1=$(cpu_ticks "$pid") t1=$(date +%s.%N)
  sed -i "s/^RESULT .*/& control_cpu_cores=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz / (e - s)}')/" \
    ".local/bench-api-$name.txt"
  cat ".local/bench-api-$name.txt"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
runs_before=$(psql "$db_url" -tAXc "SELECT count(*) FROM runs")
bench get_runs GET "$viewer_tok" "/v1/runs?page_size=20"
bench trigger POST "$admin_tok" "/v1/pipelines/preventive_maintenance:trigger"

queued=$(psql "$db_url" -tAXc "SELECT count(*) - $runs_before FROM runs")
pending=$(psql "$db_url" -tAXc "SELECT count(*) FROM outbox WHERE published_at IS NULL")
remote=$(ss -HtnpO state established 2>/dev/null | grep "pid=$pid," | awk '{print $4}' |
  grep -Ev '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):' || true)
echo
echo "== summary"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/ {print $2}') GiB;" \
  "$(go version | cut -d' ' -f3); PostgreSQL $(psql "$db_url" -tAXc 'SHOW server_version' | cut -d' ' -f1);" \
  "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "load average before the runs: $load_before (anything else busy on the machine skews the figures)"
echo "seeded runs: $nruns; runs queued by the POST bench: $queued; outbox rows left unpublished: $pending"
echo "control's connections to anything but loopback: ${remote:-none}"
grep -h '^RESULT' .local/bench-api-get_runs.txt .local/bench-api-trigger.txt
