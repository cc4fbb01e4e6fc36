// SPDX-License-Identifier: Apache-2.0
#pragma once

// Which partitions a replay reads next: a first message of each partition not
// heard from yet, then the consumer's credit to the partitions furthest behind
// in event time, a chunk at a time (docs/pipeline.md, backpressure). No CAF
// and no Kafka: the consumer and the tests share it (read_round).

#include "castor/time.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace castor {

/// What one read of a partition gave: how many messages, the timestamp of
/// the last of them that had one, and whether it met the partition's end.
struct chunk_read {
  size_t messages = 0;
  std::optional<timestamp> last_time;
  bool at_end = false;
};

/// Spends up to `credit` messages on the partitions `pids` (`behind[pid]`:
/// the timestamp of the last message read from it, `timestamp::min()` before
/// any; updated here), always reading next from the one furthest behind
/// (ties, such as partitions without timestamps, go in the order of `pids`:
/// rotate it between calls to share them out),
/// `credit / (4 x partitions)` messages at a time (at least one).
/// The credit thus lifts the partitions that hold the watermark back to a
/// common level, and the release that follows frees about what was read.
/// (Each partition read an even share, or the whole credit going to the
/// first, carries some past the others while the watermark waits for the
/// rest: with 64 interleaved partitions at the cap, a dozen messages per
/// round trip.) `read(pid, max)` reads at most `max` messages of `pid`; one
/// that gives fewer ran dry and is not read again in this call. `heap` is
/// working space. Returns the messages read.
///
/// Live, the order is the same: a partition whose timestamps lag the
/// others' (a backfill written with old times) is read first until it
/// catches up with them, as its messages sort first.
template <class Read>
size_t read_furthest_behind(std::vector<std::pair<timestamp, uint32_t>>& heap,
                            const std::vector<uint32_t>& pids,
                            std::vector<timestamp>& behind, size_t credit, Read&& read) {
  heap.clear();
  for (uint32_t i = 0; i < pids.size(); ++i)
    heap.emplace_back(behind[pids[i]], i);
  auto later = [](const auto& a, const auto& b) { return a > b; }; // a min-heap
  std::make_heap(heap.begin(), heap.end(), later);
  // (A floor of 16 messages per read, to call librdkafka less often with
  // many partitions, put the overshoot back: 64 partitions, credit 100.)
  auto chunk = std::max<size_t>(credit / std::max<size_t>(4 * heap.size(), 1), 1);
  size_t total = 0;
  while (total < credit && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    auto index = heap.back().second;
    auto pid = pids[index];
    heap.pop_back();
    auto want = std::min(chunk, credit - total);
    chunk_read got = read(pid, want);
    total += got.messages;
    if (got.last_time)
      behind[pid] = *got.last_time;
    if (got.messages >= want) {
      heap.emplace_back(behind[pid], index);
      std::push_heap(heap.begin(), heap.end(), later);
    }
  }
  return total;
}

/// What one call of `read_in_units`' `read` gave: messages, the units of
/// the hold they take, the most units one of them takes, and whether the
/// partition can give no more now (its end, an error).
struct unit_chunk {
  size_t messages = 0;
  size_t units = 0;
  size_t largest = 0;
  bool stop = false;
};

/// Reads up to `max` units of the hold (watermark_config::unit_bytes) of
/// one partition, whose messages take about `largest` units each (the
/// estimate, updated after each call: the most units a message of the call
/// took, or half the estimate before it, whichever is more, so that one
/// large message does not leave a partition of small ones read a few at a
/// time): asks `read(ask)` for as many messages as the units left at
/// `largest` a message (at least one), until `max` units are read, a call
/// gives fewer messages than asked, or it says stop. Every message takes
/// at least one unit. Returns the units read. librdkafka tells a
/// message's size only once it is read, so a call whose messages are
/// larger than the estimate can take more than `max`: at most `max`
/// messages (uniform sizes stay within `max` plus one message).
template <class Read>
size_t read_in_units(size_t max, uint32_t& largest, Read&& read) {
  size_t units = 0;
  for (;;) {
    auto ask = std::max<size_t>(
        (max - std::min(units, max)) / std::max<uint32_t>(largest, 1), 1);
    unit_chunk got = read(ask);
    units += got.units;
    if (got.messages > 0)
      largest = static_cast<uint32_t>(std::max<size_t>({got.largest, largest / 2, 1}));
    if (got.messages < ask || units >= max || got.stop)
      return units;
  }
}

/// One read of the consumer. First one message of each partition of `pids`
/// not heard from yet (`heard[pid]` false), whatever the credit: the
/// watermark cannot move before every partition replaying has delivered or
/// reached its end, and at the cap the credit is one message per round
/// trip. Partitions whose first fetch came after the others had filled the
/// hold would otherwise speak one per round trip (128 of 256: 127 round
/// trips more, watermark_core_test). This costs at most one message per
/// partition per assignment beyond the credit, each to a partition holding
/// nothing (partitions caught up or idle are read too: a message of theirs
/// is one the credit would have taken). Then what is left of `credit`,
/// furthest behind first (read_furthest_behind). A partition that gives a
/// message or meets its end in either counts as heard. `read(pid, max)` as
/// for read_furthest_behind. Returns the messages read.
template <class Read>
size_t read_round(std::vector<std::pair<timestamp, uint32_t>>& heap,
                  const std::vector<uint32_t>& pids, std::vector<bool>& heard,
                  std::vector<timestamp>& behind, size_t credit, Read&& read) {
  auto hear = [&](uint32_t pid, size_t max) {
    chunk_read got = read(pid, max);
    if (got.messages > 0 || got.at_end)
      heard[pid] = true;
    return got;
  };
  size_t firsts = 0;
  for (auto pid : pids) {
    if (heard[pid])
      continue;
    chunk_read got = hear(pid, 1);
    firsts += got.messages;
    if (got.last_time)
      behind[pid] = *got.last_time;
  }
  return firsts + read_furthest_behind(heap, pids, behind,
                                       credit - std::min(firsts, credit), hear);
}

} // namespace castor
