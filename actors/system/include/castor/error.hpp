// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/failure.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <string>

namespace castor {

/// An error with castor's category: `make_error(ec::unknown_topic, "topic
/// 'words' ...")`.
caf::error make_error(ec code, std::string context);

/// `caf::error` from a bare code (enables `caf::error err = ec::stopped;`).
caf::error make_error(ec code);

/// The code of a castor error, `ec::none` for other categories.
ec code_of(const caf::error& err) noexcept;

/// What an error says without its code: the context of a castor error ("topic
/// 'words' ..."), CAF's rendering for others. For wrapping an error in
/// another one without repeating the code.
std::string message_of(const caf::error& err);

/// A failure of the layers below the actors as a caf::error (no error for
/// no failure).
caf::error to_error(const failure& f);

/// A result of the layers below the actors as a caf::expected.
template <class T>
caf::expected<T> to_expected(result<T> r) {
  if (r)
    return std::move(*r);
  return to_error(r.error());
}

/// One line for logs and users: "unknown_topic: topic 'words' ..." for castor
/// errors, CAF's rendering for others.
std::string render(const caf::error& err);

} // namespace castor
