// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/protocol.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <functional>
#include <memory>

namespace castor {

/// Turns the Kafka clients' "something arrived" (called on librdkafka's
/// threads) into one `wake_atom` at a time for the actor that owns them.
struct wakeup {
  std::atomic<bool> pending{false};
  caf::weak_actor_ptr target;

  /// Called by the actor before it reads: the next arrival wakes it again.
  void reset() noexcept { pending = false; }

  /// One message at most until `reset`; no librdkafka calls here.
  void fire() {
    if (pending.exchange(true))
      return;
    if (auto actor = caf::actor_cast<caf::actor>(target))
      caf::anon_send(actor, wake_atom::value);
  }

  /// The callback for a Kafka client (keeps the wakeup alive).
  static std::function<void()> callback(std::shared_ptr<wakeup> w) {
    return [w] { w->fire(); };
  }
};

} // namespace castor
