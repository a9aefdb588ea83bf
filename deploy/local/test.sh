#!/usr/bin/env bash
# The test command: installs and starts what the tests need (PostgreSQL, RabbitMQ, python3-torch) when missing,
# then runs every test project in the solution and prints one summary line.
set -euo pipefail
cd "$(dirname "$0")/../.."

./deploy/local/infra.sh

export DATAMARKET_TEST_POSTGRES=${DATAMARKET_TEST_POSTGRES:-"Host=127.0.0.1;Port=5432;Username=datamarket;Password=datamarket;Database=datamarket"}
# The fault tests' own PostgreSQL (created by infra.sh), which they restart mid-burst.
export DATAMARKET_TEST_POSTGRES_RESTARTABLE=${DATAMARKET_TEST_POSTGRES_RESTARTABLE:-"Host=127.0.0.1;Port=5433;Username=datamarket;Password=datamarket;Database=datamarket"}
export DATAMARKET_TEST_POSTGRES_RESTART=${DATAMARKET_TEST_POSTGRES_RESTART:-"pg_ctlcluster 15 faults restart -m fast"}
export DATAMARKET_TEST_RABBITMQ=${DATAMARKET_TEST_RABBITMQ:-"amqp://guest:guest@127.0.0.1:5672/"}
# A virtual host of its own for the scale-out test's worker processes (created by infra.sh).
export DATAMARKET_TEST_RABBITMQ_ISOLATED=${DATAMARKET_TEST_RABBITMQ_ISOLATED:-"amqp://guest:guest@127.0.0.1:5672/datamarket-isolated"}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

log=$(mktemp)
status=0
dotnet test DataMarket.sln --configuration Release "$@" 2>&1 | tee "$log" || status=$?

# One closing line over all test assemblies, e.g. "tests: 120 passed, 0 failed, 0 skipped".
awk '
  /(Passed|Failed)! +- +Failed: / {
    for (i = 1; i <= NF; i++) {
      if ($i == "Failed:")  { gsub(",", "", $(i+1)); failed  += $(i+1) }
      if ($i == "Passed:")  { gsub(",", "", $(i+1)); passed  += $(i+1) }
      if ($i == "Skipped:") { gsub(",", "", $(i+1)); skipped += $(i+1) }
    }
  }
  END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped }
' "$log"
rm -f "$log"
exit "$status"
