// SPDX-License-Identifier: Apache-2.0
#include "castor/record.hpp"

#include <ostream>
#include <utility>

namespace castor {

const char* to_string(timestamp_type type) noexcept {
  switch (type) {
  case timestamp_type::none:
    return "none";
  case timestamp_type::create_time:
    return "create_time";
  case timestamp_type::log_append_time:
    return "log_append_time";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& out, const bytes& b) {
  return out << b.view();
}

// -- headers_view ---------------------------------------------------------------

size_t headers_view::size() const noexcept {
  if (src_ != nullptr)
    return src_->count(data_);
  return owned_ != nullptr ? owned_->size() : 0;
}

header_view headers_view::operator[](size_t i) const {
  if (src_ != nullptr)
    return src_->at(data_, i);
  auto& h = (*owned_)[i];
  header_view result{h.name, std::nullopt};
  if (h.value)
    result.value = std::string_view{*h.value};
  return result;
}

std::vector<header> headers_view::copy(size_t more) const {
  std::vector<header> result;
  auto n = size();
  result.reserve(n + more);
  for (size_t i = 0; i < n; ++i) {
    auto h = (*this)[i];
    result.push_back(header{std::string{h.name},
                            h.value ? std::optional<std::string>{std::string{*h.value}}
                                    : std::nullopt});
  }
  return result;
}

std::optional<header_view> headers_view::find(std::string_view name) const {
  std::optional<header_view> result;
  for (size_t i = 0, n = size(); i < n; ++i) {
    auto h = (*this)[i];
    if (h.name == name)
      result = h;
  }
  return result;
}

std::vector<header> all_headers(const producer_record& r) {
  auto result = r.headers;
  if (r.origin)
    for_each_origin_header(*r.origin, [&](std::string_view name, std::string_view value) {
      result.push_back(header{std::string{name}, std::string{value}});
    });
  return result;
}

} // namespace castor
