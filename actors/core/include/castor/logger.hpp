// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <spdlog/logger.h>

#include <memory>

namespace castor {

/// The name of castor's logger in spdlog's registry.
inline constexpr const char* logger_name = "castor";

/// castor's logger. The library never installs sinks of its own: it uses the
/// logger registered under `logger_name` if a host application registered
/// one, else a logger that writes through spdlog's default logger's sinks.
std::shared_ptr<spdlog::logger> logger();

/// Replaces castor's logger (e.g. with the host application's).
void set_logger(std::shared_ptr<spdlog::logger> logger);

} // namespace castor
