// SPDX-License-Identifier: Apache-2.0
// Test tool: produces lines "topic partition timestamp_ms key value..." from
// stdin with the given timestamps (kcat cannot set them); the value is the
// rest of the line, spaces included; a key "-" is no key.
// Usage: castor_test_produce BOOTSTRAP

#include "castor/testing/io.hpp"

#include <iostream>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: castor_test_produce BOOTSTRAP < lines\n";
    return 2;
  }
  auto w = castor::testing::writer::make(argv[1]);
  if (!w) {
    std::cerr << castor::render(w.error()) << '\n';
    return 1;
  }
  std::string line;
  size_t count = 0;
  while (std::getline(std::cin, line)) {
    std::istringstream in{line};
    castor::testing::record r;
    std::string key;
    std::string value;
    if (!(in >> r.topic >> r.partition >> r.time_ms >> key) ||
        !std::getline(in >> std::ws, value))
      continue;
    if (key != "-")
      r.key = std::move(key);
    r.value = std::move(value);
    if (auto err = (*w)->write(r)) {
      std::cerr << castor::render(err) << '\n';
      return 1;
    }
    ++count;
  }
  if (auto err = (*w)->flush()) {
    std::cerr << castor::render(err) << '\n';
    return 1;
  }
  std::cerr << "produced " << count << '\n';
  return 0;
}
