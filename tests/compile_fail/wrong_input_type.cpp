// SPDX-License-Identifier: Apache-2.0
// A stream wired to an input its function cannot take.
// expect: castor: this stream's function cannot be called with const references to its
// inputs' values
#include "castor/dag.hpp"

#include <string>
#include <vector>

int main() {
  castor::dag dag;
  auto numbers = dag.source_stream<std::vector<int>>("numbers");
  auto lengths = dag.stream([](const std::vector<std::string>& words) { return words; })
                     .map(numbers);
  (void)lengths;
}
