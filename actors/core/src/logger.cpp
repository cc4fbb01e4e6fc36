// SPDX-License-Identifier: Apache-2.0
#include "castor/logger.hpp"

#include <spdlog/spdlog.h>

#include <mutex>

namespace castor {

namespace {

std::mutex logger_mutex;
std::shared_ptr<spdlog::logger> current_logger;

} // namespace

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard guard{logger_mutex};
  if (current_logger)
    return current_logger;
  if (auto registered = spdlog::get(logger_name)) {
    current_logger = std::move(registered);
  } else {
    auto fallback = spdlog::default_logger();
    current_logger = std::make_shared<spdlog::logger>(
        logger_name, fallback->sinks().begin(), fallback->sinks().end());
    current_logger->set_level(fallback->level());
  }
  return current_logger;
}

void set_logger(std::shared_ptr<spdlog::logger> logger) {
  std::lock_guard guard{logger_mutex};
  current_logger = std::move(logger);
}

} // namespace castor
