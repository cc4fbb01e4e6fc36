#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A backtest end to end on a development broker: `castor broker`, one hour
# of trades and prices from examples/data written with their timestamps by
# `castor produce`, then config/backtest.toml replays 09:30-10:00 New York
# through `positions` and exits by itself; prints the last marks and the
# run report's summary.
# Usage: examples/backtest.sh [PATH/TO/castor]   (default build/app/castor)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
castor=${1:-$here/../build/app/castor}
work=$(mktemp -d)
broker=""
cleanup() {
  [ -n "$broker" ] && kill "$broker" 2> /dev/null || true
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$castor" broker --topic trades:2 --topic prices:2 --topic positions:1 --topic marks:1 \
  --addr-file "$work/addr" > "$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
bootstrap=$(cat "$work/addr")
"$castor" produce -b "$bootstrap" -t trades -f "$here/data/trades.tsv"
"$castor" produce -b "$bootstrap" -t prices -f "$here/data/prices.tsv"
CASTOR_KAFKA_BOOTSTRAP_SERVERS=$bootstrap timeout -s KILL 120 \
  "$castor" run --config "$here/../config/backtest.toml" --report "$work/report.json" \
  > "$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
grep "pipeline: stopped" "$work/run.log"
echo "last marks:"
kcat -C -b "$bootstrap" -t marks -e -q -f '%s\n' | tail -3
jq -r '"report: exit \(.exit.code) (\(.exit.reason)), \(.messages.released) messages released, \(.messages.beyond_stop) past the stop, \(.cycles) cycles, \(.sinks | map("\(.topic) \(.delivered)") | join(", ")) delivered, \(.wall_seconds | . * 1000 | floor) ms"' \
  "$work/report.json"
[ "$(jq .exit.code "$work/report.json")" = 0 ]
last=$(kcat -C -b "$bootstrap" -t marks -e -q -f '%s\n' | jq -r .time | sort | tail -1)
echo "last mark at $last"
[ "$last" = "2026-01-05T14:59:00.000Z" ]
