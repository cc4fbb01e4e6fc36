#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# castor's set-up: installs what is missing (Debian 12, apt-get), configures,
# builds, then runs the main job (`./setup.sh run`, the default) or the whole
# test suite (`./setup.sh test`). Safe to run again: installed packages are
# left alone and the build is incremental.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

mode=${1:-run}
case "$mode" in
  run | test) ;;
  *)
    echo "usage: $0 [run|test]" >&2
    exit 2
    ;;
esac

packages=(
  cmake g++ make pkg-config
  libcaf-dev librdkafka-dev libspdlog-dev libfmt-dev libcli11-dev catch2
  libhowardhinnant-date-dev tzdata nlohmann-json3-dev libtomlplusplus-dev
  prometheus-cpp-dev libjemalloc-dev
  kcat jq curl
)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build=${CASTOR_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCASTOR_ENABLE_WERROR=ON
cmake --build "$build" -j2

if [ "$mode" = run ]; then
  # castor on its embedded broker with the word count DAG, fed with a
  # bundled text; stays live until Ctrl-C.
  CASTOR_BUILD_DIR="$build" exec examples/run_wordcount.sh
else
  exec ctest --test-dir "$build" -j2 --output-on-failure
fi
