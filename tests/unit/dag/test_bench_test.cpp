// SPDX-License-Identifier: Apache-2.0
// The public test bench that users write their own DAG tests with.

#include "castor/test_bench.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

using ints = std::vector<int>;

const castor::timestamp t0 = castor::from_millis(1'767'225'600'000);

struct running_total {
  castor::dag dag;
  castor::sink_ref<int> total;
  running_total() {
    auto src = dag.source_stream<ints>("numbers");
    auto sum = dag.accumulate(0,
                              [](int& acc, const ints& in) {
                                for (auto x : in)
                                  acc += x;
                                return in.empty() ? castor::change::unchanged
                                                  : castor::change::updated;
                              })
                   .map(src);
    total = dag.sink("total", sum);
  }
};

} // namespace

TEST_CASE("the test bench sets sources, executes and checks sinks", "[test_bench]") {
  running_total fixture;
  castor::test_bench bench{fixture.dag};
  bench.execute(t0).expect_not_updated("total");
  bench.set("numbers", ints{1, 2}).execute(t0 + 1s).expect_sink("total", 3);
  CHECK(bench.updated("total"));
  CHECK(bench.sink_value<int>("total") == 3);
  bench.execute(t0 + 2s).expect_not_updated("total");
  bench.set("numbers", ints{4}).execute(t0 + 3s).expect_sink("total", 7);
}

TEST_CASE("the test bench reports failed expectations readably", "[test_bench]") {
  running_total fixture;
  castor::test_bench bench{fixture.dag};
  bench.set("numbers", ints{1, 2}).execute(t0);
  CHECK_THROWS_WITH(bench.expect_sink("total", 4),
                    "castor: sink 'total' in cycle 1: expected 4, got 3");
  CHECK_THROWS_WITH(bench.expect_not_updated("total"),
                    "castor: sink 'total' was updated in cycle 1");
  bench.execute(t0 + 1s);
  CHECK_THROWS_WITH(bench.expect_sink("total", 3),
                    "castor: sink 'total' was not updated in cycle 2 (expected 3)");
  CHECK_THROWS_WITH(bench.expect_sink("nope", 3), "castor: no sink named 'nope'");
  CHECK_THROWS_WITH(bench.sink_value<double>("total"),
                    "castor: sink 'total' holds int values, not double");
}

TEST_CASE("the test bench turns a failed cycle into a node_error", "[test_bench]") {
  castor::dag dag;
  auto src = dag.source_stream<ints>("numbers");
  dag.sink("checked", dag.stream([](const ints& in) {
                           if (in.size() > 2)
                             throw std::length_error("too many numbers");
                           return in;
                         })
                          .named("limit")
                          .map(src));
  castor::test_bench bench{dag};
  bench.execute(t0);
  try {
    bench.set(src, ints{1, 2, 3}).execute(t0 + 1s);
    FAIL("no node_error");
  } catch (const castor::node_error& e) {
    CHECK(e.failure().node == "limit");
    CHECK_THAT(e.what(), Catch::Contains("too many numbers"));
  }
  bench.set(src, ints{1}).execute(t0 + 2s).expect_sink("checked", ints{1});
}
