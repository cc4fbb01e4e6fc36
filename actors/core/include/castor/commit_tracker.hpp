// SPDX-License-Identifier: Apache-2.0
#pragma once

// At-least-once bookkeeping (docs/pipeline.md): which offsets may be committed. A
// pure class, no CAF or librdkafka in it; the producer actor owns one.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace castor {

/// The next offset to read of one partition, by its number (pid) in the
/// pipeline's partition table.
using partition_position = std::pair<uint32_t, int64_t>;

/// Tracks record batches from the executor to the brokers' acknowledgements.
///
/// The executor sends one batch per release, in release order, carrying the
/// positions (next offset per partition) that release reached and the
/// records its cycles made. A batch is done once every one of its records
/// was delivered. A partition's committable position advances only over
/// the longest prefix of done batches: a commit never passes a message whose
/// cycle did not complete or whose records were not all acknowledged, even
/// when later batches finished first. A record that failed blocks the prefix
/// for good.
class commit_tracker {
public:
  /// Opens a batch of `records` records that reaches `positions`; returns
  /// its id, which the delivery reports of its records name.
  uint64_t open(std::vector<partition_position> positions, uint64_t records);

  /// One record of batch `id` was delivered (`ok`) or failed for good.
  void delivered(uint64_t id, bool ok);

  /// The committable next offset of every partition seen so far, by pid;
  /// -1 where nothing is committable yet.
  const std::vector<int64_t>& committable() const noexcept { return committable_; }

  /// Batches not yet done (or behind one that is not).
  size_t open_batches() const noexcept { return batches_.size(); }

  /// Records not yet delivered.
  uint64_t outstanding() const noexcept { return outstanding_; }

  /// Whether a failed record blocks every later commit.
  bool blocked() const noexcept { return blocked_; }

private:
  struct batch {
    std::vector<partition_position> positions;
    uint64_t outstanding = 0;
    bool failed = false;
  };

  void advance();

  std::deque<batch> batches_;
  /// The id of batches_.front().
  uint64_t first_id_ = 0;
  uint64_t outstanding_ = 0;
  std::vector<int64_t> committable_;
  bool blocked_ = false;
};

} // namespace castor
