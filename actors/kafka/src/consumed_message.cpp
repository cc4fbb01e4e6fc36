// SPDX-License-Identifier: Apache-2.0
#include "castor/kafka/consumed_message.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace castor {

namespace {

// A consumed message's headers, read in place by headers_view from the
// message itself (see consumed_message::parsed_headers).
size_t header_count(const void* message) noexcept {
  auto* hdrs = static_cast<const consumed_message*>(message)->parsed_headers();
  return hdrs == nullptr ? 0 : rd_kafka_header_cnt(hdrs);
}

header_view header_at(const void* message, size_t i) noexcept {
  auto* hdrs = static_cast<const consumed_message*>(message)->parsed_headers();
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  if (hdrs == nullptr ||
      rd_kafka_header_get_all(hdrs, i, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return {};
  header_view result{name, std::nullopt};
  if (value != nullptr)
    result.value = std::string_view{static_cast<const char*>(value), size};
  return result;
}

constexpr headers_view::source librdkafka_headers{&header_count, &header_at};

uint32_t clamp_bytes(size_t n) noexcept {
  return static_cast<uint32_t>(std::min<size_t>(n, UINT32_MAX));
}

} // namespace

consumed_message::consumed_message(rd_kafka_message_t* raw, uint32_t pid) noexcept
    : raw_(raw), pid_(pid), bytes_(clamp_bytes(raw->key_len + raw->len)),
      offset_(raw->offset) {
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  time_ms_ = rd_kafka_message_timestamp(raw, &type);
  switch (type) {
  case RD_KAFKA_TIMESTAMP_CREATE_TIME:
    time_type_ = timestamp_type::create_time;
    break;
  case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
    time_type_ = timestamp_type::log_append_time;
    break;
  default:
    time_type_ = timestamp_type::none;
    time_ms_ = -1;
  }
}

consumed_message consumed_message::make(uint32_t pid, int64_t offset,
                                        std::optional<castor::timestamp> time,
                                        std::optional<std::string> key,
                                        std::optional<std::string> value,
                                        std::vector<header> headers) {
  consumed_message result;
  result.pid_ = pid;
  result.offset_ = offset;
  if (time) {
    result.time_ms_ = to_millis(*time);
    result.time_type_ = timestamp_type::create_time;
  }
  result.bytes_ = clamp_bytes((key ? key->size() : 0) + (value ? value->size() : 0));
  result.owned_ = std::make_unique<owned_parts>(
      owned_parts{std::move(key), std::move(value), std::move(headers)});
  return result;
}

consumed_message::consumed_message(consumed_message&& other) noexcept
    : order_time(other.order_time), raw_(std::exchange(other.raw_, nullptr)),
      owned_(std::move(other.owned_)), pid_(other.pid_), bytes_(other.bytes_),
      offset_(other.offset_), time_ms_(other.time_ms_), time_type_(other.time_type_),
      no_headers_(other.no_headers_) {}

consumed_message& consumed_message::operator=(consumed_message&& other) noexcept {
  if (this != &other) {
    release();
    order_time = other.order_time;
    raw_ = std::exchange(other.raw_, nullptr);
    owned_ = std::move(other.owned_);
    pid_ = other.pid_;
    bytes_ = other.bytes_;
    offset_ = other.offset_;
    time_ms_ = other.time_ms_;
    time_type_ = other.time_type_;
    no_headers_ = other.no_headers_;
  }
  return *this;
}

consumed_message::~consumed_message() {
  release();
}

void consumed_message::release() noexcept {
  if (raw_ != nullptr) {
    rd_kafka_message_destroy(raw_);
    raw_ = nullptr;
  }
}

std::optional<castor::timestamp> consumed_message::time() const noexcept {
  // -1 is Kafka's "no timestamp"; every other value is a time, those before
  // 1970 included.
  if (time_type_ == timestamp_type::none || !valid_timestamp_ms(time_ms_))
    return std::nullopt;
  return from_millis(time_ms_);
}

std::optional<std::string_view> consumed_message::key() const noexcept {
  if (raw_ != nullptr) {
    if (raw_->key == nullptr)
      return std::nullopt;
    return std::string_view{static_cast<const char*>(raw_->key), raw_->key_len};
  }
  if (owned_ && owned_->key)
    return std::string_view{*owned_->key};
  return std::nullopt;
}

std::optional<std::string_view> consumed_message::value() const noexcept {
  if (raw_ != nullptr) {
    if (raw_->payload == nullptr)
      return std::nullopt;
    return std::string_view{static_cast<const char*>(raw_->payload), raw_->len};
  }
  if (owned_ && owned_->value)
    return std::string_view{*owned_->value};
  return std::nullopt;
}

headers_view consumed_message::headers() const {
  if (raw_ != nullptr)
    return headers_view{&librdkafka_headers, this};
  if (owned_)
    return headers_view{&owned_->headers};
  return headers_view{};
}

const rd_kafka_headers_s* consumed_message::parsed_headers() const noexcept {
  // librdkafka parses a message's headers when asked, and for a message
  // without any it allocates and frees a buffer on every call, keeping
  // nothing: the answer "none" is kept here. (Only the thread running the
  // DAG reads a message's headers.)
  if (no_headers_ || raw_ == nullptr)
    return nullptr;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(raw_, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      hdrs == nullptr) {
    no_headers_ = true;
    return nullptr;
  }
  return hdrs;
}

message_view consumed_message::view(std::string_view topic, int32_t partition) const {
  return message_view{topic,      partition, offset_, time(),
                      time_type_, key(),     value(), headers()};
}

} // namespace castor
