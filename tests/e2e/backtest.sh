#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: backtests through the binary. `castor produce` writes
# timestamped data; `castor run` with engine.stop replays a bounded window
# and exits 0 by itself; kcat reads what it wrote; the run report's figures
# match. Cases: the end offsets while another producer keeps writing; a
# window [T1, T2) from a start time to a stop time; positions stopped at a
# time; pacing at 10x; an empty partition and one whose data ends before
# the stop.
# Usage: backtest.sh PATH/TO/castor
castor=$1
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start_broker "$castor" hist:3 hist-out:1 win:2 win-out:1 trades:2 prices:2 \
  positions:1 marks:1 paced:1 paced-out:1 gaps:3 gaps-out:1

t0=1767225600000 # 2026-01-01T00:00:00Z
config() { # dag sink-topic start source-topic...
  local dag=$1 sink=$2 start=$3
  shift 3
  printf '[kafka]\nbootstrap_servers = "%s"\n[kafka.consumer]\n"fetch.wait.max.ms" = "10"\n' \
    "$bootstrap"
  printf '[engine]\ndag = "%s"\n' "$dag"
  [ -n "${EXTRA:-}" ] && printf '%b\n' "$EXTRA"
  for s in "$@"; do
    printf '[[sources]]\nname = "%s"\ntopic = "%s"\nstart = "%s"\n' "$s" "$s" "$start"
  done
  if [ "$dag" = positions ]; then
    printf '[[sinks]]\nname = "positions"\ntopic = "positions"\n'
    printf '[[sinks]]\nname = "marks"\ntopic = "marks"\n'
  else
    printf '[[sinks]]\nname = "out"\ntopic = "%s"\n' "$sink"
  fi
}
# backtest NAME ARGS...: `castor run` that must exit 0 by itself within 60 s.
backtest() {
  local name=$1
  shift
  local code=0
  timeout -s KILL 60 "$castor" run "$@" --report "$work/$name.json" > "$work/$name.log" 2>&1 \
    || code=$?
  [ "$code" = 0 ] || fail "$name: castor run exited $code (137: it did not stop by itself)"
  grep -q "the bounded replay is complete" "$work/$name.log" || fail "$name: no end logged"
  [ -s "$work/$name.json" ] || fail "$name: no report"
}
report() { # name jq-filter
  jq -r "$2" "$work/$1.json"
}

# -- 1. engine.stop = end while another producer keeps writing ------------------
for i in $(seq 0 2999); do printf '%d\th%d\tv\n' $((t0 + i)) "$i"; done \
  | "$castor" produce -b "$bootstrap" -t hist 2> "$work/produce.log" || fail "produce"
(
  i=0
  while true; do
    printf '%d\tlive%d\tv\n' "$(date +%s%3N)" "$i"
    i=$((i + 1))
    sleep 0.002
  done
) | "$castor" produce -b "$bootstrap" -t hist -X linger.ms=0 2> "$work/live.log" &
pids+=($!)
for _ in $(seq 100); do
  [ "$(kcat -C -b "$bootstrap" -t hist -e -q | grep -c '^v$')" -gt 3100 ] && break
  sleep 0.1
done
config copy hist-out earliest hist > "$work/end.toml"
backtest end --config "$work/end.toml" --stop end
# Exactly what the partitions held below their end offsets at start-up.
kcat -C -b "$bootstrap" -t hist -e -q -f '%p %o %k\n' > "$work/hist.all"
: > "$work/hist.expected"
for p in 0 1 2; do
  end=$(report end ".partitions[] | select(.partition == $p) | .end_offset_at_start")
  awk -v p="$p" -v end="$end" '$1 == p && $2 < end { print $3 }' "$work/hist.all" \
    >> "$work/hist.expected"
done
kcat -C -b "$bootstrap" -t hist-out -e -q -f '%k\n' > "$work/hist.out"
sort "$work/hist.expected" > "$work/a"
sort "$work/hist.out" > "$work/b"
cmp -s "$work/a" "$work/b" || fail "end: the output is not the history at start-up:" \
  "$(diff "$work/a" "$work/b" | head -5)"
n=$(wc -l < "$work/hist.out")
[ "$(report end .messages.released)" = "$n" ] || fail "end: report released"
[ "$(report end '.sinks[0].delivered')" = "$n" ] || fail "end: report delivered"
[ "$(report end '[.partitions[].messages] | add')" = "$n" ] || fail "end: per partition"
[ "$(report end .exit.code)" = 0 ] || fail "end: report exit code"
kill "${pids[-1]}" 2> /dev/null || true
echo "end: $n messages (the history at start-up; live writes after it not read)"

# -- 2. a window [T1, T2) ---------------------------------------------------------
for i in $(seq 0 999); do printf '%d\t%d\tw%d\tv\n' $((t0 + i * 100)) $((i % 2)) "$i"; done \
  | "$castor" produce -b "$bootstrap" -t win --partition-column 2> "$work/produce.log" \
  || fail "produce"
config merge win-out "absolute:2026-01-01T00:00:20Z" win > "$work/win.toml"
backtest win --config "$work/win.toml" --stop "absolute:2026-01-01T00:01:10Z"
kcat -C -b "$bootstrap" -t win-out -e -q -f '%T %k\n' > "$work/win.out"
awk -v t0=$t0 '{ if ($1 < t0 + 20000 || $1 >= t0 + 70000) bad++ } END { exit bad > 0 }' \
  "$work/win.out" || fail "win: a message outside [T1, T2)"
