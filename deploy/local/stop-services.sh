#!/usr/bin/env bash
# Stops the services started by start-services.sh (PostgreSQL and RabbitMQ keep running).
set -euo pipefail
cd "$(dirname "$0")/run" 2>/dev/null || exit 0
for pidfile in *.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  # dotnet run starts the service as a child process; stop both.
  pkill -P "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "stopped ${pidfile%.pid}"
done
