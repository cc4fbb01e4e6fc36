// SPDX-License-Identifier: Apache-2.0
#include "castor/json.hpp"

namespace castor::serde {

deserializer<std::vector<nlohmann::json>> json() {
  return [](std::span<const message_view> messages) {
    std::vector<nlohmann::json> result;
    result.reserve(messages.size());
    for (size_t i = 0; i < messages.size(); ++i) {
      auto& m = messages[i];
      if (!m.value)
        throw deserialize_error(i,
                                fmt::format("null value (tombstone) at {}[{}] offset {}",
                                            m.topic, m.partition, m.offset));
      auto doc = nlohmann::json::parse(m.value->begin(), m.value->end(), nullptr, false);
      if (doc.is_discarded())
        throw deserialize_error(i, fmt::format("invalid JSON at {}[{}] offset {}",
                                               m.topic, m.partition, m.offset));
      result.push_back(std::move(doc));
    }
    return result;
  };
}

serializer<std::vector<nlohmann::json>> json_out() {
  return [](const std::vector<nlohmann::json>& docs, std::vector<producer_record>& out) {
    for (auto& doc : docs) {
      out.emplace_back().value = doc.dump();
    }
  };
}

} // namespace castor::serde
