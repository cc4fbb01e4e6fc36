// SPDX-License-Identifier: Apache-2.0
#include "castor/commit_tracker.hpp"

#include <algorithm>

namespace castor {

uint64_t commit_tracker::open(std::vector<partition_position> positions,
                              uint64_t records) {
  auto id = first_id_ + batches_.size();
  batches_.push_back(batch{std::move(positions), records, false});
  outstanding_ += records;
  advance();
  return id;
}

void commit_tracker::delivered(uint64_t id, bool ok) {
  if (id < first_id_ || id - first_id_ >= batches_.size())
    return; // not ours (or already done): nothing to count
  auto& b = batches_[id - first_id_];
  if (b.outstanding == 0)
    return;
  --b.outstanding;
  --outstanding_;
  if (!ok) {
    b.failed = true;
    blocked_ = true;
  }
  advance();
}

void commit_tracker::advance() {
  while (!batches_.empty() && batches_.front().outstanding == 0 &&
         !batches_.front().failed) {
    for (auto [pid, next] : batches_.front().positions) {
      if (pid >= committable_.size())
        committable_.resize(pid + 1, -1);
      committable_[pid] = std::max(committable_[pid], next);
    }
    batches_.pop_front();
    ++first_id_;
  }
}

} // namespace castor
