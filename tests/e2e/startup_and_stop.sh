#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# castor honours signals from the first instant and stops within bounds:
# a SIGTERM during start-up (broker unreachable) exits 0 at once; a metrics
# address that cannot be bound exits 2 naming it; a stop with the broker gone
# ends within flush_timeout plus a few seconds; a second signal exits at once;
# the start-up line says how many scheduler threads run (and warns when they
# are more than the usable cores).
# Usage: startup_and_stop.sh CASTOR
source "$(dirname "$0")/common.sh"
castor=$1
unset CASTOR_ENGINE_THREADS # the first runs check what "auto" starts

now_ms() { date +%s%3N; }

# run_castor NAME CONFIG: starts `castor run` in the background; sets $pid.
run_castor() {
  "$castor" run --config "$2" > "$work/$1.log" 2>&1 &
  pid=$!
  pids+=("$pid")
}

# wait_exit PID SECONDS: waits for PID to exit; sets $rc; fails after SECONDS.
wait_exit() {
  local deadline=$(($(now_ms) + $2 * 1000))
  while kill -0 "$1" 2> /dev/null; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "castor did not exit within $2 s"
    sleep 0.02
  done
  rc=0
  wait "$1" || rc=$?
}

copy_config() { # copy_config FILE BOOTSTRAP [EXTRA-ENGINE-LINES]
  cat > "$1" << EOF
[kafka]
bootstrap_servers = "$2"
group_id = "castor-e2e-stop"
[kafka.consumer]
"fetch.wait.max.ms" = "10"
[engine]
dag = "copy"
${3:-}
[[sources]]
name = "in"
topic = "in"
start = "earliest"
[[sinks]]
name = "out"
topic = "out"
EOF
}

# 1. SIGTERM while the start-up queries wait for an unreachable broker.
copy_config "$work/unreachable.toml" "127.0.0.1:1" 'startup_timeout = "60s"'
run_castor unreachable "$work/unreachable.toml"
wait_for_log "$work/unreachable.log" "runs dag" 10 || fail "castor did not start"
sleep 0.5
t=$(now_ms)
kill -TERM "$pid"
wait_exit "$pid" 5
took=$(($(now_ms) - t))
[ "$rc" -eq 0 ] || fail "SIGTERM during start-up: exit $rc, expected 0"
[ "$took" -lt 3000 ] || fail "SIGTERM during start-up took $took ms"
echo "SIGTERM during start-up: exit 0 after $took ms"

# The scheduler threads: "auto" starts no more than the usable cores, at most
# three; engine.threads (here from the environment) sets them.
line=$(grep -oE "with [0-9]+ scheduler thread\(s\) \(engine.threads = auto; [0-9]+ usable core\(s\)\)" \
  "$work/unreachable.log") || fail "the start-up line does not say the scheduler threads"
threads=$(sed -E 's/with ([0-9]+) .*/\1/' <<< "$line")
cores=$(sed -E 's/.*; ([0-9]+) usable.*/\1/' <<< "$line")
[ "$cores" -ge 1 ] && [ "$cores" -le "$(nproc --all)" ] || fail "usable cores $cores"
[ "$threads" -eq $((cores < 3 ? cores : 3)) ] ||
  fail "auto: $threads scheduler threads for $cores usable cores"
# with_threads N: starts castor with engine.threads = N (from the
# environment) against the unreachable broker, stops it with SIGTERM during
# start-up and checks its exit and that it started N threads; log in
# $work/threads-N.log.
with_threads() {
  CASTOR_ENGINE_THREADS=$1 run_castor "threads-$1" "$work/unreachable.toml"
  wait_for_log "$work/threads-$1.log" "runs dag" 10 || fail "castor did not start"
  kill -TERM "$pid"
  wait_exit "$pid" 5
  [ "$rc" -eq 0 ] || fail "SIGTERM during start-up with $1 scheduler thread(s): exit $rc"
  grep -q "with $1 scheduler thread(s) (engine.threads = $1;" "$work/threads-$1.log" ||
    fail "CASTOR_ENGINE_THREADS=$1 did not start $1 scheduler thread(s)"
}
with_threads 1
# More threads than cores: castor runs them and says what they cost.
many=$((cores + 1))
with_threads "$many"
grep -q "engine.threads = $many is more than the $cores usable core(s)" \
  "$work/threads-$many.log" || fail "no warning for $many threads on $cores core(s)"
echo "scheduler threads: $threads for $cores usable core(s) (auto), 1 and $many when set" \
  "(the latter warned about)"

# 2. A metrics address that is taken (the broker's own port).
start_broker "$castor" in:2 out:1
broker_pid=${pids[-1]}
copy_config "$work/metrics.toml" "$bootstrap"
printf '[metrics]\nlisten = "%s"\n' "$bootstrap" >> "$work/metrics.toml"
run_castor metrics "$work/metrics.toml"
wait_exit "$pid" 20
[ "$rc" -eq 2 ] || fail "metrics address in use: exit $rc, expected 2"
grep -q "metrics.listen '$bootstrap': cannot listen" "$work/metrics.log" ||
  fail "the error does not name the metrics address"
echo "metrics address in use: exit 2 naming it"

# 3. A stop with the broker frozen: within flush_timeout (2 s) plus a few seconds.
seq 1 1000 | kcat -P -b "$bootstrap" -t in
copy_config "$work/gone.toml" "$bootstrap" 'flush_timeout = "2s"'
run_castor gone "$work/gone.toml"
wait_for_log "$work/gone.log" "caught up: live" 20 || fail "castor did not go live"
# Frozen, not dead: connections stay open and requests get no answer.
kill -STOP "$broker_pid"
sleep 0.5
t=$(now_ms)
kill -TERM "$pid"
wait_exit "$pid" 20
took=$(($(now_ms) - t))
[ "$took" -lt 7500 ] || fail "the stop with the broker gone took $took ms"
grep -q "pipeline: stopped:" "$work/gone.log" || fail "no summary line"
echo "stop with the broker gone: exit $rc after $took ms"

# 4. A second signal while such a stop waits exits at once.
start_broker "$castor" in:2 out:1
broker_pid=${pids[-1]}
seq 1 1000 | kcat -P -b "$bootstrap" -t in
copy_config "$work/second.toml" "$bootstrap" 'flush_timeout = "30s"'
run_castor second "$work/second.toml"
wait_for_log "$work/second.log" "caught up: live" 20 || fail "castor did not go live"
kill -STOP "$broker_pid"
sleep 0.5
kill -TERM "$pid"
wait_for_log "$work/second.log" "SIGTERM received" 5 || fail "first SIGTERM not seen"
sleep 0.5
t=$(now_ms)
kill -TERM "$pid" || fail "castor exited before the second SIGTERM"
wait_exit "$pid" 5
took=$(($(now_ms) - t))
[ "$rc" -eq 1 ] || fail "second SIGTERM: exit $rc, expected 1"
grep -q "second SIGTERM: exits now" "$work/second.log" || fail "no line for the second signal"
echo "second SIGTERM: exit 1 after $took ms"
echo "PASS"
