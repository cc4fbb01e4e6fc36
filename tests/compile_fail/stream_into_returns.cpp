// SPDX-License-Identifier: Apache-2.0
// A stream_into whose function returns its value instead of writing it.
// expect: castor: stream_into's function is called as fn(T& out, const inputs&...) and returns void
#include "castor/dag.hpp"

#include <vector>

int main() {
  castor::dag dag;
  auto numbers = dag.source_stream<std::vector<int>>("numbers");
  auto copied = dag.stream_into(std::vector<int>{},
                                [](std::vector<int>& out, const std::vector<int>& in) {
                                  out = in;
                                  return out.size();
                                })
                    .map(numbers);
  (void)copied;
}
