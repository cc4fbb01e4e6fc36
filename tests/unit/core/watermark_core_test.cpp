// SPDX-License-Identifier: Apache-2.0
// The watermark orchestrator's core (docs/pipeline.md), without CAF or Kafka.

#include "castor/read_order.hpp"
#include "castor/watermark_core.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using castor::partition_bounds;
using castor::timestamp;

namespace {

const timestamp t0 = castor::from_millis(1'767'225'600'000);

// What the tests hold per message: "pid:offset".
using msg = std::string;
using core = castor::watermark_core<msg>;

msg id(uint32_t pid, int64_t offset) {
  return std::to_string(pid) + ":" + std::to_string(offset);
}

castor::watermark_config small(size_t batch_size = 100) {
  castor::watermark_config cfg;
  cfg.batch_size = batch_size;
  cfg.idle_timeout = 10s;
  return cfg;
}

void push(core& c, uint32_t pid, int64_t offset, timestamp ts, timestamp now = t0) {
  c.push(pid, offset, ts, id(pid, offset), now);
}

std::vector<msg> release_all(core& c) {
  std::vector<msg> out;
  while (c.release(out) > 0) {
  }
  return out;
}

} // namespace

TEST_CASE("releases messages at or before the watermark in timestamp order",
          "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  push(c, 0, 0, t0 + 1s);
  push(c, 0, 1, t0 + 4s);
  push(c, 1, 0, t0 + 2s);
  push(c, 1, 1, t0 + 3s);
  c.update(t0);
  // Partition 0 is at 4 s, partition 1 at 3 s: the watermark is 3 s.
  CHECK(c.watermark() == t0 + 3s);
  CHECK(release_all(c) == std::vector<msg>{"0:0", "1:0", "1:1"});
  CHECK(c.held() == 1);
  push(c, 1, 2, t0 + 5s);
  c.update(t0);
  CHECK(c.watermark() == t0 + 4s);
  CHECK(release_all(c) == std::vector<msg>{"0:1"});
}

TEST_CASE("ties break by partition (topic, partition) then offset", "[watermark]") {
  core c{{{0, 100}, {0, 100}, {0, 100}}, small(), t0};
  push(c, 2, 0, t0 + 1s);
  push(c, 1, 0, t0 + 1s);
  push(c, 1, 1, t0 + 1s);
  push(c, 0, 0, t0 + 1s);
  c.update(t0);
  // Each partition may still deliver more at 1 s: nothing sorts before
  // partition 0's bound but its own message.
  CHECK(release_all(c) == std::vector<msg>{"0:0"});
  // Every partition moves on: the tie at 1 s goes in (partition, offset)
  // order.
  push(c, 0, 1, t0 + 2s);
  push(c, 1, 2, t0 + 2s);
  push(c, 2, 1, t0 + 2s);
  c.update(t0);
  CHECK(release_all(c) == std::vector<msg>{"1:0", "1:1", "2:0", "0:1"});
}

TEST_CASE("a message at the watermark waits while a partition that sorts before it "
          "can still deliver at that time",
          "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  // Partition 1 is at 5 s; partition 0's latest is 5 s too and it holds
  // nothing: it may deliver another message at 5 s, which sorts first.
  push(c, 0, 0, t0 + 5s);
  push(c, 1, 0, t0 + 5s);
  c.update(t0);
  CHECK(release_all(c) == std::vector<msg>{"0:0"});
  CHECK(c.complete_until() == t0 + 5s - castor::duration{1});
  push(c, 0, 1, t0 + 5s);
  push(c, 0, 2, t0 + 6s);
  c.update(t0);
  CHECK(release_all(c) == std::vector<msg>{"0:1", "1:0"});
  // Partition 1 holds nothing and is at 5 s: 5 s is not complete yet.
  CHECK(c.complete_until() == t0 + 5s - castor::duration{1});
  push(c, 1, 1, t0 + 7s);
  c.update(t0);
  CHECK(release_all(c) == std::vector<msg>{"0:2"});
  CHECK(c.complete_until() == t0 + 6s - castor::duration{1});
}

TEST_CASE("releases at most batch_size messages per call", "[watermark]") {
  core c{{{0, 100}}, small(3), t0};
  for (int64_t i = 0; i < 7; ++i)
    push(c, 0, i, t0 + std::chrono::seconds{i});
  c.update(t0);
  std::vector<msg> out;
  CHECK(c.release(out) == 3);
  CHECK(c.release(out) == 3);
  CHECK(c.release(out) == 1);
  CHECK(c.release(out) == 0);
  CHECK(out.size() == 7);
}

TEST_CASE("a partition that has delivered nothing holds the watermark back",
          "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  push(c, 0, 0, t0 + 1s);
  c.update(t0 + 1s);
  CHECK_FALSE(c.has_watermark());
  CHECK_FALSE(c.releasable());
}

TEST_CASE("a partition that never delivers does not stall the others forever",
          "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  // Partition 0 delivers every second (the broker answers), 1 is silent.
  for (int64_t i = 0; i <= 9; ++i)
    push(c, 0, i, t0 + std::chrono::seconds{i + 1}, t0 + std::chrono::seconds{i});
  c.update(t0 + 9s);
  CHECK_FALSE(c.releasable());
  // Partition 1 has been silent for the idle timeout: it no longer counts.
  push(c, 0, 10, t0 + 11s, t0 + 10s);
  c.update(t0 + 10s);
  CHECK(c.idle(1));
  CHECK(c.watermark() == t0 + 11s);
  CHECK(release_all(c).size() == 11);
  // When it delivers again, it counts again.
  push(c, 1, 0, t0 + 12s, t0 + 11s);
  push(c, 0, 11, t0 + 14s, t0 + 11s);
  c.update(t0 + 11s);
  CHECK_FALSE(c.idle(1));
  CHECK(c.watermark() == t0 + 12s);
  CHECK(release_all(c) == std::vector<msg>{"1:0"});
}

TEST_CASE("time without any answer from the broker is not idleness: a freeze longer than "
          "the idle timeout keeps replay order",
          "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  push(c, 0, 0, t0 + 1s, t0);
  // The broker freezes for 35 s (idle timeout 10 s): nothing arrives.
  for (int s = 1; s <= 35; ++s)
    c.update(t0 + std::chrono::seconds{s});
  CHECK_FALSE(c.releasable());
  CHECK_FALSE(c.idle(1));
  CHECK(c.counters().idled == 0);
  CHECK(c.take_idled().empty());
  // Back: partition 1's older message still comes first.
  push(c, 1, 0, t0 + 500ms, t0 + 36s);
  push(c, 1, 1, t0 + 2s, t0 + 36s);
  c.update(t0 + 36s);
  CHECK(release_all(c) == std::vector<msg>{"1:0", "0:0"});
  CHECK(c.counters().late == 0);
}

TEST_CASE("a broker error stops the idle clock until the next answer", "[watermark]") {
  // Partition 0 answers every second; partition 1 is silent. Without the
  // error, partition 1 is idle at 10 s (idle timeout 10 s); the error at
  // 5.5 s drops the second from 5 to 6, so it is not idle yet at 10 s.
  auto run = [](bool trouble) {
    core c{{{0, 100}, {0, 100}}, small(), t0};
    for (int s = 0; s <= 10; ++s) {
      if (trouble && s == 6)
        c.broker_trouble();
      push(c, 0, s, t0 + std::chrono::seconds{s}, t0 + std::chrono::seconds{s});
      c.update(t0 + std::chrono::seconds{s});
    }
    return c.idle(1);
  };
  CHECK(run(false));
  CHECK_FALSE(run(true));
}

