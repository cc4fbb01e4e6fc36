// SPDX-License-Identifier: Apache-2.0
// The castor binary: castor's service with its built-in DAGs.

#include "castor/service.hpp"

int main(int argc, char** argv) {
  castor::service_main(argc, argv);
}
