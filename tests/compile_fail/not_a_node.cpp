// SPDX-License-Identifier: Apache-2.0
// map() given a plain value instead of a node.
// expect: castor: map() takes node handles (node_ref<T>) returned by this dag
#include "castor/dag.hpp"

#include <vector>

int main() {
  castor::dag dag;
  std::vector<int> numbers{1, 2};
  auto copy = dag.stream([](const std::vector<int>& in) { return in; }).map(numbers);
  (void)copy;
}
