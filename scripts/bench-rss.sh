#!/usr/bin/env bash
# Peak memory of `taskrace serve` during one distributed run of 1,000 tasks × 100 ms.
#   scripts/bench-rss.sh              # embedded Redis
#   REDIS_URL=redis://127.0.0.1:6379/9 scripts/bench-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/taskrace
go build -o "$bin" .
port=${PORT:-18090}
ADDR=127.0.0.1:$port "$bin" serve >/dev/null 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$bin"' EXIT
for _ in $(seq 100); do curl -fs "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
id=$(curl -fs -XPOST "127.0.0.1:$port/api/runs" -H 'content-type: application/json' \
  -d '{"mode":"distributed","tasks":1000,"delay_ms":100}' | sed -E 's/.*"id":"([0-9A-Z]+)".*/\1/')
# The event stream ends with the run: wait on it rather than poll.
curl -fsN "127.0.0.1:$port/api/runs/$id/events" >/dev/null
echo "run $id: serve VmHWM $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
