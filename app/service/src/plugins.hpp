// SPDX-License-Identifier: Apache-2.0
#pragma once

// Loading plugins (shared libraries defining CASTOR_PLUGIN) into a registry.

#include "castor/registry.hpp"

#include <caf/error.hpp>

#include <string>

namespace castor::service {

/// Loads the plugin at `path` and lets it add its DAGs to `dags`. A missing
/// file, a file that is not a castor plugin, a plugin built against another
/// castor (version, compiler ABI or CAF), or a registration that throws is
/// `ec::invalid_config` naming the file and the reason. The library stays
/// loaded for the life of the process.
caf::error load_plugin(const std::string& path, registry& dags);

} // namespace castor::service
