// SPDX-License-Identifier: Apache-2.0
#pragma once

// JSON deserializers and serializers (nlohmann::json).

#include "castor/serde.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace castor::serde {

/// Each value parsed as JSON; invalid JSON or a null value is rejected with
/// the message's coordinates.
deserializer<std::vector<nlohmann::json>> json();

/// Each value parsed as JSON and converted to `T` with nlohmann's `from_json`.
template <class T>
deserializer<std::vector<T>> json_as() {
  return [parse = json()](std::span<const message_view> messages) {
    auto docs = parse(messages);
    std::vector<T> result;
    result.reserve(docs.size());
    for (size_t i = 0; i < docs.size(); ++i) {
      try {
        result.push_back(docs[i].template get<T>());
      } catch (const nlohmann::json::exception& e) {
        auto& m = messages[i];
        throw deserialize_error(i, fmt::format("unexpected JSON at {}[{}] offset {}: {}",
                                               m.topic, m.partition, m.offset, e.what()));
      }
    }
    return result;
  };
}

/// One record per document, its compact JSON text as the value.
serializer<std::vector<nlohmann::json>> json_out();

} // namespace castor::serde
