#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: `castor broker` and `castor run` as separate processes; input
# produced and output read with kcat; SIGTERM mid-way exits 0 after
# delivering everything released. Usage: wordcount.sh PATH/TO/castor
castor=$1
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start_broker "$castor" words:3 counts:1

# History first: 300 lines, "alpha beta" each, and "gamma" in every third.
for i in $(seq 300); do
  if (( i % 3 == 0 )); then echo "alpha beta gamma"; else echo "alpha beta"; fi
done | kcat -P -b "$bootstrap" -t words -p -1

cat > "$work/run.toml" <<TOML
[kafka]
bootstrap_servers = "$bootstrap"
[kafka.consumer]
"fetch.wait.max.ms" = "10"
[engine]
dag = "wordcount"
batch_size = 7
[[sources]]
name = "words"
topic = "words"
start = "earliest"
[[sinks]]
name = "counts"
topic = "counts"
TOML
"$castor" run --config "$work/run.toml" > "$work/run.log" 2>&1 &
run=$!
pids+=($run)
latest() { # word -> latest count in `counts`
  kcat -C -b "$bootstrap" -t counts -e -q -f '%k=%s\n' | grep "^$1=" | tail -1 | cut -d= -f2
}
for _ in $(seq 100); do
  [ "$(latest alpha)" = 300 ] && [ "$(latest gamma)" = 100 ] && break
  sleep 0.2
done
[ "$(latest alpha)" = 300 ] || fail "alpha: $(latest alpha), expected 300"
[ "$(latest beta)" = 300 ] || fail "beta: $(latest beta), expected 300"
[ "$(latest gamma)" = 100 ] || fail "gamma: $(latest gamma), expected 100"
grep -q "live" "$work/run.log" || fail "no live switch logged"

# Live: a new line's result comes out.
echo "delta alpha" | kcat -P -b "$bootstrap" -t words
for _ in $(seq 50); do [ "$(latest delta)" = 1 ] && break; sleep 0.1; done
[ "$(latest delta)" = 1 ] || fail "live: delta not counted"
[ "$(latest alpha)" = 301 ] || fail "live: alpha $(latest alpha), expected 301"

# SIGTERM: exit 0, summary logged, nothing undelivered.
kill -TERM "$run"
code=0
wait "$run" || code=$?
[ "$code" = 0 ] || fail "castor run exited $code after SIGTERM"
grep -q "0 undelivered" "$work/run.log" || fail "no clean stop summary"
echo "e2e wordcount: ok"
