#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `castor broker` keeps at most 5 MB per partition (librdkafka's mock) and
# says so when it drops a partition's oldest data, naming the offsets.
# Usage: broker_retention.sh CASTOR
source "$(dirname "$0")/common.sh"
start_broker "$1" big:1
# 700 messages of 10 KB: 7 MB.
value=$(head -c 10240 /dev/zero | tr '\0' 'x')
for i in $(seq 700); do echo "$value"; done | kcat -P -b "$bootstrap" -t big -z none
wait_for_log "$work/broker.log" "broker: big\[0\] dropped offsets \[0, [0-9]+\)" 10 ||
  fail "no line about the dropped data"
echo "PASS: $(grep -o 'dropped offsets.*' "$work/broker.log" | head -1)"
