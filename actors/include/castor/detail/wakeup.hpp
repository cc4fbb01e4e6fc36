// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <caf/actor_control_block.hpp>
#include <librdkafka/rdkafka.h>

#include <atomic>

namespace castor::detail {

/// Shared with librdkafka's queue callbacks (consumer and producer): turns
/// "queue became non-empty" into one wake-up message at a time.
struct wakeup {
  std::atomic<bool> pending{false};
  caf::weak_actor_ptr target;

  /// The callback for `rd_kafka_queue_cb_event_enable`; `opaque` is the
  /// wakeup. Runs on a librdkafka thread.
  static void on_event(rd_kafka_t*, void* opaque);
};

} // namespace castor::detail
