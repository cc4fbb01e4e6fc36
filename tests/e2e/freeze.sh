#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: the broker freezes (SIGSTOP) mid-replay for longer than
# engine.idle_timeout. Time without any answer is not idleness: no partition
# goes idle, the watermark does not jump, and the merged output is still in
# timestamp order with nothing late.
# Usage: freeze.sh PATH/TO/castor PATH/TO/castor_test_produce
castor=$1
produce=$2
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# A slow link, so that the replay lasts long enough to freeze it midway.
BROKER_ARGS="--rtt 40ms" start_broker "$castor" a:2 b:2 merged:1
broker=${pids[-1]}

# Interleaved timestamps over four partitions.
t0=1767225600000
n=30000
{
  for i in $(seq 0 $((n - 1))); do
    echo "a $((i % 2)) $((t0 + i * 10)) a$i x"
    echo "b $((i % 2)) $((t0 + i * 10 + 5)) b$i y"
  done
} | "$produce" "$bootstrap" 2> "$work/produce.log" || fail "produce"

cat > "$work/merge.toml" << TOML
[kafka]
bootstrap_servers = "$bootstrap"
[kafka.consumer]
"fetch.wait.max.ms" = "10"
"max.partition.fetch.bytes" = "2048"
[kafka.producer]
"compression.type" = "lz4"   # the merged output fits the mock's 5 MB per partition
[engine]
dag = "merge"
batch_size = 100
idle_timeout = "2s"
progress_interval = "100ms"
[metrics]
listen = "127.0.0.1:0"
[[sources]]
name = "a"
topic = "a"
start = "earliest"
[[sources]]
name = "b"
topic = "b"
start = "earliest"
[[sinks]]
name = "out"
topic = "merged"
TOML
"$castor" run --config "$work/merge.toml" > "$work/run.log" 2>&1 &
pids+=($!)
wait_for_log "$work/run.log" "orchestrator: replay:" 30 || fail "the replay did not start"
if grep -q "caught up: live" "$work/run.log"; then
  fail "the replay ended before the freeze (too fast for this test)"
fi
kill -STOP "$broker"
sleep 5 # idle_timeout is 2 s
kill -CONT "$broker"
wait_for_log "$work/run.log" "caught up: live" 120 || fail "the replay did not catch up"
grep -q "delivered nothing for" "$work/run.log" && fail "a partition went idle during the freeze"
port=$(grep -o "Prometheus endpoint at http://127.0.0.1:[0-9]*" "$work/run.log" | grep -o "[0-9]*$")
metrics=$(exec 3<> /dev/tcp/127.0.0.1/"$port" &&
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3)
# A here-string, not a pipe: with pipefail, grep -q leaving early would
# fail the pipe (SIGPIPE on echo) although it matched.
grep -q "^castor_late_messages_total 0" <<< "$metrics" || fail "late messages: $(echo "$metrics" | grep late)"
for _ in $(seq 120); do
  exec 3<> /dev/tcp/127.0.0.1/"$port"
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  grep -q "^castor_delivered_records_total{topic=\"merged\"} $((2 * n))" <&3 && break
  sleep 0.5
done
grep -q "dropped offsets" "$work/broker.log" && fail "the broker dropped data (5 MB per partition)"
kcat -C -b "$bootstrap" -t merged -e -q -f '%T %k\n' > "$work/merged.out"
[ "$(wc -l < "$work/merged.out")" -ge $((2 * n)) ] || fail "only $(wc -l < "$work/merged.out") of $((2 * n)) merged"
sort -n -s -k1,1 "$work/merged.out" | cmp -s - "$work/merged.out" || fail "merged is not in timestamp order"
echo "PASS: $(wc -l < "$work/merged.out") messages in order across a 5 s freeze"
