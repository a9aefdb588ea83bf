#!/usr/bin/env bash
# Installs (Debian packages) and starts PostgreSQL 15 and RabbitMQ on loopback when they are
# missing or stopped, then creates the DataMarket role and database. Safe to run again: every step checks first.
set -euo pipefail

PG_VERSION=15
DB_USER=${DATAMARKET_DB_USER:-datamarket}
DB_PASSWORD=${DATAMARKET_DB_PASSWORD:-datamarket}
DB_NAME=${DATAMARKET_DB_NAME:-datamarket}

log() { printf '[infra] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 && [ -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ] || missing+=(postgresql)
command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
# Independent references for the torch tests (never part of the product): Debian's PyTorch and scikit-learn.
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || missing+=(python3-torch)
/usr/bin/python3 -c 'import sklearn' >/dev/null 2>&1 || missing+=(python3-sklearn)
# The browser tests drive Debian's Chromium by path (Playwright's own browser download cannot work offline).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

wait_for() { # description, attempts, command...
  local what=$1 attempts=$2; shift 2
  for _ in $(seq "$attempts"); do
    if "$@" >/dev/null 2>&1; then log "$what is up"; return 0; fi
    sleep 1
  done
  log "$what did not come up"; return 1
}

# PostgreSQL
if ! as_root pg_lsclusters -h 2>/dev/null | grep -q "^$PG_VERSION main"; then
  as_root pg_createcluster "$PG_VERSION" main >/dev/null
fi
if ! as_root pg_lsclusters -h | grep -q "^$PG_VERSION main .* online"; then
  log "starting PostgreSQL $PG_VERSION"
  # Another process may be starting it at the same moment; readiness below is what counts.
  as_root pg_ctlcluster "$PG_VERSION" main start || log "pg_ctlcluster start returned non-zero; waiting for readiness"
fi
wait_for PostgreSQL 60 pg_isready -h 127.0.0.1 -p 5432

psql_admin() { as_root su postgres -c "psql -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]; then
  log "creating role $DB_USER"
  psql_admin "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD' CREATEDB"
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
  log "creating database $DB_NAME"
  psql_admin "CREATE DATABASE $DB_NAME OWNER $DB_USER"
fi

# A second, throw-away cluster on port 5433 that fault tests may restart without disturbing anything else.
FAULTS_PORT=${DATAMARKET_FAULTS_PORT:-5433}
if ! as_root pg_lsclusters -h | grep -q "^$PG_VERSION faults "; then
  log "creating PostgreSQL cluster 'faults' on port $FAULTS_PORT"
  as_root pg_createcluster "$PG_VERSION" faults --port "$FAULTS_PORT" >/dev/null
fi
if ! as_root pg_lsclusters -h | grep -q "^$PG_VERSION faults .* online"; then
  as_root pg_ctlcluster "$PG_VERSION" faults start || log "pg_ctlcluster faults start returned non-zero; waiting for readiness"
fi
wait_for "PostgreSQL (faults cluster)" 60 pg_isready -h 127.0.0.1 -p "$FAULTS_PORT"
psql_faults() { as_root su postgres -c "psql -p $FAULTS_PORT -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
if [ "$(psql_faults "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]; then
  psql_faults "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD' CREATEDB"
fi
if [ "$(psql_faults "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
  psql_faults "CREATE DATABASE $DB_NAME OWNER $DB_USER"
fi

# RabbitMQ
if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached || log "rabbitmq-server -detached returned non-zero; waiting for readiness"
fi
wait_for RabbitMQ 120 as_root rabbitmqctl -q await_startup
# The guest user may only connect over loopback, which is all we use.
wait_for "RabbitMQ AMQP port" 30 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672'
# A second virtual host for tests that run a market of their own beside the shared one: RabbitMQ hands a published
# event to every queue bound to its type within a virtual host, so two markets in one would take each other's work.
ISOLATED_VHOST=${DATAMARKET_ISOLATED_VHOST:-datamarket-isolated}
if ! as_root rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "$ISOLATED_VHOST"; then
  as_root rabbitmqctl -q add_vhost "$ISOLATED_VHOST" >/dev/null
fi
as_root rabbitmqctl -q set_permissions -p "$ISOLATED_VHOST" guest '.*' '.*' '.*' >/dev/null
