// SPDX-License-Identifier: Apache-2.0
#pragma once

// castor's service as a library: the `castor` binary's whole command line
// (`run`, `check`, `broker`, `--help`, `--version`), its TOML configuration
// with environment overrides, logging, signals and ordered shutdown,
// metrics, progress lines and exit codes.

namespace castor {

/// Runs castor's command line and exits the process with its exit code (it
/// does not return: a Kafka client may still be closing in the background
/// when a broker does not answer).
[[noreturn]] int service_main(int argc, char** argv);

} // namespace castor
