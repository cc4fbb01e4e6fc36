// SPDX-License-Identifier: Apache-2.0
#include "plugins.hpp"

#include "castor/error.hpp"
#include "castor/logger.hpp"
#include "castor/plugin.hpp"

#include <fmt/format.h>

#include <dlfcn.h>
#include <filesystem>
#include <sys/stat.h>

namespace castor::service {

caf::error load_plugin(const std::string& path, registry& dags) {
  auto fail = [&](const std::string& why) {
    return make_error(ec::invalid_config, fmt::format("plugin '{}': {}", path, why));
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fail("no such file");
  if (!S_ISREG(st.st_mode))
    return fail("not a file");
  // An absolute path: a bare file name would make dlopen search the
  // library path instead of the folder it names.
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  auto file = ec ? path : absolute.string();
  // RTLD_NOW: a symbol the binary lacks is an error now, not a crash later.
  // RTLD_LOCAL: plugins do not see each other's symbols.
  auto* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    std::string text = why != nullptr ? why : "unknown";
    // A castor symbol this binary does not have: built against another
    // castor, or loaded by a binary that does not export castor's symbols.
    if (text.find("undefined symbol: _ZN6castor") != std::string::npos ||
        text.find("undefined symbol: _ZNK6castor") != std::string::npos)
      text += " (a castor function this binary does not have: the plugin was built "
              "against another castor, or this binary does not export castor's "
              "symbols, as a service_main binary does not; rebuild the plugin with "
              "castor_add_plugin against this castor and run it with the castor "
              "binary)";
    return fail(fmt::format("cannot be loaded: {}", text));
  }
  ::dlerror();
  auto* symbol = ::dlsym(handle, CASTOR_PLUGIN_ENTRY);
  if (symbol == nullptr) {
    ::dlclose(handle);
    return fail("not a castor plugin (no " CASTOR_PLUGIN_ENTRY
                " entry point: define one with CASTOR_PLUGIN from castor/plugin.hpp)");
  }
  auto entry = reinterpret_cast<castor_plugin_entry>(symbol);
  const castor_plugin_info* info = entry();
  if (info == nullptr || info->magic != castor_plugin_magic ||
      info->size < sizeof(castor_plugin_info)) {
    ::dlclose(handle);
    return fail("not a castor plugin (its " CASTOR_PLUGIN_ENTRY
                " does not return castor's plugin information)");
  }
  std::string abi = info->abi != nullptr ? info->abi : "";
  if (abi != CASTOR_PLUGIN_ABI) {
    // Not closed: unloading code built against another ABI is no safer.
    return fail(fmt::format("built against {}, but this is {}: rebuild it against this "
                            "castor (castor_add_plugin in castor's CMake package)",
                            abi.empty() ? "an unknown castor" : abi, CASTOR_PLUGIN_ABI));
  }
  if (info->register_dags == nullptr)
    return fail("registers nothing");
  auto before = dags.names().size();
  dags.set_origin("plugin " + path);
  try {
    info->register_dags(dags);
  } catch (const std::exception& e) {
    dags.set_origin("program");
    return fail(fmt::format("failed to register its DAGs: {}", e.what()));
  } catch (...) {
    dags.set_origin("program");
    return fail("failed to register its DAGs: unknown exception");
  }
  dags.set_origin("program");
  if (dags.names().size() == before)
    logger()->warn("castor: plugin '{}' registered no DAG", path);
  return {};
}

} // namespace castor::service
