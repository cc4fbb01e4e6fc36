// SPDX-License-Identifier: Apache-2.0
#pragma once

// The consumer end of the Kafka seam: one librdkafka consumer that reads
// each assigned partition from its own queue (pausing one is not reading
// it), commits asynchronously, and answers the start-up queries. No CAF and
// no librdkafka types in its interface.

#include "castor/failure.hpp"
#include "castor/kafka/config.hpp"
#include "castor/kafka/consumed_message.hpp"
#include "castor/start_policy.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace castor::kafka {

/// A partition to read from `offset`. Its index in the assignment is its
/// number (pid) in every call below.
struct assignment_entry {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

/// What reads met besides messages. Transient errors (librdkafka retries
/// them) are logged by the client and counted; the first error that stops
/// the consumer is kept.
struct read_errors {
  uint32_t transient = 0;
  failure fatal;
};

/// The outcome of one commit: its error (or none), and the next offsets the
/// brokers accepted, by pid.
struct commit_result {
  failure error;
  /// The group was rebalancing (REBALANCE_IN_PROGRESS): commits should wait
  /// for the rebalance to end.
  bool rebalancing = false;
  std::vector<std::pair<uint32_t, int64_t>> committed;
};

/// A committed next offset, by pid.
using committed_offset = std::pair<uint32_t, int64_t>;

/// A rebalance of the consumer group (group assignment), as reported while
/// the consumer queue is read: partitions by pid.
struct rebalance {
  /// Assigned (else revoked).
  bool assigned = false;
  std::vector<uint32_t> pids;
  /// Partitions castor did not know at start-up (a topic grew): not read.
  std::vector<std::pair<std::string, int32_t>> unknown;
  /// The assignment was lost (the session timed out, say): nothing of it
  /// may be committed.
  bool lost = false;
};

class consumer_client {
public:
  /// A consumer with castor's settings over `props`: no auto-commit and no
  /// auto offset store (castor commits what was delivered), end-of-partition
  /// events, a private group id when none is given, and unless `props` set
  /// them: auto.offset.reset = earliest and the per-partition prefetch of
  /// castor/defaults.hpp.
  /// With `group` (group assignment): the client watches its group's joins
  /// (`joining`) and reads one message per call (see `read`).
  static result<std::unique_ptr<consumer_client>> make(const properties& props,
                                                       bool group = false);

  /// Group assignment: this member sent a JoinGroup and has no successful
  /// SyncGroup answer yet (a rebalance is under way; seen through
  /// librdkafka's cgrp debug lines, which castor enables and keeps out of
  /// the log unless `debug` asks for them). librdkafka 2.0.2 takes a commit
  /// answered ILLEGAL_GENERATION for a lost assignment (librdkafka issue
  /// #4059, fixed in 2.10), and a commit sent while the member's own
  /// JoinGroup waits is answered so: periodic commits wait while this holds.
  bool joining() const noexcept;

  /// Closes within defaults::close_timeout (see `close`).
  ~consumer_client();

  consumer_client(const consumer_client&) = delete;
  consumer_client& operator=(const consumer_client&) = delete;

  /// What happens to a position out of range (auto.offset.reset).
  offset_reset reset() const noexcept;

  /// Whether the properties name a consumer group (then castor commits).
  bool has_group() const noexcept;

  /// The group id (a private one when the properties name none).
  const std::string& group() const noexcept;

  /// The leader broker of each partition of `topic`, by partition (-1 where
  /// none): an unknown topic is `ec::unknown_topic`, no answer within
  /// `timeout` `ec::broker_unreachable`, `cancel` set `ec::stopped`.
  result<std::vector<int32_t>> partitions(const std::string& topic,
                                          std::chrono::milliseconds timeout,
                                          const cancel_flag& cancel = {});

  /// The broker queries of start-up, each within `timeout`, given up when
  /// `cancel` is set.
  std::unique_ptr<partition_queries> queries(std::chrono::milliseconds timeout,
                                             cancel_flag cancel = {});

  /// Reads `parts` from their offsets, each partition from its own queue.
  /// `wake` runs, on a librdkafka thread, whenever a queue (or the queue of
  /// cluster errors or commit results) gets something after being empty;
  /// empty: no wake-ups (the caller polls).
  failure assign(const std::vector<assignment_entry>& parts, std::function<void()> wake);

  /// Group assignment: `parts` are every partition castor may be given
  /// (their index is their pid; offsets unused); subscribes to their
  /// topics. Rebalances come with reads of the cluster queue
  /// (`read_cluster_errors`), to be taken with `take_rebalances` and carried
  /// out with `add` and `remove`; `wake` as for `assign`.
  failure subscribe(const std::vector<assignment_entry>& parts,
                    std::function<void()> wake);

  /// Rebalances reported since the last call.
  std::vector<rebalance> take_rebalances();

  /// Starts reading these partitions (pid, offset), each from its own queue
  /// (an incremental assignment; a full one with an eager assignor).
  failure add(const std::vector<std::pair<uint32_t, int64_t>>& starts);

  /// Stops reading these partitions (an incremental unassignment; all of
  /// them with an eager assignor), completing their revocation.
  failure remove(const std::vector<uint32_t>& pids);

  /// The partitions (pids) read now.
  const std::vector<uint32_t>& owned() const noexcept;

  /// Appends up to `max` messages of partition `pid` to `out`, in offset
  /// order; returns whether the broker reported the partition's end. With
  /// `ends_at_end`, when the read got anything, sets it to whether that end
  /// came last (no message after it).
  bool read(uint32_t pid, size_t max, std::vector<consumed_message>& out,
            read_errors& errors, bool* ends_at_end = nullptr);

  /// Errors that concern no partition (connections, the cluster).
  void read_cluster_errors(read_errors& errors);

  /// The low and high offsets librdkafka saw in the last fetch response for
  /// `pid` (no broker round trip; -1 while unknown).
  std::pair<int64_t, int64_t> cached_watermarks(uint32_t pid) const;

  /// Wakes librdkafka's fetcher for the brokers that lead `pids` (one
  /// partition per broker), without waiting: librdkafka 2.0.2 stops
  /// fetching a partition whose prefetch reached queued.min.messages or
  /// queued.max.messages.kbytes, and a broker thread with no partition left
  /// to fetch looks at them again only after up to a second, while a reader
  /// that emptied the prefetch meanwhile waits. Any request to that broker
  /// makes it look at once: the client sends one to each (a query of the
  /// partition's offsets, on a thread of its own; one round at a time).
  /// Returns false when the last round is still under way.
  bool wake_fetcher(const std::vector<uint32_t>& pids);

  /// Commits these next offsets (pid, offset) asynchronously, one commit in
  /// flight at a time being the caller's rule; `poll_commits` gives the
  /// outcome. An error here means the commit was not even sent.
  failure commit(const std::vector<committed_offset>& offsets);

  /// Outcomes of the commits answered since the last call.
  std::vector<commit_result> poll_commits();

  /// Closes the consumer: leaves its group, then destroys the client,
  /// waiting at most `timeout` for librdkafka (a broker that does not answer
  /// keeps requests in flight); past it the destruction goes on in the
  /// background. Returns whether it finished in time.
  bool close(std::chrono::milliseconds timeout);

  struct impl;

private:
  explicit consumer_client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace castor::kafka