[ "$(wc -l < "$work/win.out")" = 500 ] || fail "win: $(wc -l < "$work/win.out") messages, expected 500"
sort -n -s -k1,1 "$work/win.out" | cmp -s - "$work/win.out" || fail "win: not in order"
[ "$(head -1 "$work/win.out" | cut -d' ' -f1)" = $((t0 + 20000)) ] || fail "win: first"
[ "$(tail -1 "$work/win.out" | cut -d' ' -f1)" = $((t0 + 69900)) ] || fail "win: last"
[ "$(report win '[.partitions[].first_timestamp_ms] | min')" = $((t0 + 20000)) ] \
  || fail "win: report first timestamp"
[ "$(report win '[.partitions[].last_timestamp_ms] | max')" = $((t0 + 69900)) ] \
  || fail "win: report last timestamp"
[ "$(report win .messages.beyond_stop)" -ge 1 ] || fail "win: nothing past the stop read?"
echo "window: 500 messages, exactly [T1, T2), in order"

# -- 3. positions stopped at a time -----------------------------------------------
for i in $(seq 0 299); do
  printf '%d\t%d\t\t{"symbol":"S%d","quantity":%d,"price":%d}\n' $((t0 + i * 1000)) \
    $((i % 2)) $((i % 3)) $((i % 7 - 3)) $((100 + i % 13))
done | "$castor" produce -b "$bootstrap" -t trades --partition-column 2> /dev/null \
  || fail "produce"
for i in $(seq 0 299); do
  printf '%d\t%d\t\t{"symbol":"S%d","price":%d}\n' $((t0 + i * 1000 + 500)) $((i % 2)) \
    $((i % 3)) $((100 + i % 11))
done | "$castor" produce -b "$bootstrap" -t prices --partition-column 2> /dev/null \
  || fail "produce"
config positions - earliest trades prices > "$work/positions.toml"
backtest positions --config "$work/positions.toml" --stop "absolute:2026-01-01T00:03:30Z"
kcat -C -b "$bootstrap" -t marks -e -q -f '%s\n' | jq -r .time | sort -u > "$work/marks.times"
[ "$(tail -1 "$work/marks.times")" = "2026-01-01T00:03:00.000Z" ] \
  || fail "positions: last mark at $(tail -1 "$work/marks.times"), expected 00:03:00"
[ "$(wc -l < "$work/marks.times")" = 3 ] || fail "positions: marks at $(cat "$work/marks.times")"
echo "positions: marks at 00:01, 00:02, 00:03; none at or after the 00:03:30 stop"

# -- 4. pacing at 10x ----------------------------------------------------------------
for i in $(seq 0 200); do printf '%d\tp%d\tv\n' $((t0 + i * 100)) "$i"; done \
  | "$castor" produce -b "$bootstrap" -t paced 2> /dev/null || fail "produce"
EXTRA='replay_speed = "10x"\nstop = "end"' config copy paced-out earliest paced \
  > "$work/paced.toml"
start=$(date +%s%3N)
backtest paced --config "$work/paced.toml"
elapsed=$(($(date +%s%3N) - start))
[ "$elapsed" -ge 1800 ] || fail "paced: 20 s of event time at 10x took $elapsed ms"
[ "$elapsed" -le 8000 ] || fail "paced: 20 s of event time at 10x took $elapsed ms"
[ "$(kcat -C -b "$bootstrap" -t paced-out -e -q | wc -l)" = 201 ] || fail "paced: count"
echo "paced: 20 s of event time at 10x in $elapsed ms"

# -- 5. an empty partition, and one whose data ends before the stop ---------------
{
  for i in $(seq 0 99); do printf '%d\t0\tg%d\tv\n' $((t0 + i * 100)) "$i"; done
  for i in $(seq 0 9); do printf '%d\t2\te%d\tv\n' $((t0 + i * 100)) "$i"; done
} | "$castor" produce -b "$bootstrap" -t gaps --partition-column 2> /dev/null \
  || fail "produce"
config copy gaps-out earliest gaps > "$work/gaps.toml"
backtest gaps --config "$work/gaps.toml" --stop "absolute:2026-01-01T00:00:05Z"
[ "$(kcat -C -b "$bootstrap" -t gaps-out -e -q | wc -l)" = 60 ] \
  || fail "gaps: $(kcat -C -b "$bootstrap" -t gaps-out -e -q | wc -l) messages, expected 60"
[ "$(report gaps '.partitions[] | select(.partition == 1) | .messages')" = 0 ] \
  || fail "gaps: the empty partition"
echo "gaps: an empty partition and one ending early stop cleanly"

# -- bad input to castor produce names the line ------------------------------------
code=0
printf '%d\tk\tv\nnot-a-time\tk\tv\n' "$t0" \
  | "$castor" produce -b "$bootstrap" -t gaps > "$work/bad.log" 2>&1 || code=$?
[ "$code" = 5 ] || fail "produce: a bad line exited $code"
grep -q "standard input:2: 'not-a-time' is not a timestamp" "$work/bad.log" \
  || fail "produce: $(cat "$work/bad.log")"
grep -q "produced 1 record" "$work/bad.log" || fail "produce: what came before"
echo "e2e backtest: ok"
