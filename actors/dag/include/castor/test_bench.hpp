// SPDX-License-Identifier: Apache-2.0
#pragma once

// A test bench for users' own DAG tests: set sources, execute at a time,
// assert sink values and sinks that were not updated. Works with any test
// framework: a failed expectation throws castor::expectation_failed with a
// readable message.

#include "castor/dag.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace castor {

/// Thrown by test_bench when an expectation does not hold.
class expectation_failed : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class T>
std::string render(const T& value) {
  if constexpr (fmt::is_formattable<T>::value) {
    return fmt::format("{}", value);
  } else if constexpr (requires(std::ostream & os) { os << value; }) {
    std::ostringstream os;
    os << value;
    return os.str();
  } else {
    return "<" + type_name(typeid(T)) + " value>";
  }
}

} // namespace detail

/// Drives a DAG in tests:
/// ```
/// castor::test_bench bench{dag};
/// bench.set("words", words{"a", "b"}).execute(t1).expect_sink("counts", expected);
/// bench.execute(t2).expect_not_updated("counts");
/// ```
class test_bench {
public:
  explicit test_bench(dag& graph) : dag_(graph) {}

  /// Sets the source named `name` for the next cycle.
  template <class T>
  test_bench& set(std::string_view name, T&& value) {
    dag_.set(name, std::forward<T>(value));
    return *this;
  }

  /// Sets a source for the next cycle.
  template <class T, class V>
  test_bench& set(const source_ref<T>& source, V&& value) {
    dag_.set(source, std::forward<V>(value));
    return *this;
  }

  /// Runs one cycle at `t`; throws node_error when a node throws.
  test_bench& execute(timestamp t) {
    if (auto failure = dag_.execute(t))
      throw node_error(std::move(*failure));
    return *this;
  }

  /// Whether the sink named `name` was updated in the last cycle.
  bool updated(std::string_view name) const {
    return sink(name).cycle_id() == dag_.cycle_id();
  }

  /// The value of the sink named `name` (checked type).
  template <class T>
  const T& sink_value(std::string_view name) const {
    return sink(name).value_as<T>();
  }

  /// Expects the sink named `name` to have been updated in the last cycle
  /// with a value equal to `expected`.
  template <class T>
  test_bench& expect_sink(std::string_view name, const T& expected) {
    auto handle = sink(name);
    if (handle.cycle_id() != dag_.cycle_id())
      throw expectation_failed(
          fmt::format("castor: sink '{}' was not updated in cycle {} (expected {})", name,
                      dag_.cycle_id(), detail::render(expected)));
    const auto& actual = handle.value_as<T>();
    if (!(actual == expected))
      throw expectation_failed(
          fmt::format("castor: sink '{}' in cycle {}: expected {}, got {}", name,
                      dag_.cycle_id(), detail::render(expected), detail::render(actual)));
    return *this;
  }

  /// Expects the sink named `name` not to have been updated in the last cycle.
  test_bench& expect_not_updated(std::string_view name) {
    if (updated(name))
      throw expectation_failed(fmt::format("castor: sink '{}' was updated in cycle {}",
                                           name, dag_.cycle_id()));
    return *this;
  }

  dag& graph() noexcept { return dag_; }

private:
  node_handle sink(std::string_view name) const {
    auto handle = dag_.find_sink(name);
    if (!handle)
      throw dag_error(fmt::format("castor: no sink named '{}'", name));
    return *handle;
  }

  dag& dag_;
};

} // namespace castor
