// SPDX-License-Identifier: Apache-2.0
#pragma once

// castor's service as a library: the `castor` binary's whole command line
// (`run`, `check`, `broker`, `--help`, `--version`), its TOML configuration
// with environment overrides, logging, signals and ordered shutdown,
// metrics, progress lines and exit codes.

#include "castor/registry.hpp"

namespace castor {

/// Runs castor's command line with the built-in DAGs and exits the process
/// with its exit code (it does not return: a Kafka client may still be
/// closing in the background when a broker does not answer).
[[noreturn]] int service_main(int argc, char** argv);

/// The same with the DAGs of `dags` (a default-constructed registry holds
/// the built-in ones; add yours):
///
///     int main(int argc, char** argv) {
///       castor::registry registry;
///       registry.add("vwap", make_vwap);
///       return castor::service_main(argc, argv, registry);
///     }
[[noreturn]] int service_main(int argc, char** argv, const registry& dags);

} // namespace castor
