// SPDX-License-Identifier: Apache-2.0
#include "castor/serde.hpp"

#include <fmt/format.h>

#include <array>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace castor {

kafka_record kafka_record::copy_of(const message_view& view) {
  kafka_record result;
  result.topic = std::string{view.topic};
  result.partition = view.partition;
  result.offset = view.offset;
  result.time = view.time;
  result.time_type = view.time_type;
  if (view.key)
    result.key = std::string{*view.key};
  if (view.value)
    result.value = std::string{*view.value};
  result.headers = view.headers.copy();
  return result;
}

namespace serde {

namespace {

std::string_view value_or_reject(std::span<const message_view> messages, size_t i) {
  auto& m = messages[i];
  if (!m.value)
    throw deserialize_error(i, fmt::format("null value (tombstone) at {}[{}] offset {}",
                                           m.topic, m.partition, m.offset));
  return *m.value;
}

} // namespace

deserializer<std::vector<kafka_record>> records() {
  return [](std::span<const message_view> messages) {
    std::vector<kafka_record> result;
    result.reserve(messages.size());
    for (auto& m : messages)
      result.push_back(kafka_record::copy_of(m));
    return result;
  };
}

deserializer<std::vector<message_view>> views() {
  return [](std::span<const message_view> messages) {
    return std::vector<message_view>{messages.begin(), messages.end()};
  };
}

deserializer<std::vector<std::string>> strings() {
  return [](std::span<const message_view> messages) {
    std::vector<std::string> result;
    result.reserve(messages.size());
    for (size_t i = 0; i < messages.size(); ++i)
      result.emplace_back(value_or_reject(messages, i));
    return result;
  };
}

namespace {

// Whitespace as std::isspace in the C locale, as a table (one load per
// character instead of six comparisons).
constexpr auto space_table = [] {
  std::array<bool, 256> table{};
  for (unsigned char c : {' ', '\t', '\n', '\r', '\f', '\v'})
    table[c] = true;
  return table;
}();

bool is_space(char c) noexcept {
  return space_table[static_cast<unsigned char>(c)];
}

// Calls `f` with each whitespace-separated word of `text`. 16 bytes at a
// time: a bit mask of the whitespace, and the words' starts and ends are its
// changes. Words of a few letters made the character loop mispredict its
// exit once per word; this costs about one misprediction per 16 bytes.
template <class F>
void split_words(std::string_view text, F&& f) {
  constexpr size_t none = static_cast<size_t>(-1);
  const char* p = text.data();
  const size_t n = text.size();
  size_t start = none; // the current word's first byte (none: between words)
  size_t i = 0;
#ifdef __SSE2__
  const __m128i blank = _mm_set1_epi8(' ');
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i four = _mm_set1_epi8(4);
  for (; i + 16 <= n; i += 16) {
    auto chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    // ' ', or '\t' .. '\r' (9 .. 13): c - 9 <= 4 unsigned.
    auto control = _mm_sub_epi8(chunk, tab);
    auto is_control = _mm_cmpeq_epi8(_mm_min_epu8(control, four), control);
    auto spaces = static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(chunk, blank), is_control)));
    uint32_t before = start == none ? 1u : 0u; // whitespace before this chunk
    uint32_t changes = (spaces ^ ((spaces << 1) | before)) & 0xFFFFu;
    while (changes != 0) {
      auto k = i + static_cast<size_t>(__builtin_ctz(changes));
      changes &= changes - 1;
      if (start == none) {
        start = k;
      } else {
        f(std::string_view{p + start, k - start});
        start = none;
      }
    }
  }
#endif
  for (; i < n; ++i) {
    bool space = is_space(p[i]);
    if (start == none && !space) {
      start = i;
    } else if (start != none && space) {
      f(std::string_view{p + start, i - start});
      start = none;
    }
  }
  if (start != none)
    f(std::string_view{p + start, n - start});
}

} // namespace

deserializer<std::vector<std::string>> words() {
  return [](std::span<const message_view> messages) {
    std::vector<std::string> result;
    for (size_t i = 0; i < messages.size(); ++i)
      split_words(value_or_reject(messages, i),
                  [&](std::string_view w) { result.emplace_back(w); });
    return result;
  };
}

deserializer<std::vector<std::string_view>> word_views() {
  return [](std::span<const message_view> messages) {
    std::vector<std::string_view> result;
    // About one word per 6 bytes of text: one allocation, not a doubling
    // series.
    size_t bytes = 0;
    for (auto& m : messages)
      bytes += m.value ? m.value->size() : 0;
    result.reserve(bytes / 6 + messages.size());
    for (size_t i = 0; i < messages.size(); ++i)
      split_words(value_or_reject(messages, i),
                  [&](std::string_view w) { result.push_back(w); });
    return result;
  };
}

serializer<std::vector<producer_record>> records_out() {
  return
      [](const std::vector<producer_record>& records, std::vector<producer_record>& out) {
        out.insert(out.end(), records.begin(), records.end());
      };
}

serializer<std::vector<std::string>> strings_out() {
  return [](const std::vector<std::string>& values, std::vector<producer_record>& out) {
    for (auto& v : values) {
      out.emplace_back().value = v;
    }
  };
}

serializer<std::vector<std::pair<std::string, std::string>>> key_values_out() {
  return [](const std::vector<std::pair<std::string, std::string>>& pairs,
            std::vector<producer_record>& out) {
    for (auto& [k, v] : pairs) {
      auto& r = out.emplace_back();
      r.key = k;
      r.value = v;
    }
  };
}

} // namespace serde
} // namespace castor
