// SPDX-License-Identifier: Apache-2.0
// The castor service binary: parses the command line and hands over to the
// library.

#include "castor/version.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"castor: ordered replay and live stream processing for Apache Kafka",
               "castor"};
  app.set_version_flag("--version", castor::version_line());
  app.footer("Subcommands `run`, `check` and `broker` arrive with the service; see "
             "README.md.");
  CLI11_PARSE(app, argc, argv);
  std::cout << app.help();
  return 0;
}