TEST_CASE("silence counts only while the partition's own broker answers", "[watermark]") {
  // Partitions 0 and 1 on broker 1, partition 2 on broker 2. Broker 2 is
  // down: partition 2 stays silent while broker 1 answers for partition 0.
  core c{{{0, 100, 1}, {0, 100, 1}, {0, 100, 2}}, small(), t0};
  for (int s = 0; s <= 30; ++s) {
    push(c, 0, s, t0 + std::chrono::seconds{s}, t0 + std::chrono::seconds{s});
    c.update(t0 + std::chrono::seconds{s});
  }
  CHECK(c.idle(1));       // its broker answered: idle
  CHECK_FALSE(c.idle(2)); // its broker did not: it holds the watermark back
  CHECK_FALSE(c.idle(0)); // it answers itself
  CHECK(c.take_idled() == std::vector<uint32_t>{1});
}

TEST_CASE("a partition that delivers just at the idle threshold is not idle",
          "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  for (int s = 0; s <= 9; ++s)
    push(c, 0, s, t0 + std::chrono::seconds{s}, t0 + std::chrono::seconds{s});
  // Partition 1 answers at 10 s, when its silence reaches the timeout.
  push(c, 1, 0, t0 + 10s, t0 + 10s);
  c.update(t0 + 10s);
  CHECK_FALSE(c.idle(1));
  CHECK(c.counters().idled == 0);
  CHECK(c.take_idled().empty());
}

TEST_CASE("a paused partition does not go idle", "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(1), t0}; // cap 5
  for (int64_t i = 0; i < 6; ++i)
    push(c, 0, i, t0 + std::chrono::hours{1} + std::chrono::seconds{i}, t0);
  push(c, 1, 0, t0 + 1s, t0);
  c.update(t0);
  REQUIRE(c.paused(0));
  // Partition 1 delivers every second; paused partition 0 is silent.
  for (int s = 1; s <= 30; ++s) {
    push(c, 1, s, t0 + std::chrono::seconds{s + 1}, t0 + std::chrono::seconds{s});
    c.update(t0 + std::chrono::seconds{s});
    std::vector<msg> out;
    c.release(out);
  }
  CHECK_FALSE(c.idle(0));
  CHECK(c.counters().idled == 0);
}

TEST_CASE("an empty partition is caught up at once and holds nothing back",
          "[watermark]") {
  core c{{{0, 100}, {5, 5}}, small(), t0};
  CHECK(c.caught_up(1));
  push(c, 0, 0, t0 + 1s);
  c.update(t0);
  CHECK(release_all(c) == std::vector<msg>{"0:0"});
}

TEST_CASE("end of partition marks a partition caught up", "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  push(c, 0, 0, t0 + 1s);
  c.update(t0);
  CHECK_FALSE(c.releasable());
  c.end_of_partition(1, t0);
  c.update(t0);
  CHECK(c.caught_up(1));
  CHECK(release_all(c) == std::vector<msg>{"0:0"});
}

TEST_CASE("a partition with exactly one message left is not caught up before it is read",
          "[watermark]") {
  // Offsets 0..2 to read (end offset 3).
  core c{{{0, 3}, {0, 100}}, small(), t0};
  push(c, 0, 0, t0 + 1s);
  push(c, 0, 1, t0 + 2s);
  c.update(t0);
  CHECK_FALSE(c.caught_up(0));
  CHECK(c.position(0) == 2);
  push(c, 0, 2, t0 + 3s);
  c.update(t0);
  CHECK(c.caught_up(0));
}

TEST_CASE(
    "a partition keeps offset order when timestamps go backwards, and the watermark "
    "never does",
    "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  push(c, 0, 0, t0 + 5s);
  push(c, 0, 1, t0 + 2s); // goes backwards
  push(c, 1, 0, t0 + 6s);
  c.update(t0);
  CHECK(c.watermark() == t0 + 5s);
  // Offset order within partition 0 is kept: 0:0 (5 s) before 0:1 (2 s).
  CHECK(release_all(c) == std::vector<msg>{"0:0", "0:1"});
  push(c, 0, 2, t0 + 1s);
  c.update(t0);
  CHECK(c.watermark() == t0 + 5s); // not moved back
  CHECK(release_all(c) == std::vector<msg>{"0:2"});
  CHECK(c.counters().late == 1);
}

TEST_CASE("a message behind a later one in its partition waits for it", "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  push(c, 0, 0, t0 + 9s);
  push(c, 0, 1, t0 + 1s);
  push(c, 1, 0, t0 + 3s);
  c.update(t0);
  CHECK(c.watermark() == t0 + 3s);
  // 0:1 is at 1 s but behind 0:0 (9 s) in offset order: it waits.
  CHECK(release_all(c) == std::vector<msg>{"1:0"});
  CHECK(c.held(0) == 2);
}

TEST_CASE("messages without timestamps follow their predecessor and hold nothing back",
          "[watermark]") {
  core c{{{0, 100}, {0, 100}}, small(), t0};
  c.push(0, 0, std::nullopt, "0:0", t0); // nothing seen yet: beginning of time
  push(c, 1, 0, t0 + 2s);
  c.update(t0);
  CHECK(c.watermark() == t0 + 2s);
  push(c, 0, 1, t0 + 3s);
  c.push(0, 2, std::nullopt, "0:2", t0); // takes 3 s
  push(c, 1, 1, t0 + 4s);
  c.update(t0);
  CHECK(release_all(c) == std::vector<msg>{"0:0", "1:0", "0:1", "0:2"});
}

TEST_CASE("pauses exactly when held reaches the cap, only partitions ahead of the "
          "watermark",
          "[watermark]") {
  // batch 2: cap 10. Partition 0 lags at 0..; partitions 1 and 2 run ahead.
  core c{{{0, 1000}, {0, 1000}, {0, 1000}}, small(2), t0};
  push(c, 0, 0, t0 + 1s);
  for (int64_t i = 0; i < 4; ++i)
    push(c, 1, i, t0 + 100s + std::chrono::seconds{i});
  for (int64_t i = 0; i < 4; ++i)
    push(c, 2, i, t0 + 200s + std::chrono::seconds{i});
  c.update(t0);
  CHECK(c.held() == 9);
  std::vector<msg> out;
  CHECK(c.release(out) == 1); // 0:0
  CHECK(c.take_pauses().empty());
  push(c, 0, 1, t0 + 2s);
  push(c, 0, 2, t0 + 2s);
  c.update(t0);
  CHECK(c.held() == 10);
  CHECK(c.watermark() == t0 + 2s);
  CHECK(c.take_pauses() == std::vector<uint32_t>{1, 2});
  CHECK(c.paused(1));
  CHECK(c.paused(2));
  CHECK_FALSE(c.paused(0));
  CHECK(c.counters().paused_partitions == 2);
}

TEST_CASE(
    "holds no more than the cap while partitions run ahead, and resumes each once the "
    "watermark catches up",
    "[watermark]") {
  core c{{{0, 1000}, {0, 1000}}, small(2), t0};
  for (int64_t i = 0; i < 12; ++i)
    push(c, 1, i, t0 + 50s + std::chrono::seconds{i});
  push(c, 0, 0, t0 + 1s);
  c.update(t0);
  CHECK(c.take_pauses() == std::vector<uint32_t>{1});
  // At the cap with nothing releasable beyond partition 0's message.
  std::vector<msg> out;
  c.release(out);
  CHECK_FALSE(c.releasable());
  CHECK(c.wants_more()); // the lagging partition must still deliver
  push(c, 0, 1, t0 + 55s);
  c.update(t0);
  CHECK(c.watermark() == t0 + 55s);
  CHECK(c.take_resumes().empty()); // partition 1 is at 61 s
  CHECK_FALSE(c.wants_more());     // at the cap with releasable messages
  while (c.release(out) > 0) {
  }
  push(c, 0, 2, t0 + 61s);
  c.update(t0);
  CHECK(c.take_resumes() == std::vector<uint32_t>{1});
  CHECK_FALSE(c.paused(1));
}

