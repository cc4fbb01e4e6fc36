// SPDX-License-Identifier: Apache-2.0
// The word count DAG of beavers' Kafka guide, run on castor's DAG engine with
// the test bench: one cycle per line of a text file, printing every count
// that changed. Usage: castor_dag_demo [FILE]

#include "castor/dag.hpp"
#include "castor/test_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using words = std::vector<std::string>;
using counts = std::map<std::string, int64_t>;
using count_updates = std::vector<std::pair<std::string, int64_t>>;

// The latest count of every word seen in this cycle, in word order.
count_updates changed_counts(const counts& all, const words& seen) {
  words unique = seen;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  count_updates result;
  result.reserve(unique.size());
  for (auto& word : unique)
    result.emplace_back(word, all.at(word));
  return result;
}

} // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "examples/data/words.txt";
  std::ifstream in{path};
  if (!in) {
    std::cerr << "castor_dag_demo: cannot open " << path << '\n';
    return 1;
  }

  castor::dag dag;
  auto source = dag.source_stream<words>("words");
  auto totals = dag.accumulate(counts{},
                               [](counts& all, const words& seen) {
                                 for (auto& word : seen)
                                   ++all[word];
                               })
                    .map(source);
  auto updates = dag.stream(changed_counts).named("changed_counts").map(totals, source);
  dag.sink("counts", updates);

  castor::test_bench bench{dag};
  auto t = castor::from_millis(1'767'225'600'000); // 2026-01-01T00:00:00Z
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream split{line};
    words batch{std::istream_iterator<std::string>{split}, {}};
    bench.set("words", std::move(batch)).execute(t);
    std::cout << castor::to_string(t) << "  ";
    for (auto& [word, count] : bench.sink_value<count_updates>("counts"))
      std::cout << word << '=' << count << ' ';
    std::cout << '\n';
    t += std::chrono::seconds{1};
  }
  std::cout << fmt::format("{} cycles, {} distinct words; final counts:\n",
                           dag.cycle_id(), totals.value().size());
  for (auto& [word, count] : totals.value())
    std::cout << fmt::format("  {:<12} {}\n", word, count);
  return 0;
}
