// SPDX-License-Identifier: Apache-2.0
// DAG engine benchmark: node runs per second for trivial nodes, and cycles per
// second for a 10,000-node graph where each cycle touches 10 nodes.
// Usage: castor_bench_dag [seconds per case, default 2]

#include "castor/dag.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using value = std::optional<int64_t>;
using steady = std::chrono::steady_clock;

value increment(const value& in) {
  return in ? value{*in + 1} : value{};
}

struct result {
  double cycles_per_s;
  double node_runs_per_s;
  double ns_per_cycle;
};

// Runs `step` until `seconds` have passed; returns cycles/s and node runs/s.
template <class Step>
result measure(castor::dag& g, double seconds, Step step) {
  uint64_t cycles = 0;
  uint64_t runs = 0;
  auto t = castor::from_millis(1'767'225'600'000);
  auto start = steady::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  while (true) {
    for (int i = 0; i < 1024; ++i) {
      step(cycles);
      t += std::chrono::microseconds{1};
      if (auto failure = g.execute(t)) {
        fmt::print(stderr, "{}\n", failure->message());
        std::exit(1);
      }
      runs += g.last_cycle().nodes_run;
      ++cycles;
    }
    if (steady::now() >= deadline)
      break;
  }
  double elapsed = std::chrono::duration<double>(steady::now() - start).count();
  return {cycles / elapsed, runs / elapsed, elapsed * 1e9 / cycles};
}

result chain_case(bool timing, double seconds) {
  // One source feeding a chain of 100 trivial streams and a sink.
  castor::dag g;
  g.enable_timing(timing);
  auto src = g.source_stream<value>("src");
  castor::node_ref<value> last = src;
  for (int i = 0; i < 100; ++i)
    last = g.stream(increment).map(last);
  g.sink("out", last);
  return measure(g, seconds, [&](uint64_t cycle) { g.set(src, value{int64_t(cycle)}); });
}

result wide_case(bool timing, double seconds) {
  // 1000 chains of 10 nodes (source, 8 streams, sink): 10,000 nodes; each
  // cycle sets one random source and so touches 10 nodes.
  castor::dag g;
  g.enable_timing(timing);
  std::vector<castor::source_ref<value>> sources;
  for (int chain = 0; chain < 1000; ++chain) {
    auto src = g.source_stream<value>("src" + std::to_string(chain));
    sources.push_back(src);
    castor::node_ref<value> last = src;
    for (int i = 0; i < 8; ++i)
      last = g.stream(increment).map(last);
    g.sink("out" + std::to_string(chain), last);
  }
  std::mt19937 rng{42};
  std::uniform_int_distribution<size_t> pick{0, sources.size() - 1};
  if (g.size() != 10'000)
    std::abort();
  return measure(g, seconds, [&](uint64_t cycle) {
    g.set(sources[pick(rng)], value{int64_t(cycle)});
  });
}

} // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  fmt::print("castor DAG engine benchmark ({} s per case)\n\n", seconds);
  fmt::print("{:<52} {:>14} {:>16} {:>12}\n", "case", "cycles/s", "node runs/s",
             "ns/cycle");
  auto row = [](const char* name, const result& r) {
    fmt::print("{:<52} {:>14.0f} {:>16.0f} {:>12.1f}\n", name, r.cycles_per_s,
               r.node_runs_per_s, r.ns_per_cycle);
  };
  row("chain of 100 trivial nodes, timing off", chain_case(false, seconds));
  row("chain of 100 trivial nodes, timing on", chain_case(true, seconds));
  row("10,000-node graph, 10 nodes per cycle, timing off", wide_case(false, seconds));
  row("10,000-node graph, 10 nodes per cycle, timing on", wide_case(true, seconds));
  return 0;
}
