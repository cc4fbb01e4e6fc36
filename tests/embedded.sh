#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The embedding path end to end: `cmake --install` castor into a fresh
# prefix, configure and build examples/embedded (a separate CMake project)
# against it with find_package(castor), and run it: its own actor system,
# actors and DAG, a castor pipeline on an in-process mock cluster, castor's
# status and figures received by its own actor, a clean stop, output checked.
# Usage: embedded.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$source/examples/embedded" -B "$work/build" \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log" \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 > "$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
"$work/build/vwap_app" --metrics 127.0.0.1:0 > "$work/run.log" 2>&1 \
  || { cat "$work/run.log"; exit 1; }
cat "$work/run.log"
grep -q "monitor: castor switched to live" "$work/run.log"
grep -Eq "monitor: [0-9]+ consumed" "$work/run.log"
grep -q "metrics: Prometheus endpoint at http://127.0.0.1:[1-9]" "$work/run.log"
grep -q "monitor: pipeline down (clean stop)" "$work/run.log"
grep -q "embedded example: ok" "$work/run.log"