TEST_CASE("at the cap with the partitions that run ahead paused, the others still get "
          "a batch of credit",
          "[watermark]") {
  // batch 2: cap 10, limit 12. Partition 1 runs far ahead and fills the hold.
  core c{{{0, 1000}, {0, 1000}}, small(2), t0};
  for (int64_t i = 0; i < 12; ++i)
    push(c, 1, i, t0 + 500s + std::chrono::seconds{i});
  push(c, 0, 0, t0 + 1s);
  c.update(t0);
  CHECK(c.take_pauses() == std::vector<uint32_t>{1});
  std::vector<msg> out;
  c.release(out);
  CHECK(c.held() == 12);
  // Partition 0 holds the watermark back and has nothing held: a whole batch.
  CHECK(c.allowance() == 2);
  push(c, 0, 1, t0 + 2s);
  push(c, 0, 2, t0 + 3s);
  c.update(t0);
  CHECK(c.held() == 14); // cap + 2 x batch
  // Its two are releasable: no credit until they are released.
  CHECK(c.allowance() == 0);
  c.release(out);
  CHECK(c.allowance() == 2);
}

TEST_CASE("at the cap with many partitions, the ones furthest behind are read together: "
          "partitions x batch_size / cap of them",
          "[watermark]") {
  // batch 10: cap 50. 20 partitions, partition p's latest at p + 1 s: the
  // 4 furthest behind (20 x 10 / 50) stay read, the 16 ahead of them pause.
  std::vector<partition_bounds> bounds(20, {0, 1000});
  core c{bounds, small(10), t0};
  for (uint32_t pid = 0; pid < 20; ++pid)
    for (int64_t i = 0; i < 3; ++i)
      push(c, pid, i, t0 + std::chrono::seconds{pid + 1});
  c.update(t0);
  CHECK(c.held() == 60);
  CHECK(c.watermark() == t0 + 1s);
  std::vector<uint32_t> ahead;
  for (uint32_t pid = 4; pid < 20; ++pid)
    ahead.push_back(pid);
  CHECK(c.take_pauses() == ahead);
  // Partition 0 moves on to 6 s: partitions 1-4 are now the four furthest
  // behind; 4 resumes and 0, ahead of them, pauses.
  push(c, 0, 3, t0 + 6s);
  c.update(t0);
  CHECK(c.watermark() == t0 + 2s);
  CHECK(c.take_resumes() == std::vector<uint32_t>{4});
  CHECK(c.take_pauses() == std::vector<uint32_t>{0});
  CHECK(c.paused(5));
}

TEST_CASE("read_furthest_behind reads the partition furthest behind next, a chunk at a "
          "time, and passes over one that ran dry",
          "[watermark]") {
  // Partition 0 last read at 10 ms, 1 at 0 ms, 2 never; each message is
  // 4 ms after the one before, partition 2 has 2 left.
  std::vector<timestamp> behind{t0 + 10ms, t0, timestamp::min()};
  std::vector<int64_t> left{100, 100, 2};
  std::vector<uint32_t> order;
  std::vector<std::pair<timestamp, uint32_t>> heap;
  auto read = castor::read_furthest_behind(
      heap, {0, 1, 2}, behind, 12, [&](uint32_t pid, size_t max) {
        castor::chunk_read got;
        order.push_back(pid);
        for (; got.messages < max && left[pid] > 0; ++got.messages, --left[pid])
          got.last_time = (behind[pid] == timestamp::min() ? t0 : behind[pid]) + 4ms;
        return got;
      });
  // Chunks of 1 (12 / (4 x 3)): 2 (never read) first, then always the one
  // furthest behind (ties by pid); 2 runs dry on its third read and is
  // passed over; 0 joins once the others passed 10 ms.
  CHECK(read == 12);
  CHECK(order == std::vector<uint32_t>{2, 1, 1, 2, 1, 2, 0, 1, 0, 1, 0, 1, 0});
  CHECK(left[2] == 0);
}

TEST_CASE("read_round reads a first message of each partition not heard from, beside "
          "the credit, and counts a partition heard once it gave one or ended",
          "[watermark]") {
  // Partition 0 heard from (last read at 10 ms); 1 and 3 not, with data;
  // 2 not, with nothing fetched yet; 4 not, empty and at its end.
  std::vector<timestamp> behind(5, timestamp::min());
  behind[0] = t0 + 10ms;
  std::vector<bool> heard{true, false, false, false, false};
  std::vector<int64_t> left{100, 100, 0, 100, 0};
  std::vector<std::pair<uint32_t, size_t>> reads; // pid, max
  std::vector<std::pair<timestamp, uint32_t>> heap;
  auto read = [&](uint32_t pid, size_t max) {
    castor::chunk_read got;
    reads.emplace_back(pid, max);
    for (; got.messages < max && left[pid] > 0; ++got.messages, --left[pid])
      got.last_time = (behind[pid] == timestamp::min() ? t0 : behind[pid]) + 1ms;
    got.at_end = pid == 4;
    return got;
  };
  // A credit of 1 (at the cap): 1 and 3 give their first messages beside
  // it and the credit goes to nobody else (the firsts took it).
  auto n = castor::read_round(heap, {0, 1, 2, 3, 4}, heard, behind, 1, read);
  CHECK(n == 2);
  CHECK(reads ==
        std::vector<std::pair<uint32_t, size_t>>{{1, 1}, {2, 1}, {3, 1}, {4, 1}});
  CHECK(heard == std::vector<bool>{true, true, false, true, true});
  CHECK(behind[1] == t0 + 1ms);
  CHECK(behind[3] == t0 + 1ms);
  // Next round, credit 4: only 2 is asked for a first message (it still
  // had none); the 3 left go furthest behind first, a message at a time
  // (3 / (4 x 5)): 4 (never read: nothing, passed over), then 1, 2 and 3,
  // tied at 1 ms, in the order given.
  reads.clear();
  left[2] = 5;
  n = castor::read_round(heap, {0, 1, 2, 3, 4}, heard, behind, 4, read);
  CHECK(reads ==
        std::vector<std::pair<uint32_t, size_t>>{{2, 1}, {4, 1}, {1, 1}, {2, 1}, {3, 1}});
  CHECK(heard[2]);
  CHECK(n == 4);
}

