// SPDX-License-Identifier: Apache-2.0
#pragma once

// The DAGs a castor service can run, by name: the built-in ones and those a
// program (service_main) or a plugin (CASTOR_PLUGIN) adds. A DAG is a
// factory that builds a pipeline definition for the sources, sinks and
// parameters of a configuration.

#include "castor/pipeline.hpp"
#include "castor/start_policy.hpp"
#include "castor/time.hpp"

#include <caf/expected.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace castor {

/// A DAG source bound to a topic (`[[sources]]`).
struct source_spec {
  std::string name;
  std::string topic;
  start_policy start;
};

/// A DAG sink bound to a topic (`[[sinks]]`).
struct sink_spec {
  std::string name;
  std::string topic;
};

/// A configuration a DAG cannot take: a missing or ill-typed parameter, a
/// source or sink it does not know. Thrown by `dag_params::get`; a factory
/// may throw it too. The service reports it as a configuration error (exit 2).
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One value of `[engine.params]`: an integer, a float, a boolean, a string
/// or an array of them, with where it was written ("file.toml:12").
struct param_value {
  using array = std::vector<param_value>;
  std::variant<int64_t, double, bool, std::string, array> value;
  std::string where;

  /// "integer", "float", "boolean", "string" or "array".
  const char* type_name() const noexcept;
  /// The value as TOML would write it.
  std::string to_string() const;
};

/// The `[engine.params]` table: what a DAG is parameterized with.
///
///     auto window = cfg.params.get<castor::duration>("window");
///     auto depth = cfg.params.get_or<int>("depth", 5);
///     auto symbols = cfg.params.get_or<std::vector<std::string>>("symbols", {});
///
/// `T` is an integer type, `double` or `float`, `bool`, `std::string`,
/// `castor::duration` (a string such as "250ms", "1s", "5m") or a
/// `std::vector` of one of these. A key that is missing (`get`) or holds
/// another type (`get`, `get_or`) throws `config_error` naming
/// `engine.params.<key>` and where it was written.
class dag_params {
public:
  void set(std::string key, param_value value);

  bool contains(std::string_view key) const;
  bool empty() const noexcept { return entries_.empty(); }
  const std::map<std::string, param_value, std::less<>>& entries() const noexcept {
    return entries_;
  }

  template <class T>
  T get(std::string_view key) const {
    auto i = entries_.find(key);
    if (i == entries_.end())
      throw config_error(fmt::format("'engine.params.{}' is required by this DAG", key));
    return convert<T>(i->second, std::string{key});
  }

  template <class T>
  T get_or(std::string_view key, std::type_identity_t<T> fallback) const {
    auto i = entries_.find(key);
    if (i == entries_.end())
      return fallback;
    return convert<T>(i->second, std::string{key});
  }

private:
  template <class T>
  struct is_vector : std::false_type {};
  template <class T, class A>
  struct is_vector<std::vector<T, A>> : std::true_type {};

  [[noreturn]] static void wrong_type(const param_value& v, const std::string& key,
                                      std::string_view expected);

  template <class T>
  static T convert(const param_value& v, const std::string& key) {
    if constexpr (std::is_same_v<T, bool>) {
      if (auto* b = std::get_if<bool>(&v.value))
        return *b;
      wrong_type(v, key, "a boolean");
    } else if constexpr (std::is_integral_v<T>) {
      if (auto* i = std::get_if<int64_t>(&v.value)) {
        if (std::in_range<T>(*i))
          return static_cast<T>(*i);
        wrong_type(v, key,
                   fmt::format("an integer from {} to {}", std::numeric_limits<T>::min(),
                               std::numeric_limits<T>::max()));
      }
      wrong_type(v, key, "an integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto* d = std::get_if<double>(&v.value))
        return static_cast<T>(*d);
      if (auto* i = std::get_if<int64_t>(&v.value))
        return static_cast<T>(*i);
      wrong_type(v, key, "a number");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (auto* s = std::get_if<std::string>(&v.value))
        return *s;
      wrong_type(v, key, "a string");
    } else if constexpr (std::is_same_v<T, duration>) {
      if (auto* s = std::get_if<std::string>(&v.value))
        if (auto d = parse_duration(*s))
          return *d;
      wrong_type(v, key, "a duration such as \"250ms\", \"1s\" or \"5m\"");
    } else if constexpr (is_vector<T>::value) {
      auto* items = std::get_if<param_value::array>(&v.value);
      if (items == nullptr)
        wrong_type(v, key, "an array");
      T out;
      for (size_t k = 0; k < items->size(); ++k)
        out.push_back(convert<typename T::value_type>(
            (*items)[k], key + "[" + std::to_string(k) + "]"));
      return out;
    } else {
      static_assert(!sizeof(T),
                    "dag_params::get<T>: T is an integer, floating point, "
                    "bool, std::string, castor::duration or a vector of them");
    }
  }

  std::map<std::string, param_value, std::less<>> entries_;
};

/// What a DAG factory is given: the configuration's sources, sinks and
/// parameters.
struct dag_config {
  std::vector<source_spec> sources;
  std::vector<sink_spec> sinks;
  dag_params params;

  /// The source or sink named `name` (throws `config_error` naming the
  /// DAG's expectation when the configuration has none).
  const source_spec& source(std::string_view name) const;
  const sink_spec& sink(std::string_view name) const;
};

/// Builds a DAG for a configuration. An error it returns, or an exception it
/// throws, is reported as a configuration error naming the DAG and its
/// origin.
using dag_factory =
    std::function<caf::expected<pipeline_definition_ptr>(const dag_config&)>;

/// DAGs by name. A default-constructed registry holds castor's built-in
/// DAGs (wordcount, merge, copy, positions), registered like any other.
class registry {
public:
  /// With the built-in DAGs.
  registry();

  /// Without any DAG.
  static registry empty();

  /// Adds a DAG; a name that is empty or already taken throws
  /// `config_error` naming both origins.
  void add(std::string name, dag_factory factory);

  bool contains(std::string_view name) const;

  /// Every name, sorted.
  std::vector<std::string> names() const;

  /// Where a DAG came from: "built-in", a plugin's path, or "program".
  std::string origin(std::string_view name) const;

  /// Builds DAG `name`: `ec::invalid_config` naming it (and its origin) when
  /// it is unknown, rejects the configuration, or throws.
  caf::expected<pipeline_definition_ptr> make(std::string_view name,
                                              const dag_config& cfg) const;

  /// The origin of the DAGs added from now on (the plugin loader sets it).
  void set_origin(std::string origin) { origin_ = std::move(origin); }

private:
  struct entry {
    dag_factory factory;
    std::string origin;
  };
  struct no_builtins {};
  explicit registry(no_builtins) {}

  std::map<std::string, entry, std::less<>> entries_;
  std::string origin_ = "program";
};

} // namespace castor
