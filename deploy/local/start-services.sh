#!/usr/bin/env bash
# Distributed mode on one machine: PostgreSQL and RabbitMQ on loopback, then the catalog, the valuation worker
# and the ledger worker as separate processes. Logs and process ids go to deploy/local/run/. Stop with stop-services.sh.
#   --valuation-workers N   start N valuation worker processes (ports 5081, 5090, 5091, ...); they share the shard queue
set -euo pipefail
cd "$(dirname "$0")/../.."

workers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --valuation-workers) workers=${2:?--valuation-workers needs a number}; shift 2 ;;
    --valuation-workers=*) workers=${1#*=}; shift ;;
    *) echo "unknown option $1 (supported: --valuation-workers N)" >&2; exit 2 ;;
  esac
done
case "$workers" in (''|*[!0-9]*|0) echo "--valuation-workers must be a positive number, got '$workers'" >&2; exit 2 ;; esac

./deploy/local/infra.sh

run=deploy/local/run
mkdir -p "$run"
export Bus__Transport=RabbitMq
export Catalog__Database=Postgres
export Storage__BlobRoot=${Storage__BlobRoot:-"$PWD/$run/blobs"}

dotnet build DataMarket.sln --configuration Release -v quiet -nologo

start() { # name, project, url
  local name=$1 project=$2 url=$3
  if [ -f "$run/$name.pid" ] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$run/$name.pid"))"; return
  fi
  nohup dotnet run --no-build --configuration Release --project "$project" -- --urls "$url" >"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
  for _ in $(seq 60); do
    if curl -fsS "$url/health" >/dev/null 2>&1; then echo "$name is up at $url (log: $run/$name.log)"; return; fi
    sleep 1
  done
  echo "$name did not become healthy; see $run/$name.log" >&2; exit 1
}

start catalog services/Catalog "${CATALOG_URL:-http://127.0.0.1:5080}"
start valuation-worker services/Valuation "${WORKER_URL:-http://127.0.0.1:5081}"
for i in $(seq 2 "$workers"); do
  start "valuation-worker-$i" services/Valuation "http://127.0.0.1:$((5088 + i))"
done
start ledger-worker services/Ledger "${LEDGER_URL:-http://127.0.0.1:5082}"