namespace {

struct replay_run {
  size_t rounds = 0;
  size_t held_peak = 0;
  size_t held_bytes_peak = 0;
  bool within_bound = true;
  bool in_order = false;
  /// The round at whose end the watermark first existed (every partition
  /// replaying had delivered), 0 if never.
  size_t watermark_round = 0;
};

// Appends the ids of partitions [first, first + count) interleaved, the
// j-th message of each before the (j+1)-th of any: the release order of
// the replays below.
void append_interleaved(std::vector<msg>& out, uint32_t first, uint32_t count,
                        int64_t per_partition) {
  for (int64_t j = 0; j < per_partition; ++j)
    for (uint32_t pid = first; pid < first + count; ++pid)
      out.push_back(id(pid, j));
}

// Replays `sizes[p]` messages of each partition p of `c`, the j-th at
// `stamp(p, j)`: each round the consumer sends what the
// allowance lets it, read as castor's consumer reads
// (read_round), of what librdkafka has fetched by then
// (`fetch(round, fetched, next)` raises `fetched`, per partition, `next`
// being what was read); the held
// messages are checked against the bound of docs/pipeline.md after every
// round. Released in order: `expected`. With `bytes`, the j-th message of p
// has `bytes(p, j)` bytes and the consumer's credit is in units of the hold
// (the core's unit_bytes), at most `message_units` per message: the bound is
// then in units, one largest message per partition beyond the batches.
template <class Stamp, class Fetch>
replay_run drive_replay(core& c, const std::vector<int64_t>& sizes, size_t batch,
                        Stamp stamp, Fetch fetch, const std::vector<msg>& expected,
                        const std::function<size_t(uint32_t, int64_t)>& bytes = nullptr,
                        size_t message_units = 1) {
  auto partitions = static_cast<uint32_t>(c.partitions());
  std::vector<int64_t> next(partitions, 0);
  std::vector<int64_t> fetched(partitions, 0);
  std::vector<timestamp> behind(partitions, timestamp::min());
  std::vector<bool> heard(partitions, false);
  std::vector<uint32_t> largest(partitions, 1);
  std::vector<std::pair<timestamp, uint32_t>> heap;
  std::vector<msg> out;
  replay_run run;
  while (out.size() < expected.size() && run.rounds < 100'000) {
    ++run.rounds;
    fetch(run.rounds, fetched, std::as_const(next));
    std::vector<uint32_t> readable;
    for (uint32_t pid = 0; pid < partitions; ++pid)
      if (!c.paused(pid) && next[pid] < sizes[pid])
        readable.push_back(pid);
    auto read = [&](uint32_t pid, size_t max) {
      castor::chunk_read got;
      // As the consumer reads: in units of the hold with unit_bytes.
      auto read_some = [&](size_t ask) {
        castor::unit_chunk some;
        for (; some.messages < ask && next[pid] < std::min(fetched[pid], sizes[pid]);
             ++next[pid], ++some.messages) {
          auto j = next[pid];
          auto size = bytes ? bytes(pid, j) : 0;
          c.push(pid, j, stamp(pid, j), id(pid, j), t0, size);
          auto u = castor::hold_units(size, c.config().unit_bytes);
          some.units += u;
          some.largest = std::max(some.largest, u);
          got.last_time = stamp(pid, j);
        }
        return some;
      };
      got.messages = c.config().unit_bytes == 0
                         ? read_some(max).messages
                         : castor::read_in_units(max, largest[pid], read_some);
      if (next[pid] == sizes[pid]) {
        c.end_of_partition(pid, t0);
        got.at_end = true;
      }
      return got;
    };
    castor::read_round(heap, readable, heard, behind, c.allowance(), read);
    c.update(t0);
    run.held_peak = std::max(run.held_peak, c.held());
    run.held_bytes_peak = std::max<size_t>(run.held_bytes_peak, c.counters().held_bytes);
    run.within_bound =
        run.within_bound && c.held_units() <= 8 * batch + partitions * message_units;
    if (run.watermark_round == 0 && c.has_watermark())
      run.watermark_round = run.rounds;
    while (c.release(out) > 0) {
    }
  }
  run.in_order = out == expected;
  return run;
}

// The same with `per_partition` messages in each partition.
template <class Stamp, class Fetch>
replay_run drive_replay(core& c, int64_t per_partition, size_t batch, Stamp stamp,
                        Fetch fetch, const std::vector<msg>& expected) {
  return drive_replay(c, std::vector<int64_t>(c.partitions(), per_partition), batch, stamp,
                      fetch, expected);
}

// `partitions` partitions of `per_partition` messages each, interleaved:
// partition p's j-th at j * partitions + p ms, replayed at `batch`. With
// `fetch`, the messages come as librdkafka fetches them: each round a
// fetch adds `fetch` messages to the prefetch of 1 partition in 8 (in
// turn), and a read takes only what is prefetched.
replay_run interleaved_replay(uint32_t partitions, int64_t per_partition, size_t batch,
                              int64_t fetch = 0) {
  std::vector<partition_bounds> bounds(partitions, {0, per_partition});
  core c{bounds, small(batch), t0};
  auto stamp = [&](uint32_t pid, int64_t j) {
    return t0 + std::chrono::milliseconds{j * partitions + pid};
  };
  auto fetches = [&](size_t round, std::vector<int64_t>& fetched,
                     const std::vector<int64_t>& next) {
    if (fetch == 0)
      std::fill(fetched.begin(), fetched.end(), per_partition);
    else
      for (auto pid = static_cast<uint32_t>(round % 8); pid < partitions; pid += 8)
        fetched[pid] = std::max(fetched[pid], next[pid] + fetch);
  };
  std::vector<msg> expected;
  append_interleaved(expected, 0, partitions, per_partition);
  return drive_replay(c, per_partition, batch, stamp, fetches, expected);
}

} // namespace

TEST_CASE("a replay of many interleaved partitions read furthest behind first releases "
          "a batch per round trip and stays below the cap",
          "[watermark]") {
  // 64 partitions of 200, batch 100: cap 500, about 8 per partition.
  auto run = interleaved_replay(64, 200, 100);
  // An even share of the credit from each partition read took 2,128 rounds
  // of 6 messages here, at the cap (the shares carried partitions past
  // each other while the one furthest behind got one message a round).
  INFO(run.rounds << " rounds, held peak " << run.held_peak);
  CHECK(run.in_order);
  CHECK(run.rounds <= 2 * 64 * 200 / 100);
  CHECK(run.held_peak < 500);
}

TEST_CASE("a replay of many partitions fetched in chunks stays within the bound, in "
          "order, and at the cap reads the partitions furthest behind together",
          "[watermark]") {
  // 64 partitions of 400, batch 100 (cap 500), each fetched 40 at a time,
  // 1 partition in 8 per round: the ones fetched last hold the watermark
  // back while the others fill the hold.
  auto run = interleaved_replay(64, 400, 100, 40);
  INFO(run.rounds << " rounds, held peak " << run.held_peak);
  CHECK(run.in_order);
  CHECK(run.within_bound);
  CHECK(run.held_peak >= 500); // at the cap, where the pause line counts
  // 310 rounds (274 before the credit kept to the cap while a partition
  // had delivered nothing: these arrive 1 in 8 per round; 331 before each
  // read took a first message of every partition silent); pausing every
  // partition ahead of the watermark, 2,738 (the
  // one partition read moved the watermark a millisecond per round trip).
  CHECK(run.rounds <= 600);
}

