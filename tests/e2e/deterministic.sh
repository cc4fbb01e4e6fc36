#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: `castor run` as a process replays the same input with merge,
# wordcount and positions under engine.cycles = "timestamp" (three runs, at
# batch_size 37, 501 and 37 again) and "100ms" (batch_size 37 and 501); each
# run writes to a fresh topic and what kcat reads there (key, value,
# timestamp, headers, in order) is byte-identical across the runs. The
# third run by timestamp has one scheduler thread (engine.threads = 1), the
# others castor's default: the thread count changes nothing either.
# Usage: deterministic.sh PATH/TO/castor PATH/TO/castor_test_produce
castor=$1
produce=$2
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
outs=()
for dag in merge wordcount positions; do
  for run in ts37 ts501 ts37b b37 b501; do
    outs+=("$dag-$run-a:1" "$dag-$run-b:1")
  done
done
start_broker "$castor" a:2 b:1 words:3 trades:2 prices:2 "${outs[@]}"

# Many equal timestamps within and across partitions: partition p's i-th
# message is at t0 + ((i + p) / 5) * 30 ms. Positions' data is a day ahead
# of the wall clock: its minute timers fire between the data only (live,
# timers wait for the wall clock), so what comes out is the data's alone.
t0=1767225600000
future=$(( ($(date +%s) / 60 + 24 * 60) * 60000 ))
n=1000
awk -v t0=$t0 -v f=$future -v n=$n 'BEGIN {
  srand(42)
  split("the quick brown fox jumps over lazy dog and cat sleeps all day", w, " ")
  for (i = 0; i < n; i++)
    for (p = 0; p < 3; p++) {
      t = t0 + int((i + p) / 5) * 30
      printf "%s %d %.0f k%d-%d v%d\n", p < 2 ? "a" : "b", p < 2 ? p : 0, t, p, i, i
      line = ""
      for (k = 0; k <= int(rand() * 5); k++) line = line (k ? " " : "") w[1 + int(rand() * 13)]
      printf "words %d %.0f - %s\n", p, t, line
    }
  for (i = 0; i < 600; i++) {
    t = f + int(i / 4) * 1000
    printf "trades %d %.0f - {\"symbol\":\"S%d\",\"quantity\":%d,\"price\":%d}\n", i % 2, t,
      int(rand() * 4), int(rand() * 21) - 10, 100 + int(rand() * 50)
    printf "prices %d %.0f - {\"symbol\":\"S%d\",\"price\":%d}\n", i % 2, t + 500,
      int(rand() * 4), 100 + int(rand() * 50)
  }
}' | "$produce" "$bootstrap" 2> "$work/produce.log" || fail "produce"
inputs=$((3 * n * 2 + 1200))
grep -q "produced $inputs" "$work/produce.log" || fail "produced: $(cat "$work/produce.log")"

config() { # dag cycles batch-size run
  cat <<TOML
[kafka]
bootstrap_servers = "$bootstrap"
[kafka.consumer]
"fetch.wait.max.ms" = "10"
[engine]
dag = "$1"
cycles = "$2"
batch_size = $3
TOML
  case $1 in
    merge) sources="a b" sinks="out" ;;
    wordcount) sources="words" sinks="counts" ;;
    positions) sources="trades prices" sinks="positions marks" ;;
  esac
  for s in $sources; do
    printf '[[sources]]\nname = "%s"\ntopic = "%s"\nstart = "earliest"\n' "$s" "$s"
  done
  local suffix=a
  for s in $sinks; do
    printf '[[sinks]]\nname = "%s"\ntopic = "%s-%s-%s"\n' "$s" "$1" "$4" "$suffix"
    suffix=b
  done
}

# run_dag DAG CYCLES BATCH RUN: replays everything, stops with SIGTERM once
# live and idle, and checks the summary: all released and run, none waiting.
run_dag() {
  local log="$work/$1-$4.log"
  config "$@" > "$work/$1-$4.toml"
  local threads=auto
  [ "$4" = ts37b ] && threads=1
  CASTOR_ENGINE_THREADS=$threads "$castor" run --config "$work/$1-$4.toml" > "$log" 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_for_log "$log" "caught up: live" 60 || fail "$1 $4: the replay did not catch up"
  sleep 1
  kill -TERM "$pid"
  local code=0
  wait "$pid" || code=$?
  [ "$code" = 0 ] || fail "$1 $4: castor run exited $code after SIGTERM"
  if [ "$threads" = 1 ]; then
    grep -q "with 1 scheduler thread(s)" "$log" || fail "$1 $4: not one scheduler thread"
  fi
  local summary
  summary=$(grep "pipeline: stopped:" "$log") || fail "$1 $4: no summary"
  grep -q "waiting" <<< "$summary" && fail "$1 $4: messages left waiting: $summary"
  grep -q " 0 undelivered" <<< "$summary" || fail "$1 $4: $summary"
  local consumed released
  consumed=$(echo "$summary" | sed -E 's/.*stopped: ([0-9]+) consumed.*/\1/')
  released=$(echo "$summary" | sed -E 's/.* ([0-9]+) released.*/\1/')
  [ "$consumed" = "$released" ] || fail "$1 $4: $summary"
  for suffix in a b; do
    local topic="$1-$4-$suffix"
    kcat -C -b "$bootstrap" -t "$topic" -e -q -f '%k\t%s\t%T\t%h\n' > "$work/$topic.out" \
      || fail "kcat $topic"
  done
}

same() { # dag run run
  for suffix in a b; do
    cmp -s "$work/$1-$2-$suffix.out" "$work/$1-$3-$suffix.out" \
      || fail "$1: $2 and $3 differ in sink $suffix: $(diff "$work/$1-$2-$suffix.out" \
              "$work/$1-$3-$suffix.out" | head -5)"
  done
}

for dag in merge wordcount positions; do
  run_dag "$dag" timestamp 37 ts37
  run_dag "$dag" timestamp 501 ts501
  run_dag "$dag" timestamp 37 ts37b
  run_dag "$dag" 100ms 37 b37
  run_dag "$dag" 100ms 501 b501
  same "$dag" ts37 ts501
  same "$dag" ts37 ts37b
  same "$dag" b37 b501
  [ -s "$work/$dag-ts37-a.out" ] || fail "$dag: no output"
  echo "$dag: $(wc -l < "$work/$dag-ts37-a.out") records identical in 3 runs by timestamp," \
       "$(wc -l < "$work/$dag-b37-a.out") identical in 2 runs by 100 ms buckets"
done
[ "$(wc -l < "$work/merge-ts37-a.out")" = $((3 * n)) ] || fail "merge lost messages"
[ -s "$work/positions-ts37-b.out" ] || fail "positions: no marks"
# Each word count record is stamped with its cycle's time: by buckets, the
# bucket's end (a multiple of 100 ms).
# (awk reads it all: `cut | grep -q` under pipefail would pass whenever
# grep's early exit cut the pipe.)
awk -F'\t' '$3 !~ /00$/ { print "line " NR ": " $0; exit 1 }' "$work/wordcount-b37-a.out" \
  || fail "bucket cycle times"
echo "e2e deterministic: ok"
