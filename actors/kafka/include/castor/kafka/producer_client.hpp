// SPDX-License-Identifier: Apache-2.0
#pragma once

// The producer end of the Kafka seam: one librdkafka producer that takes
// castor's records with their headers, reports each delivery, and closes
// within a bound. No CAF and no librdkafka types in its interface.

#include "castor/failure.hpp"
#include "castor/kafka/config.hpp"
#include "castor/record.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace castor::kafka {

/// The delivery report of one record.
struct delivery {
  /// The tag the record was produced with.
  uint64_t tag = 0;
  std::string_view topic;
  int32_t partition = -1;
  /// None when the brokers acknowledged the record.
  failure error;
  /// Purged at a stop (not a failure of the record).
  bool purged = false;
};

/// What `produce` did with a record.
enum class produce_status : uint8_t {
  /// In librdkafka's queue; a delivery report follows.
  queued,
  /// librdkafka's queue is full: try again after `poll`.
  queue_full,
  /// Refused (see the failure).
  refused,
};

class producer_client {
public:
  /// A producer with castor's settings over `props`: idempotence unless
  /// `props` choose acks, the in-flight limit or idempotence themselves, and
  /// allow.auto.create.topics = false unless set (a missing topic is an
  /// error, not one the broker creates). `known_topics` get their metadata
  /// with the first request instead of librdkafka's next periodic scan.
  /// `on_delivery` runs in `poll`, on the caller's thread; `wake` runs on a
  /// librdkafka thread when delivery reports wait (empty: the caller polls).
  static result<std::unique_ptr<producer_client>>
  make(const properties& props, const std::vector<std::string>& known_topics,
       std::function<void(const delivery&)> on_delivery, std::function<void()> wake);

  /// Purges what is queued and closes (see `close`).
  ~producer_client();

  producer_client(const producer_client&) = delete;
  producer_client& operator=(const producer_client&) = delete;

  /// Enqueues a copy of `r` (its topic must be set), tagged with `tag` for
  /// its delivery report. `why` says why a record was refused.
  produce_status produce(const producer_record& r, uint64_t tag, failure& why);

  /// Serves delivery reports.
  void poll();

  /// Records queued or in flight, not yet reported.
  uint64_t outstanding() const;

  /// Purges what is not delivered and destroys the client, waiting at most
  /// `timeout` for librdkafka. Returns whether it finished in time.
  bool close(std::chrono::milliseconds timeout);

  struct impl;

private:
  explicit producer_client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace castor::kafka