TEST_CASE("partitions whose first fetch comes after the hold is full all deliver in the "
          "next round trip, not one per round trip",
          "[watermark]") {
  // 256 interleaved partitions of 100, batch 1000 (cap 5000): librdkafka's
  // first fetches bring 0-127, which fill the hold in 5 rounds; 128-255
  // come in round 8. At the cap the credit is one message, and each of
  // 128-255 delivered its first in a round trip of its own: the watermark
  // came in round 135. Then the hold sat at its bound, full of messages
  // waiting for 128-255, each of which, holding one message, was paused as
  // stuck: a message per round trip, 3,979 rounds in all (29 now that the
  // partitions behind the pause line are not paused as stuck).
  const uint32_t partitions = 256;
  const int64_t per_partition = 100;
  std::vector<partition_bounds> bounds(partitions, {0, per_partition});
  core c{bounds, small(1000), t0};
  auto stamp = [&](uint32_t pid, int64_t j) {
    return t0 + std::chrono::milliseconds{j * partitions + pid};
  };
  auto fetches = [&](size_t round, std::vector<int64_t>& fetched,
                     const std::vector<int64_t>&) {
    for (uint32_t pid = 0; pid < partitions; ++pid)
      if (pid < partitions / 2 || round >= 8)
        fetched[pid] = per_partition;
  };
  std::vector<msg> expected;
  append_interleaved(expected, 0, partitions, per_partition);
  auto run = drive_replay(c, per_partition, 1000, stamp, fetches, expected);
  INFO(run.rounds << " rounds, held peak " << run.held_peak << ", watermark in round "
                  << run.watermark_round);
  CHECK(run.in_order);
  CHECK(run.within_bound);
  CHECK(run.watermark_round == 8);
  CHECK(run.rounds <= 60);
}

TEST_CASE("a partition an hour behind whose backlog comes after the others filled the "
          "hold is read a batch at a time, not a message per round trip",
          "[watermark]") {
  // 20 interleaved partitions of 100 (t = 20 j + p ms) and partition 20,
  // 200 messages an hour earlier (1 ms apart), of which librdkafka has one
  // at first and the rest from round 20; batch 20 (cap 100). 129 rounds
  // when the partitions behind the pause line were paused as stuck; 318
  // when they were not but the room still counted only paused partitions
  // as stuck (what they held took the room the one an hour behind needed:
  // 199 rounds of a message each); 122 now.
  const uint32_t partitions = 21;
  std::vector<partition_bounds> bounds(partitions, {0, 100});
  bounds[20] = {0, 200};
  core c{bounds, small(20), t0};
  auto stamp = [&](uint32_t pid, int64_t j) {
    return pid == 20 ? t0 - 1h + std::chrono::milliseconds{j}
                     : t0 + std::chrono::milliseconds{j * 20 + pid};
  };
  auto fetches = [&](size_t round, std::vector<int64_t>& fetched,
                     const std::vector<int64_t>&) {
    for (uint32_t pid = 0; pid < 20; ++pid)
      fetched[pid] = 100;
    fetched[20] = round >= 20 ? 200 : 1;
  };
  // The hour behind first, then the 20 interleaved.
  std::vector<msg> expected;
  for (int64_t j = 0; j < 200; ++j)
    expected.push_back(id(20, j));
  append_interleaved(expected, 0, 20, 100);
  std::vector<int64_t> sizes(partitions, 100);
  sizes[20] = 200;
  auto run = drive_replay(c, sizes, 20, stamp, fetches, expected);
  INFO(run.rounds << " rounds, held peak " << run.held_peak);
  CHECK(run.in_order);
  CHECK(run.within_bound);
  CHECK(run.rounds <= 150);
}

namespace {

// A skewed replay as librdkafka may deliver it: 4 partitions three hours
// ahead of 4 others, `per_partition` messages each (2 ms apart), read as
// castor's consumer reads. librdkafka's first fetches bring only the ones
// ahead: partition 0 alone for 4 rounds, then 1, 2 and 3 one round apart,
// the 4 behind from round 8 on. `rebalanced`: with a group, the 8 were
// assigned, delivered a message each (a second before the replay's
// first), were revoked and are assigned again from offset 0: the
// watermark of before stays, and the partitions hold it back again.
// `unit_bytes`, `bytes`, `message_units`: as for drive_replay.
replay_run skewed_replay(int64_t per_partition, size_t batch, bool rebalanced = false,
                         size_t unit_bytes = 0,
                         const std::function<size_t(uint32_t, int64_t)>& bytes = nullptr,
                         size_t message_units = 1) {
  const uint32_t partitions = 8;
  std::vector<partition_bounds> bounds(partitions, {0, per_partition});
  auto cfg = small(batch);
  cfg.group = rebalanced;
  cfg.unit_bytes = unit_bytes;
  core c{bounds, cfg, t0};
  if (rebalanced) {
    for (uint32_t pid = 0; pid < partitions; ++pid)
      c.assign(pid, 0, per_partition);
    c.assignment_received();
    for (uint32_t pid = 0; pid < partitions; ++pid)
      push(c, pid, 0, t0 - 1s);
    c.update(t0);
    release_all(c);
    REQUIRE(c.has_watermark());
    for (uint32_t pid = 0; pid < partitions; ++pid) {
      c.revoke(pid);
      c.assign(pid, 0, per_partition);
    }
    c.assignment_received();
    c.update(t0);
  }
  auto stamp = [&](uint32_t pid, int64_t j) {
    auto skew = pid < 4 ? std::chrono::milliseconds{3h} : 0ms;
    return t0 + skew + std::chrono::milliseconds{j * 8 + pid * 2};
  };
  const std::vector<size_t> arrives{1, 5, 6, 7, 8, 8, 8, 8};
  auto fetches = [&](size_t round, std::vector<int64_t>& fetched,
                     const std::vector<int64_t>&) {
    for (uint32_t pid = 0; pid < partitions; ++pid)
      if (round >= arrives[pid])
        fetched[pid] = per_partition;
  };
  // The 4 behind, then the 4 three hours ahead.
  std::vector<msg> expected;
  append_interleaved(expected, 4, 4, per_partition);
  append_interleaved(expected, 0, 4, per_partition);
  return drive_replay(c, std::vector<int64_t>(partitions, per_partition), batch, stamp,
                      fetches, expected, bytes, message_units);
}

} // namespace

TEST_CASE("a skewed replay whose first fetches bring only the partitions ahead still "
          "reads the ones behind a batch at a time",
          "[watermark]") {
  // batch 100: cap 500. Before the 4 behind deliver, the 4 ahead took the
  // whole bound of then (cap + 2 x batch) and the 4 behind then got a credit of 1
  // per round trip for the rest of the replay: one message, one pause and
  // one resume per round (castor_bench case 5, 47 s instead of 1 s).
  auto rebalanced = GENERATE(false, true);
  auto run = skewed_replay(2500, 100, rebalanced);
  INFO((rebalanced ? "after a rebalance: " : "")
       << run.rounds << " rounds, held peak " << run.held_peak);
  CHECK(run.in_order);
  CHECK(run.within_bound);
  CHECK(run.rounds <= 2 * 8 * 2500 / 100);
}

TEST_CASE("with unit_bytes, a skewed replay of messages of many sizes holds the bound in "
          "units: its bytes, not only its messages, stay bounded",
          "[watermark]") {
  // Messages of 1 to 2,000 bytes, a unit per 100 started (up to 20 a
  // message), batch 100 (cap 500 units). Counted in messages, the hold
  // takes 800 messages of any size, some 800 KB here.
  std::mt19937 rng{18};
  std::vector<std::vector<size_t>> sizes(8);
  for (auto& p : sizes)
    for (int j = 0; j < 2500; ++j)
      p.push_back(std::uniform_int_distribution<size_t>{1, 2000}(rng));
  auto bytes = [&](uint32_t pid, int64_t j) { return sizes[pid][j]; };
  const size_t bound = 8 * 100 * 100 + 8 * 2000;
  auto run = skewed_replay(2500, 100, false, 100, bytes, 20);
  INFO(run.rounds << " rounds, held peak " << run.held_peak << " messages, "
                  << run.held_bytes_peak << " bytes");
  CHECK(run.in_order);
  CHECK(run.within_bound);
  CHECK(run.held_bytes_peak <= bound);
  CHECK(run.held_bytes_peak >= 500 * 100); // at the cap
  // About a batch of units a round trip, as the replay in messages above.
  size_t units = 0;
  for (auto& p : sizes)
    for (auto n : p)
      units += castor::hold_units(n, 100);
  CHECK(run.rounds <= 2 * units / 100);
  // Counted in messages, the same replay holds past it.
  auto messages = skewed_replay(2500, 100, false, 0, bytes);
  INFO("in messages: held peak " << messages.held_bytes_peak << " bytes");
  CHECK(messages.in_order);
  CHECK(messages.held_bytes_peak > bound);
}

