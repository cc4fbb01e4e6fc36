#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's main job: castor on its embedded broker with the word count
# DAG; feeds examples/data/words.txt through `words`, prints the counts read
# back from `counts` with kcat, then stays live until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${CASTOR_BUILD_DIR:-build}
addr=$(mktemp)
rm -f "$addr"
"$build/app/castor" run --config config/wordcount.toml --addr-file "$addr" &
castor=$!
trap 'kill -TERM $castor 2>/dev/null || true; wait $castor; rm -f "$addr"' EXIT INT TERM
for _ in $(seq 100); do
  [ -s "$addr" ] && break
  sleep 0.1
done
[ -s "$addr" ] || { echo "castor did not start" >&2; exit 1; }
bootstrap=$(cat "$addr")
kcat -P -b "$bootstrap" -t words examples/data/words.txt -l
sleep 2
echo
echo "== counts (key = word, value = latest count), read back with kcat:"
kcat -C -b "$bootstrap" -t counts -e -q -f '%k=%s\n' | sort -t= -k1,1 -s | awk -F= '{last[$1]=$2} END {for (w in last) print w "=" last[w]}' | sort
echo
echo "castor is live. Send more words from another terminal with:"
echo "  echo 'more words here' | kcat -P -b $bootstrap -t words"
echo "  kcat -C -b $bootstrap -t counts -f '%k=%s\\n'"
echo "Ctrl-C stops castor."
wait $castor
