#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Soak test (not part of CI): castor replays history, then runs live for N
# minutes while the development broker goes down periodically (and pushes
# retriable errors on fetch and produce), and castor itself is killed with
# SIGKILL and restarted from its committed offsets now and then. At the end
# the output must hold every input at least once.
#
# Usage: bench/soak.sh [MINUTES] [BUILD_DIR]      (defaults: 5, build)
# Tunables (environment): SOAK_HISTORY (messages replayed first, 200000),
# SOAK_RATE (live messages per second, 2000), SOAK_FAULT_EVERY (30s),
# SOAK_FAULT_DOWN (5s), SOAK_KILL_EVERY (seconds between SIGKILLs, 45; 0: none).
set -euo pipefail
minutes=${1:-5}
build=${2:-build}
castor=$build/app/castor
produce=$build/tests/castor_test_produce
history=${SOAK_HISTORY:-200000}
rate=${SOAK_RATE:-2000}
kill_every=${SOAK_KILL_EVERY:-45}
[ -x "$castor" ] && [ -x "$produce" ] || {
  echo "build first: ./setup.sh (needs $castor and $produce)" >&2
  exit 2
}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null || true; done
  echo "logs: $work"
}
trap cleanup EXIT

"$castor" broker --topic in:4 --topic out:4 --addr-file "$work/addr" \
  --fault-every "${SOAK_FAULT_EVERY:-30s}" --fault-down "${SOAK_FAULT_DOWN:-5s}" \
  --fault-errors 3 > "$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
bootstrap=$(cat "$work/addr")
echo "soak: broker at $bootstrap; $history messages of history, then $rate/s live for" \
  "$minutes minute(s)"

# History: timestamps over the last hour, in key order.
now=$(date +%s%3N)
seq 0 $((history - 1)) \
  | awk -v t=$((now - 3600000)) -v n="$history" \
    '{ printf "in %d %.0f h%d v\n", $1 % 4, t + $1 * 3600000 / n, $1 }' \
  | "$produce" "$bootstrap" >> "$work/produce.log" 2>&1

cat > "$work/soak.toml" <<TOML
[kafka]
bootstrap_servers = "$bootstrap"
group_id = "soak"
[kafka.consumer]
"fetch.wait.max.ms" = "10"
[engine]
dag = "copy"
batch_size = 1000
commit_interval = "1s"
idle_timeout = "5s"
[[sources]]
name = "in"
topic = "in"
start = "committed"
[[sinks]]
name = "out"
topic = "out"
TOML

runs=0
start_castor() {
  runs=$((runs + 1))
  "$castor" run --config "$work/soak.toml" > "$work/castor$runs.log" 2>&1 &
  castor_pid=$!
  pids+=($castor_pid)
}
start_castor

# Live input: batches every 100 ms with the wall clock's time.
(
  i=0
  per_batch=$((rate / 10))
  end=$(($(date +%s) + minutes * 60))
  while [ "$(date +%s)" -lt "$end" ]; do
    t=$(date +%s%3N)
    seq $i $((i + per_batch - 1)) | awk -v t="$t" '{ printf "in %d %s l%d v\n", $1 % 4, t, $1 }'
    i=$((i + per_batch))
    sleep 0.1
  done
  echo "$i" > "$work/live.count"
) | "$produce" "$bootstrap" >> "$work/produce.log" 2>&1 &
feeder=$!
pids+=($feeder)

kills=0
last_kill=$(date +%s)
while kill -0 "$feeder" 2> /dev/null; do
  sleep 1
  if ! kill -0 "$castor_pid" 2> /dev/null; then
    code=0
    wait "$castor_pid" || code=$?
    echo "soak: castor exited on its own with code $code (see $work/castor$runs.log);" \
      "restarting"
    start_castor
  fi
  if [ "$kill_every" -gt 0 ] && [ $(($(date +%s) - last_kill)) -ge "$kill_every" ]; then
    kill -KILL "$castor_pid"
    wait "$castor_pid" 2> /dev/null || true
    kills=$((kills + 1))
    last_kill=$(date +%s)
    start_castor
  fi
done
live=$(cat "$work/live.count")
total_in=$((history + live))
echo "soak: input done ($total_in messages); waiting for castor to catch up"
expected() {
  { seq 0 $((history - 1)) | sed 's/^/h/'; seq 0 $((live - 1)) | sed 's/^/l/'; } | sort
}
expected > "$work/expected.keys"
for _ in $(seq 120); do
  kcat -C -b "$bootstrap" -t out -e -q -f '%k\n' | sort -u > "$work/out.keys"
  [ "$(wc -l < "$work/out.keys")" -ge "$total_in" ] && break
  sleep 5
done
kill -TERM "$castor_pid"
code=0
wait "$castor_pid" || code=$?
kcat -C -b "$bootstrap" -t out -e -q -f '%k\n' > "$work/out.all"
sort -u "$work/out.all" > "$work/out.keys"
missing=$(comm -23 "$work/expected.keys" "$work/out.keys" | wc -l)
total_out=$(wc -l < "$work/out.all")
faults=$(grep -c "fault: broker down" "$work/broker.log" || true)
echo "soak: $total_in in, $total_out out ($((total_out - total_in + missing)) duplicates)," \
  "$missing missing; $faults broker outages, $kills SIGKILLs, $runs runs;" \
  "last stop exit code $code"
[ "$missing" = 0 ] && [ "$code" = 0 ]
