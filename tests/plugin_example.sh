#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Your own DAG behind castor's service, end to end against the installed
# package: `cmake --install` castor into a fresh prefix, build
# examples/plugin (a separate CMake project) against it, then run its
# trade_marks DAG twice over the same quotes and trades: as a plugin of the
# installed `castor` binary, and as the example's own service_main binary.
# Both must write exactly the marks computed by hand below.
# Usage: plugin_example.sh BUILD_DIR SOURCE_DIR PATH/TO/castor_test_produce
build=$1
source=$2
produce=$3
source "$source/tests/e2e/common.sh"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$source/examples/plugin" -B "$work/build" \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log" 2>&1 || fail "configure"
cmake --build "$work/build" -j2 > "$work/build.log" 2>&1 || fail "build"
castor="$work/prefix/bin/castor"
start_broker "$castor" quotes:2 trades:2 marks-plugin:1 marks-binary:1

t0=1767225600000
cat <<DATA | "$produce" "$bootstrap" 2> "$work/produce.log" || fail "produce"
quotes 0 $((t0 + 1000)) S1 {"symbol":"S1","bid":100,"ask":102}
quotes 1 $((t0 + 1500)) S2 {"symbol":"S2","bid":50,"ask":50}
quotes 1 $((t0 + 3000)) S1 {"symbol":"S1","bid":104,"ask":106}
trades 0 $((t0 + 2000)) T1 {"id":"T1","symbol":"S1","side":"buy","price":101.5}
trades 1 $((t0 + 3000)) T2 {"id":"T2","symbol":"S1","side":"sell","price":104.5}
trades 0 $((t0 + 3500)) T3 {"id":"T3","symbol":"S2","side":"buy","price":50}
trades 1 $((t0 + 4500)) T4 {"id":"T4","symbol":"S1","side":"buy","price":106}
trades 0 $((t0 + 3900)) T5 {"id":"T5","symbol":"S1","side":"buy","price":105}
DATA

# T1: mid 101, paid 0.5 above: 49.5 bps. T2 sells at the quote of its own
# time (mid 105): 47.62 bps. T3: S2's only quote is locked (spread 0 < 1
# bps): none. T5: 900 ms after the quote: 0 bps. T4: 1.5 s old: none.
cat > "$work/expected" <<'MARKS'
T1 {"id":"T1","mid":101.0,"price":101.5,"quote_age_ms":1000,"side":"buy","slippage_bps":49.5,"symbol":"S1"}
T2 {"id":"T2","mid":105.0,"price":104.5,"quote_age_ms":0,"side":"sell","slippage_bps":47.62,"symbol":"S1"}
T3 {"id":"T3","mid":null,"price":50.0,"quote_age_ms":null,"side":"buy","slippage_bps":null,"symbol":"S2"}
T5 {"id":"T5","mid":105.0,"price":105.0,"quote_age_ms":900,"side":"buy","slippage_bps":0.0,"symbol":"S1"}
T4 {"id":"T4","mid":null,"price":106.0,"quote_age_ms":null,"side":"buy","slippage_bps":null,"symbol":"S1"}
MARKS

config() { # sink-topic [plugin]
  cat <<TOML
[kafka]
bootstrap_servers = "$bootstrap"
[kafka.consumer]
"fetch.wait.max.ms" = "10"
[engine]
dag = "trade_marks"
${2:+plugins = [\"$2\"]}
[engine.params]
max_quote_age = "1s"
min_spread_bps = 1.0
[[sources]]
name = "quotes"
topic = "quotes"
start = "earliest"
[[sources]]
name = "trades"
topic = "trades"
start = "earliest"
[[sinks]]
name = "marks"
topic = "$1"
TOML
}

# run_marks NAME BINARY CONFIG: runs until live and the 5 marks are out,
# stops with SIGTERM, compares the marks.
run_marks() {
  "$2" check --config "$3" > "$work/$1-check.log" 2>&1 || fail "$1: check"
  grep -q "trade_marks (.*): engine.dag" "$work/$1-check.log" || fail "$1: not listed"
  "$2" run --config "$3" > "$work/$1.log" 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_for_log "$work/$1.log" "caught up: live" 30 || fail "$1: not live"
  for _ in $(seq 50); do
    [ "$(kcat -C -b "$bootstrap" -t "marks-$1" -e -q | wc -l)" -ge 5 ] && break
    sleep 0.1
  done
  kill -TERM "$pid"
  wait "$pid" || fail "$1: exited $? after SIGTERM"
  kcat -C -b "$bootstrap" -t "marks-$1" -e -q -f '%k %s\n' > "$work/$1.out"
  diff "$work/expected" "$work/$1.out" > "$work/$1.diff" \
    || fail "$1: marks differ: $(cat "$work/$1.diff")"
}

config marks-plugin "$work/build/libcastor_trade_marks.so" > "$work/plugin.toml"
run_marks plugin "$castor" "$work/plugin.toml"
config marks-binary > "$work/binary.toml"
run_marks binary "$work/build/trade_marks" "$work/binary.toml"
"$work/build/trade_marks" --version | grep -q castor || fail "--version"
echo "plugin example: ok (the same 5 marks from the plugin and from the binary)"
