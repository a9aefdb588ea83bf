#!/usr/bin/env bash
# Distributed mode on one machine: PostgreSQL and RabbitMQ on loopback, then the catalog, the valuation worker(s),
# the ledger worker, the settlement service and the gateway (the only address users call) as separate processes. Logs and process ids go to
# deploy/local/run/. Stop with stop-services.sh.
#   --valuation-workers N   start N valuation worker processes (ports 5081, 5100, 5101, ...); they share the shard queue
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
export Gateway__Database=Postgres
# The gateway signs a short-lived token per forwarded request; the services check it with the same key.
if [ -z "${Auth__SigningKey:-}" ]; then
  [ -f "$run/signing-key" ] || (umask 077; head -c 32 /dev/urandom | base64 >"$run/signing-key")
  Auth__SigningKey=$(cat "$run/signing-key")
fi
export Auth__SigningKey
export Gateway__CatalogAddress=${CATALOG_URL:-http://127.0.0.1:5090}
export Gateway__SettlementAddress=${SETTLEMENT_URL:-http://127.0.0.1:5083}
# Settlement keeps its streams in the 'settlement' schema; its Quartz runs share one clustered job store, so any
# number of settlement processes fire each scheduled run once.
export Settlement__Store=Postgres
export Settlement__Scheduler__PostgresConnectionString=${Settlement__Scheduler__PostgresConnectionString:-"Host=127.0.0.1;Port=5432;Username=datamarket;Password=datamarket;Database=datamarket"}
# The gateway listens on plain HTTP on loopback here: cookies marked Secure would never come back (and antiforgery
# refuses to run), so they are Secure only on HTTPS requests. Behind TLS, leave this unset (true).
export Gateway__SecureCookies=${GATEWAY_SECURE_COOKIES:-false}

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

start catalog services/Catalog "${CATALOG_URL:-http://127.0.0.1:5090}"
start valuation-worker services/Valuation "${WORKER_URL:-http://127.0.0.1:5081}"
for i in $(seq 2 "$workers"); do
  start "valuation-worker-$i" services/Valuation "http://127.0.0.1:$((5098 + i))"
done
start ledger-worker services/Ledger "${LEDGER_URL:-http://127.0.0.1:5082}"
start settlement services/Settlement "${SETTLEMENT_URL:-http://127.0.0.1:5083}"
start gateway services/Gateway "${GATEWAY_URL:-http://127.0.0.1:5080}"
echo "Make an account: dotnet run --project src/DataMarket.Cli -- accounts create --role buyer --name NAME --postgres 'Host=127.0.0.1;Username=datamarket;Password=datamarket;Database=datamarket'"
