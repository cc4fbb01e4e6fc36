// SPDX-License-Identifier: Apache-2.0
#include "castor/version.hpp"

#include "castor/kafka/config.hpp"

#include <caf/config.hpp>
#include <fmt/format.h>
#include <spdlog/version.h>

namespace castor {

const char* version() noexcept {
  return CASTOR_VERSION_STRING;
}

std::string version_line() {
  return fmt::format("castor {} (CAF {}.{}.{}, librdkafka {}, spdlog {}.{}.{})",
                     version(), CAF_MAJOR_VERSION, CAF_MINOR_VERSION, CAF_PATCH_VERSION,
                     kafka::librdkafka_version(), SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR,
                     SPDLOG_VER_PATCH);
}

} // namespace castor
