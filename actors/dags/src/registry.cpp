// SPDX-License-Identifier: Apache-2.0
#include "castor/registry.hpp"

#include "castor/dags/builtin.hpp"
#include "castor/error.hpp"

#include <fmt/format.h>

namespace castor {

// -- param_value ----------------------------------------------------------------

const char* param_value::type_name() const noexcept {
  switch (value.index()) {
  case 0:
    return "integer";
  case 1:
    return "float";
  case 2:
    return "boolean";
  case 3:
    return "string";
  default:
    return "array";
  }
}

std::string param_value::to_string() const {
  struct visitor {
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const {
      auto text = fmt::format("{}", d);
      if (text.find_first_of(".eEin") == std::string::npos)
        text += ".0"; // still a float when read back
      return text;
    }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(const std::string& s) const {
      std::string out = "\"";
      for (auto c : s) {
        if (c == '"' || c == '\\')
          out += '\\';
        out += c;
      }
      return out + "\"";
    }
    std::string operator()(const array& items) const {
      std::string out = "[";
      for (size_t k = 0; k < items.size(); ++k)
        out += (k ? ", " : "") + items[k].to_string();
      return out + "]";
    }
  };
  return std::visit(visitor{}, value);
}

// -- dag_params -----------------------------------------------------------------

void dag_params::set(std::string key, param_value value) {
  entries_.insert_or_assign(std::move(key), std::move(value));
}

bool dag_params::contains(std::string_view key) const {
  return entries_.find(key) != entries_.end();
}

void dag_params::wrong_type(const param_value& v, const std::string& key,
                            std::string_view expected) {
  throw config_error(fmt::format("{}'engine.params.{}' must be {}, not {} ({})",
                                 v.where.empty() ? "" : v.where + ": ", key, expected,
                                 v.to_string(), v.type_name()));
}

// -- dag_config -----------------------------------------------------------------

const source_spec& dag_config::source(std::string_view name) const {
  for (auto& s : sources)
    if (s.name == name)
      return s;
  throw config_error(
      fmt::format("this DAG needs a source named '{}' ([[sources]])", name));
}

const sink_spec& dag_config::sink(std::string_view name) const {
  for (auto& s : sinks)
    if (s.name == name)
      return s;
  throw config_error(fmt::format("this DAG needs a sink named '{}' ([[sinks]])", name));
}

// -- registry -------------------------------------------------------------------

registry::registry() {
  origin_ = "built-in";
  dags::add_builtins(*this);
  origin_ = "program";
}

registry registry::empty() {
  return registry{no_builtins{}};
}

void registry::add(std::string name, dag_factory factory) {
  if (name.empty())
    throw config_error(fmt::format("a DAG from {} has an empty name", origin_));
  if (!factory)
    throw config_error(fmt::format("DAG '{}' from {} has no factory", name, origin_));
  if (auto i = entries_.find(name); i != entries_.end())
    throw config_error(fmt::format("DAG '{}' from {} is already registered (from {})",
                                   name, origin_, i->second.origin));
  entries_.emplace(std::move(name), entry{std::move(factory), origin_});
}

bool registry::contains(std::string_view name) const {
  return entries_.find(name) != entries_.end();
}

std::vector<std::string> registry::names() const {
  std::vector<std::string> out;
  for (auto& [name, _] : entries_)
    out.push_back(name);
  return out;
}

std::string registry::origin(std::string_view name) const {
  auto i = entries_.find(name);
  return i == entries_.end() ? std::string{} : i->second.origin;
}

caf::expected<pipeline_definition_ptr> registry::make(std::string_view name,
                                                      const dag_config& cfg) const {
  auto i = entries_.find(name);
  if (i == entries_.end()) {
    std::string known;
    for (auto& [n, _] : entries_)
      known += (known.empty() ? "" : ", ") + n;
    return make_error(ec::invalid_config,
                      fmt::format("no DAG '{}' (known: {})", name, known));
  }
  try {
    auto def = i->second.factory(cfg);
    if (def && *def == nullptr)
      return make_error(
          ec::invalid_config,
          fmt::format("DAG '{}' ({}) made no definition", name, i->second.origin));
    if (!def)
      return make_error(ec::invalid_config, fmt::format("DAG '{}' ({}): {}", name,
                                                        i->second.origin,
                                                        message_of(def.error())));
    return def;
  } catch (const std::exception& e) {
    return make_error(ec::invalid_config,
                      fmt::format("DAG '{}' ({}): {}", name, i->second.origin, e.what()));
  } catch (...) {
    return make_error(ec::invalid_config, fmt::format("DAG '{}' ({}): unknown exception",
                                                      name, i->second.origin));
  }
}

} // namespace castor
