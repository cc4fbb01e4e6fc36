// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

namespace castor {

/// castor's version, e.g. "0.1.0".
const char* version() noexcept;

/// One line naming castor's version and the versions of CAF and librdkafka
/// it runs with.
std::string version_line();

} // namespace castor
