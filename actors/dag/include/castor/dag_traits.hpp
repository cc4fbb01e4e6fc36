// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <concepts>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace castor {

/// Tells whether a stream value is empty. A stream only notifies its readers
/// when its value is non-empty. Works out of the box for types with an
/// `empty()` member (containers, strings, spans) and for `std::optional`;
/// specialise it for your own types.
template <class T>
struct empty_traits {
  static bool is_empty(const T& value) requires requires {
    { value.empty() } -> std::convertible_to<bool>;
  }
  { return value.empty(); }
};

template <class T>
struct empty_traits<std::optional<T>> {
  static bool is_empty(const std::optional<T>& value) { return !value.has_value(); }
};

template <class T>
struct empty_traits<std::shared_ptr<T>> {
  static bool is_empty(const std::shared_ptr<T>& value) { return value == nullptr; }
};

template <class T>
struct empty_traits<std::unique_ptr<T>> {
  static bool is_empty(const std::unique_ptr<T>& value) { return value == nullptr; }
};

/// True when `empty_traits<T>` can tell whether a `T` is empty.
template <class T>
concept has_emptiness = requires(const T& value) {
  { empty_traits<T>::is_empty(value) } -> std::convertible_to<bool>;
};

/// What a state node's function reports besides its value.
enum class change : uint8_t {
  /// The value changed: readers run this cycle.
  updated,
  /// Nothing changed: the old value stays, readers do not run.
  unchanged,
  /// The value changed, but readers are not woken; they see the new value
  /// the next time something else wakes them.
  silent,
};

/// The result of a state node's function when it wants to say more than
/// "here is my new value": `state_result<T>::unchanged()` keeps the old value
/// without waking readers, `state_result<T>::silent(v)` stores `v` without
/// waking readers. A plain `T` converts to an update.
template <class T>
class state_result {
public:
  state_result(T value) : value_(std::move(value)), change_(change::updated) {}

  static state_result unchanged() { return state_result{}; }

  static state_result silent(T value) {
    state_result result{std::move(value)};
    result.change_ = change::silent;
    return result;
  }

  castor::change kind() const noexcept { return change_; }

  /// Moves the carried value into `slot` (if any) and returns the change.
  castor::change apply_to(T& slot) && {
    if (value_)
      slot = std::move(*value_);
    return change_;
  }

private:
  state_result() : change_(change::unchanged) {}

  std::optional<T> value_;
  castor::change change_;
};

namespace detail {

template <class R>
struct state_value {
  using type = R;
};

template <class T>
struct state_value<state_result<T>> {
  using type = T;
};

template <class T>
struct is_state_result : std::false_type {};

template <class T>
struct is_state_result<state_result<T>> : std::true_type {};

} // namespace detail

/// True when `Fn` can be a node function over inputs of types `Ins...`:
/// callable with `const Ins&...` (node functions never get mutable access to
/// upstream values) and returning a value.
template <class Fn, class... Ins>
inline constexpr bool is_node_function_v = [] {
  if constexpr (std::is_invocable_v<Fn&, const Ins&...>)
    return !std::is_void_v<std::invoke_result_t<Fn&, const Ins&...>>;
  else
    return false;
}();

/// True when `Fn` can accumulate into a state of type `T` from inputs
/// `Ins...`: callable as `fn(T&, const Ins&...)`, returning `void` or
/// `castor::change`.
template <class Fn, class T, class... Ins>
inline constexpr bool is_accumulator_v = [] {
  if constexpr (std::is_invocable_v<Fn&, T&, const Ins&...>) {
    using R = std::invoke_result_t<Fn&, T&, const Ins&...>;
    return std::is_void_v<R> || std::is_same_v<R, change>;
  } else {
    return false;
  }
}();

} // namespace castor