TEST_CASE("with unit_bytes below every message's size (a tiny budget, large messages), "
          "a skewed replay still finishes in order, a message per release",
          "[watermark]") {
  // Each message 50,000 units, a batch 100, the cap 500: every message
  // takes more than the cap alone.
  auto bytes = [](uint32_t, int64_t) { return size_t{50'000}; };
  auto run = skewed_replay(50, 100, false, 1, bytes, 50'000);
  INFO(run.rounds << " rounds, held peak " << run.held_peak << " messages");
  CHECK(run.in_order);
  CHECK(run.within_bound);
  CHECK(run.held_peak <= 1 + 8); // the one over the bound, a message per partition
  CHECK(run.rounds <= 2 * 8 * 50);
}

TEST_CASE("with unit_bytes, a message counts a unit per unit_bytes started and the cap "
          "and a release count units",
          "[watermark]") {
  CHECK(castor::hold_units(0, 100) == 1);
  CHECK(castor::hold_units(100, 100) == 1);
  CHECK(castor::hold_units(101, 100) == 2);
  CHECK(castor::hold_units(5000, 0) == 1);
  auto cfg = small(10); // cap 50 units
  cfg.unit_bytes = 100;
  core c{{{0, 100}, {0, 100}}, cfg, t0};
  c.push(1, 0, t0, id(1, 0), t0, 0); // 1 unit
  for (int64_t j = 0; j < 16; ++j)   // 3 units each: 48
    c.push(0, j, t0 + std::chrono::milliseconds{j + 1}, id(0, j), t0, 250);
  c.update(t0);
  CHECK(c.held_units() == 49);
  CHECK(c.held() == 17);
  CHECK(c.counters().held_bytes == 16 * 250);
  CHECK_FALSE(c.paused(0));
  c.push(0, 16, t0 + 17ms, id(0, 16), t0, 250);
  c.update(t0);
  CHECK(c.held_units() == 52);
  CHECK(c.paused(0)); // at the cap in units, at 18 messages
  std::vector<msg> out;
  CHECK(c.release(out) == 1); // 1:0; then partition 1 (latest t0) holds it back
  c.push(1, 1, t0 + 1h, id(1, 1), t0, 0);
  c.update(t0);
  // A release takes no more than a batch of units: 3 messages of 3 (a
  // fourth would make 12).
  CHECK(c.release(out) == 3);
  CHECK(c.held_units() == 52 - 1 + 1 - 9);
  CHECK(c.counters().held_bytes == 14 * 250);
  CHECK_FALSE(c.paused(0)); // below the cap, behind the watermark's line
  // A message larger than a batch goes alone.
  core big{{{0, 10}}, cfg, t0};
  big.push(0, 0, t0, id(0, 0), t0, 5000);
  big.push(0, 1, t0 + 1ms, id(0, 1), t0, 10);
  big.update(t0);
  CHECK(big.held_units() == 51);
  out.clear();
  CHECK(big.release(out) == 1);
  CHECK(out == std::vector<msg>{"0:0"});
}

TEST_CASE("hold_unit_bytes keeps the hold, the releases in flight and a waiting "
          "timestamp within a quarter of the budget",
          "[watermark]") {
  castor::watermark_config cfg; // batch 5000: bound 25,000 + 6 x 5,000 units
  CHECK(cfg.units_bound(2) == 55'000);
  CHECK(castor::hold_unit_bytes(0, cfg, 2) == 0);
  auto unit = castor::hold_unit_bytes(size_t{256} << 20, cfg, 2);
  CHECK(unit == (size_t{256} << 20) / 4 / 55'000);
  CHECK(unit * cfg.units_bound(2) <= (size_t{256} << 20) / 4);
  CHECK(castor::hold_unit_bytes(1, cfg, 2) == 1);
}

TEST_CASE("switches to live when every partition is caught up, then releases everything "
          "in timestamp order",
          "[watermark]") {
  core c{{{0, 2}, {0, 1}}, small(), t0};
  push(c, 0, 0, t0 + 1s);
  push(c, 1, 0, t0 + 3s);
  c.update(t0);
  CHECK_FALSE(c.live());
  push(c, 0, 1, t0 + 2s);
  c.update(t0);
  CHECK(c.live());
  CHECK(c.take_went_live());
  CHECK_FALSE(c.take_went_live());
  CHECK(release_all(c) == std::vector<msg>{"0:0", "0:1", "1:0"});
  // Live: new messages are released as they arrive, in timestamp order.
  push(c, 1, 1, t0 + 10s);
  push(c, 0, 2, t0 + 9s);
  c.update(t0);
  CHECK(release_all(c) == std::vector<msg>{"0:2", "1:1"});
}

TEST_CASE("going live resumes paused partitions", "[watermark]") {
  core c{{{0, 1}, {0, 100}}, small(1), t0};
  for (int64_t i = 0; i < 5; ++i)
    push(c, 1, i, t0 + 50s + std::chrono::seconds{i});
  c.update(t0);
  CHECK_FALSE(c.has_watermark());
  CHECK(c.take_pauses() == std::vector<uint32_t>{1});
  c.end_of_partition(1, t0);
  push(c, 0, 0, t0 + 1s);
  c.update(t0);
  CHECK(c.live());
  CHECK(c.take_resumes() == std::vector<uint32_t>{1});
}

TEST_CASE("when live, the consumer may send more only below the cap", "[watermark]") {
  core c{{{0, 0}}, small(1), t0};
  CHECK(c.live());
  for (int64_t i = 0; i < 5; ++i)
    push(c, 0, i, t0 + 1s);
  c.update(t0);
  CHECK_FALSE(c.wants_more());
  std::vector<msg> out;
  c.release(out);
  CHECK(c.wants_more());
}

TEST_CASE("the release order is one and the same whatever the interleavings, chunks and "
          "batch sizes the messages come in",
          "[watermark][randomized]") {
  std::mt19937_64 rng{20261201};
  auto below = [&](uint64_t n) { return rng() % n; };
  for (int round = 0; round < 300; ++round) {
    // 2-5 partitions of messages whose timestamps never go back and tie
    // often, within and across partitions.
    auto partitions = 2 + below(4);
    std::vector<std::vector<timestamp>> stamps(partitions);
    for (auto& p : stamps) {
      auto count = below(40);
      auto t = t0 + std::chrono::milliseconds{below(3)};
      for (uint64_t i = 0; i < count; ++i) {
        t += std::chrono::milliseconds{below(3) == 0 ? 1 : 0};
        p.push_back(t);
      }
    }
    // The one order: (timestamp, partition, offset).
    std::vector<std::tuple<timestamp, uint32_t, int64_t>> keys;
    for (uint32_t pid = 0; pid < partitions; ++pid)
      for (int64_t o = 0; o < static_cast<int64_t>(stamps[pid].size()); ++o)
        keys.emplace_back(stamps[pid][static_cast<size_t>(o)], pid, o);
    std::sort(keys.begin(), keys.end());
    std::vector<msg> expected;
    for (auto& [t, pid, o] : keys)
      expected.push_back(id(pid, o));
    // Delivered in random chunks from random partitions, released at random
    // moments with a random batch size.
    std::vector<castor::partition_bounds> bounds;
    for (auto& p : stamps)
      bounds.push_back({0, static_cast<int64_t>(p.size())});
    auto cfg = small(1 + below(20));
    core c{bounds, cfg, t0};
    std::vector<size_t> next(partitions, 0);
    std::vector<msg> out;
    auto left = [&] {
      for (uint32_t pid = 0; pid < partitions; ++pid)
        if (next[pid] < stamps[pid].size())
          return true;
      return false;
    };
    while (left()) {
      auto pid = static_cast<uint32_t>(below(partitions));
      auto chunk = 1 + below(8);
      for (; chunk > 0 && next[pid] < stamps[pid].size(); --chunk, ++next[pid])
        c.push(pid, static_cast<int64_t>(next[pid]), stamps[pid][next[pid]],
               id(pid, static_cast<int64_t>(next[pid])), t0);
      c.update(t0);
      for (auto releases = below(3); releases > 0; --releases)
        c.release(out);
    }
    while (c.release(out) > 0) {
    }
    for (uint32_t pid = 0; pid < partitions; ++pid)
      c.end_of_partition(pid, t0);
    c.update(t0);
    while (c.release(out) > 0) {
    }
    INFO("round " << round << ", " << partitions << " partitions, batch size "
                  << cfg.batch_size);
    REQUIRE(out == expected);
  }
}

TEST_CASE("complete_until stays at the watermark in replay when the only other partition "
          "is idle",
          "[watermark]") {
  // Partition 0 replays [0, 11) and catches up; partition 1 has 100 to
  // replay but is silent (idle).
  core c{{{0, 11}, {0, 100}}, small(), t0};
  for (int64_t i = 0; i <= 9; ++i)
    push(c, 0, i, t0 + std::chrono::seconds{i + 1}, t0 + std::chrono::seconds{i});
  push(c, 0, 10, t0 + 11s, t0 + 10s);
  c.update(t0 + 10s);
  REQUIRE(c.idle(1));
  REQUIRE_FALSE(c.live());
  release_all(c);
  CHECK(c.complete_until() != timestamp::max());
}

TEST_CASE("many messages at one timestamp pause their partition at the cap: the hold "
          "stays bounded",
          "[watermark]") {
  auto cfg = small(10); // cap 50
  core c{{{0, 1000000}, {0, 1000000}}, cfg, t0};
  push(c, 0, 0, t0 + 1s);
  c.update(t0);
  std::vector<msg> out;
  c.release(out);
  // Partition 1 delivers many at the same time as partition 0's latest.
  int64_t off = 0;
  // The consumer reads partition 1 while it is not paused.
  for (int round = 0; round < 1000 && c.allowance() > 0 && !c.paused(1); ++round) {
    auto n = c.allowance();
    for (size_t k = 0; k < n; ++k)
      push(c, 1, off++, t0 + 1s);
    c.update(t0);
    out.clear();
    c.release(out);
  }
  INFO("held " << c.held() << " paused1 " << c.paused(1) << " allowance "
               << c.allowance());
  CHECK(c.paused(1));
  CHECK(c.held() <= 5 * 10 + 2 * 10);
  // Partition 0 moves on: partition 1's messages can go, and it resumes.
  push(c, 0, 1, t0 + 2s);
  c.update(t0);
  out.clear();
  while (c.release(out) > 0) {
  }
  CHECK_FALSE(c.paused(1));
  CHECK(c.held() == 1);
}

// -- group assignment ------------------------------------------------------------

namespace {

castor::watermark_config grouped(size_t batch_size = 100) {
  auto cfg = small(batch_size);
  cfg.group = true;
  return cfg;
}

} // namespace

TEST_CASE("with a group, nothing is owned and nothing goes live before the first "
          "assignment",
          "[watermark][group]") {
  core c{{{0, 10, 1}, {0, 10, 1}}, grouped(), t0};
  CHECK(c.owned_partitions() == 0);
  c.update(t0);
  CHECK_FALSE(c.live());
  c.assignment_received();
  c.update(t0);
  // An empty assignment: an instance that reads nothing is not live.
  CHECK_FALSE(c.live());
  c.assign(1, 10, 10);
  c.assignment_received();
  c.update(t0);
  CHECK(c.live());
}

TEST_CASE("with a group, revoking every owned partition during replay does not make "
          "the core live",
          "[watermark][group]") {
  core c{{{0, 10, 1}, {0, 10, 1}}, grouped(), t0};
  c.assign(0, 0, 10);
  c.assign(1, 0, 10);
  c.assignment_received();
  push(c, 0, 0, t0 + 1ms);
  c.update(t0);
  c.revoke(0);
  c.revoke(1);
  c.update(t0);
  CHECK_FALSE(c.live());
  CHECK(c.complete_until() == c.watermark());
  // An eager round: everything back, replayed in order.
  c.assign(0, 1, 10);
  c.assign(1, 0, 10);
  c.assignment_received();
  c.update(t0);
  CHECK_FALSE(c.live());
}

TEST_CASE("partitions the group did not assign hold nothing back", "[watermark][group]") {
  core c{{{0, 10, 1}, {0, 10, 1}, {0, 10, 1}}, grouped(), t0};
  c.assign(0, 0, 10);
  c.assign(2, 0, 10);
  c.assignment_received();
  push(c, 0, 0, t0 + 1ms);
  push(c, 2, 0, t0 + 2ms);
  push(c, 2, 1, t0 + 3ms);
  c.update(t0);
  CHECK(c.watermark() == t0 + 1ms);
  std::vector<msg> out;
  c.release(out);
  // Partition 1 (not owned) does not hold back what 0 and 2 bound.
  CHECK(out == std::vector<msg>{"0:0"});
  CHECK_FALSE(c.live());
  // Only owned partitions must catch up for the switch to live.
  push(c, 0, 9, t0 + 4ms);
  c.end_of_partition(2, t0);
  push(c, 2, 9, t0 + 5ms);
  c.update(t0);
  CHECK(c.live());
}

TEST_CASE("a revoked partition's held messages are dropped and counted, its pause "
          "cleared, and it holds nothing back",
          "[watermark][group]") {
  core c{{{0, 100, 1}, {0, 100, 1}}, grouped(1), t0};
  c.assign(0, 0, 100);
  c.assign(1, 0, 100);
  c.assignment_received();
  push(c, 0, 0, t0 + 1ms);
  for (int64_t o = 0; o < 6; ++o)
    push(c, 1, o, t0 + 10ms + std::chrono::milliseconds{o});
  c.update(t0);
  // Partition 1 runs ahead with the hold at its cap (5): paused.
  CHECK(c.paused(1));
  CHECK(c.counters().paused_partitions == 1);
  CHECK(c.revoke(1) == 6);
  CHECK_FALSE(c.owned(1));
  CHECK_FALSE(c.paused(1));
  CHECK(c.counters().paused_partitions == 0);
  CHECK(c.held() == 1);
  CHECK(c.held(1) == 0);
  CHECK(c.counters().revoked_dropped == 6);
  CHECK(c.dropped(1) == 6);
  CHECK(c.received(1) == 6);
  // Revoking again drops nothing.
  CHECK(c.revoke(1) == 0);
  // Partition 0 alone bounds the release now: its own message goes once its
  // position passes it (a later message).
  push(c, 0, 1, t0 + 2ms);
  c.update(t0);
  std::vector<msg> out;
  c.release(out);
  CHECK(out == std::vector<msg>{"0:0"});
  // No resume is asked for a revoked partition.
  CHECK(c.take_resumes().empty());
}

TEST_CASE("with unit_bytes, revoking a partition frees its units and bytes, and an "
          "assignment again starts from none",
          "[watermark][group]") {
  auto cfg = grouped(10); // cap 50 units
  cfg.unit_bytes = 100;
  core c{{{0, 100, 1}, {0, 100, 1}}, cfg, t0};
  c.assign(0, 0, 100);
  c.assign(1, 0, 100);
  c.assignment_received();
  c.push(0, 0, t0 + 1ms, id(0, 0), t0, 150); // 2 units
  for (int64_t o = 0; o < 20; ++o)           // 3 units each
    c.push(1, o, t0 + 10ms + std::chrono::milliseconds{o}, id(1, o), t0, 250);
  c.update(t0);
  CHECK(c.held_units() == 62);
  CHECK(c.paused(1));
  CHECK(c.allowance() == 0); // at the cap, the watermark's 0:0 releasable
  CHECK(c.revoke(1) == 20);
  CHECK(c.held_units() == 2);
  CHECK(c.counters().held_bytes == 150);
  CHECK(c.allowance() == 10);
  c.assign(1, 20, 100);
  c.assignment_received();
  c.push(1, 20, t0 + 5ms, id(1, 20), t0, 1000); // 10 units
  c.update(t0);
  CHECK(c.held_units() == 12);
  CHECK(c.counters().held_bytes == 1150);
  std::vector<msg> out;
  while (c.release(out) > 0) {
  }
  CHECK(out == std::vector<msg>{"0:0"});
  CHECK(c.held_units() == 10);
  CHECK(c.counters().held_bytes == 1000);
}

TEST_CASE("read_in_units asks for the units left at the messages' recent size: within "
          "the credit plus a message while sizes do not grow, back to many a call after "
          "a large one",
          "[watermark]") {
  // A partition of `units[i]` units each; reads from `next`.
  auto drive = [](const std::vector<size_t>& sizes, size_t& next, size_t max,
                  uint32_t& largest, size_t& calls) {
    return castor::read_in_units(max, largest, [&](size_t ask) {
      ++calls;
      castor::unit_chunk got;
      for (; got.messages < ask && next < sizes.size(); ++next, ++got.messages) {
        got.units += sizes[next];
        got.largest = std::max(got.largest, sizes[next]);
      }
      got.stop = next == sizes.size();
      return got;
    });
  };
  uint32_t largest = 1;
  size_t next = 0;
  size_t calls = 0;
  // Uniform: 7 units a message, credit 100. The first call asks for 100
  // messages (nothing seen yet): at most 100 messages' worth.
  std::vector<size_t> uniform(1000, 7);
  CHECK(drive(uniform, next, 100, largest, calls) == 700);
  CHECK(largest == 7);
  // From then on within the credit plus a message: 14 + 1 messages.
  auto before = next;
  CHECK(drive(uniform, next, 100, largest, calls) == 105);
  CHECK(next - before == 15);
  // Smaller messages after larger ones: still within the credit.
  std::vector<size_t> shrinking(500, 2);
  next = 0;
  largest = 7;
  auto got = drive(shrinking, next, 100, largest, calls);
  CHECK(got >= 100);
  CHECK(got <= 100 + 2);
  // After a message of 782 units (1 MB at the default unit), small ones:
  // the estimate halves each call, so the credit of 1,250 takes a dozen
  // calls, not one per message.
  std::vector<size_t> small(5000, 1);
  next = 0;
  calls = 0;
  largest = 782;
  CHECK(drive(small, next, 1250, largest, calls) == 1250);
  CHECK(calls <= 20);
  CHECK(largest == 1);
  // A partition that runs dry stops at once.
  std::vector<size_t> short_one{3, 3};
  next = 0;
  calls = 0;
  CHECK(drive(short_one, next, 100, largest, calls) == 6);
  CHECK(calls == 1);
}

TEST_CASE("a partition assigned behind the watermark holds it back until it delivers, "
          "and its older messages are late but released first",
          "[watermark][group]") {
  core c{{{0, 100, 1}, {0, 100, 1}}, grouped(), t0};
  c.assign(0, 0, 100);
  c.assignment_received();
  push(c, 0, 0, t0 + 50ms);
  push(c, 0, 1, t0 + 60ms);
  c.update(t0);
  std::vector<msg> out;
  c.release(out);
  CHECK(out == std::vector<msg>{"0:0", "0:1"});
  CHECK(c.watermark() == t0 + 60ms);
  // A second partition comes in (another instance left): it is replayed
  // from its start, holding back partition 0 until it delivers.
  c.assign(1, 40, 100);
  push(c, 0, 2, t0 + 80ms);
  c.update(t0);
  CHECK_FALSE(c.releasable());
  push(c, 1, 40, t0 + 10ms);
  push(c, 1, 41, t0 + 70ms);
  c.update(t0);
  CHECK(c.counters().late == 1);
  out.clear();
  c.release(out);
  CHECK(out == std::vector<msg>{"1:40", "1:41"});
  CHECK(c.watermark() == t0 + 70ms);
}

TEST_CASE("a partition assigned with messages to replay takes a live core back to "
          "replay, in order, until it is caught up",
          "[watermark][group]") {
  core c{{{0, 100, 1}, {0, 100, 1}}, grouped(), t0};
  c.assign(0, 0, 1);
  c.assignment_received();
  push(c, 0, 0, t0 + 50ms);
  c.update(t0);
  REQUIRE(c.live());
  CHECK(c.take_went_live());
  std::vector<msg> out;
  c.release(out);
  // Another instance's partition, 3 messages behind its end.
  c.assign(1, 10, 13);
  CHECK_FALSE(c.live());
  push(c, 0, 1, t0 + 60ms);
  c.update(t0);
  out.clear();
  c.release(out);
  CHECK(out.empty()); // partition 1 may still deliver earlier messages
  push(c, 1, 10, t0 + 5ms);
  push(c, 1, 11, t0 + 70ms);
  c.update(t0);
  c.release(out);
  // (Partition 0 is caught up: only partition 1 bounds what goes.)
  CHECK(out == std::vector<msg>{"1:10", "0:1", "1:11"});
  CHECK_FALSE(c.live());
  push(c, 1, 12, t0 + 80ms);
  c.update(t0);
  CHECK(c.live());
  CHECK(c.take_went_live());
}

TEST_CASE("assigning a partition again starts it afresh from the given offset",
          "[watermark][group]") {
  core c{{{0, 100, 1}}, grouped(), t0};
  c.assign(0, 0, 100);
  c.assignment_received();
  push(c, 0, 0, t0 + 5ms);
  push(c, 0, 1, t0 + 6ms);
  c.revoke(0);
  c.assign(0, 1, 100);
  CHECK(c.owned(0));
  CHECK(c.position(0) == 1);
  CHECK(c.latest(0) == std::nullopt);
  CHECK(c.received(0) == 2);
  CHECK(c.dropped(0) == 2);
  push(c, 0, 1, t0 + 6ms);
  push(c, 0, 2, t0 + 7ms);
  c.update(t0);
  std::vector<msg> out;
  c.release(out);
  CHECK(out == std::vector<msg>{"0:1", "0:2"});
}
