# SPDX-License-Identifier: Apache-2.0
# Shared by the end-to-end tests (sourced): a work folder, cleanup of the
# processes started, failure reports with the logs, and a development broker.
set -euo pipefail
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do echo "== $f"; tail -40 "$f"; done >&2
  exit 1
}

# start_broker CASTOR TOPIC... : runs `castor broker` with the topics
# (NAME:PARTITIONS) and sets $bootstrap.
start_broker() {
  local castor=$1
  shift
  local args=()
  for t in "$@"; do args+=(--topic "$t"); done
  "$castor" broker "${args[@]}" --addr-file "$work/addr" > "$work/broker.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
  [ -s "$work/addr" ] || fail "broker did not start"
  bootstrap=$(cat "$work/addr")
}
