// SPDX-License-Identifier: Apache-2.0
// A state whose function wants to mutate its upstream value.
// expect: castor: this state's function cannot be called with const references to its
// inputs' values
#include "castor/dag.hpp"

#include <vector>

int main() {
  castor::dag dag;
  auto numbers = dag.source_stream<std::vector<int>>("numbers");
  auto total = dag.state([](std::vector<int>& in) {
                    in.push_back(1);
                    return in.size();
                  })
                   .map(numbers);
  (void)total;
}
