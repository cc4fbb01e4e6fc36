// SPDX-License-Identifier: Apache-2.0
// The at-least-once bookkeeping: what may be committed, and when.

#include "castor/commit_tracker.hpp"

#include <catch2/catch.hpp>

using castor::commit_tracker;

TEST_CASE("commit tracker: a batch becomes committable once all its records are "
          "delivered",
          "[core][commits]") {
  commit_tracker t;
  auto a = t.open({{0, 10}, {1, 5}}, 2);
  CHECK(t.committable().empty());
  t.delivered(a, true);
  CHECK(t.committable().empty());
  t.delivered(a, true);
  CHECK(t.committable() == std::vector<int64_t>{10, 5});
  CHECK(t.open_batches() == 0);
  CHECK(t.outstanding() == 0);
}

TEST_CASE("commit tracker: a later batch done first waits for the earlier ones",
          "[core][commits]") {
  commit_tracker t;
  auto a = t.open({{0, 10}}, 1);
  auto b = t.open({{0, 20}, {2, 7}}, 1);
  t.delivered(b, true);
  CHECK(t.committable().empty());
  t.delivered(a, true);
  CHECK(t.committable() == std::vector<int64_t>{20, -1, 7});
}

TEST_CASE("commit tracker: a batch with no records is done when its turn comes",
          "[core][commits]") {
  commit_tracker t;
  auto a = t.open({{0, 3}}, 1);
  t.open({{0, 9}}, 0);
  CHECK(t.committable().empty());
  t.delivered(a, true);
  CHECK(t.committable() == std::vector<int64_t>{9});
  t.open({{1, 4}}, 0);
  CHECK(t.committable() == std::vector<int64_t>{9, 4});
}

TEST_CASE("commit tracker: a failed record blocks every later commit",
          "[core][commits]") {
  commit_tracker t;
  auto a = t.open({{0, 10}}, 1);
  auto b = t.open({{0, 20}}, 2);
  auto c = t.open({{0, 30}}, 1);
  t.delivered(a, true);
  t.delivered(b, true);
  t.delivered(b, false);
  t.delivered(c, true);
  CHECK(t.committable() == std::vector<int64_t>{10});
  CHECK(t.blocked());
  CHECK(t.open_batches() == 2);
}

TEST_CASE("commit tracker: reports for unknown or finished batches change nothing",
          "[core][commits]") {
  commit_tracker t;
  auto a = t.open({{0, 1}}, 1);
  t.delivered(a, true);
  t.delivered(a, true);
  t.delivered(a + 5, false);
  CHECK(t.committable() == std::vector<int64_t>{1});
  CHECK_FALSE(t.blocked());
}

TEST_CASE("commit tracker: positions never move backwards", "[core][commits]") {
  commit_tracker t;
  t.open({{0, 10}}, 0);
  t.open({{0, 4}}, 0);
  CHECK(t.committable() == std::vector<int64_t>{10});
}
