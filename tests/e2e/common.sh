# SPDX-License-Identifier: Apache-2.0
# Shared by the end-to-end tests (sourced): a work folder, cleanup of the
# processes started, failure reports with the logs, and a development broker.
set -euo pipefail
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do echo "== $f"; tail -40 "$f"; done >&2
  exit 1
}

# start_broker CASTOR TOPIC... : runs `castor broker` with the topics
# (NAME:PARTITIONS) and sets $bootstrap. $BROKER_ARGS adds options.
start_broker() {
  local castor=$1
  shift
  local args=(${BROKER_ARGS:-})
  for t in "$@"; do args+=(--topic "$t"); done
  rm -f "$work/addr"
  "$castor" broker "${args[@]}" --addr-file "$work/addr" > "$work/broker.log" 2>&1 &
  local broker=$!
  pids+=($broker)
  # (A loaded machine running tests in parallel may take seconds.)
  for _ in $(seq 300); do
    [ -s "$work/addr" ] && break
    kill -0 "$broker" 2> /dev/null || fail "broker exited before it started"
    sleep 0.1
  done
  [ -s "$work/addr" ] || fail "broker did not start within 30 s"
  bootstrap=$(cat "$work/addr")
}

# wait_for_log FILE REGEX SECONDS: returns once FILE has a line matching
# REGEX (extended), or fails (status 1) after SECONDS. Polls every 5 ms, so
# a test can act on a log line within a few ms of it.
wait_for_log() {
  local deadline=$((SECONDS + $3))
  until grep -qE "$2" "$1" 2> /dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.005
  done
}
