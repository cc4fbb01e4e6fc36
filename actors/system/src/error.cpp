// SPDX-License-Identifier: Apache-2.0
#include "castor/error.hpp"

#include <caf/atom.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace castor {

namespace {

constexpr auto category = caf::atom("castor");

} // namespace

caf::error make_error(ec code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), category,
                    caf::make_message(std::move(context))};
}

caf::error make_error(ec code) {
  return caf::error{static_cast<uint8_t>(code), category};
}

ec code_of(const caf::error& err) noexcept {
  if (!err || err.category() != category)
    return ec::none;
  return static_cast<ec>(err.code());
}

caf::error to_error(const failure& f) {
  if (!f)
    return {};
  return make_error(f.code(), f.what());
}

std::string message_of(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() != category)
    return caf::to_string(err);
  auto& ctx = err.context();
  if (ctx.match_elements<std::string>())
    return ctx.get_as<std::string>(0);
  return to_string(static_cast<ec>(err.code()));
}

std::string render(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() != category)
    return caf::to_string(err);
  std::string result = to_string(static_cast<ec>(err.code()));
  auto& ctx = err.context();
  if (ctx.match_elements<std::string>()) {
    result += ": ";
    result += ctx.get_as<std::string>(0);
  }
  return result;
}

} // namespace castor
