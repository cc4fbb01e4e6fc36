#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: the stock `castor` binary loads a plugin (tests/plugins/upper.cpp,
# built with castor_add_plugin) named in its configuration and runs the
# plugin's DAG with its [engine.params] on the embedded broker; kcat reads
# what it wrote. SIGTERM stops it cleanly.
# Usage: plugin.sh PATH/TO/castor PATH/TO/upper.toml
castor=$1
config=$2
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$castor" run --config "$config" --addr-file "$work/addr" > "$work/run.log" 2>&1 &
run=$!
pids+=($run)
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
[ -s "$work/addr" ] || fail "castor did not start"
bootstrap=$(cat "$work/addr")
wait_for_log "$work/run.log" "caught up: live" 20 || fail "not live"
printf 'abc\nhello world\n' | kcat -P -b "$bootstrap" -t in
for _ in $(seq 50); do
  [ "$(kcat -C -b "$bootstrap" -t out -e -q | wc -l)" -ge 2 ] && break
  sleep 0.1
done
out=$(kcat -C -b "$bootstrap" -t out -e -q)
[ "$out" = "$(printf 'ABCABC!\nHELLO WORLDHELLO WORLD!')" ] || fail "out holds: $out"
kill -TERM "$run"
wait "$run" || fail "castor exited $? after SIGTERM"
grep -q "runs dag 'upper'" "$work/run.log" || fail "no start line"
echo "e2e plugin: ok"
