// SPDX-License-Identifier: Apache-2.0
#pragma once

// The node implementations behind castor::dag. Not part of the public API:
// use castor/dag.hpp.

#include "castor/dag_traits.hpp"
#include "castor/node.hpp"
#include "castor/time.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <typeinfo>
#include <vector>

namespace castor {

class dag;

namespace detail {

class node_base {
public:
  node_base(node_kind kind, std::vector<node_base*> inputs)
      : kind_(kind), inputs_(std::move(inputs)) {}

  node_base(const node_base&) = delete;
  node_base& operator=(const node_base&) = delete;
  virtual ~node_base() = default;

  /// Runs the node for the current cycle and tells whether it counts as
  /// updated. May throw whatever user code throws.
  virtual bool run() { return false; }

  /// Puts a stream back to its empty value (at the start of the next cycle).
  virtual void reset() {}

  /// Drops a source value set for a cycle that failed before it was read.
  virtual void drop_pending() {}

  /// The type of the node's value.
  virtual const std::type_info& value_type() const noexcept = 0;

  /// Whether the node runs in the initialisation cycle regardless of inputs.
  bool runs_at_init() const noexcept {
    return kind_ == node_kind::source || kind_ == node_kind::stream ||
           kind_ == node_kind::state || kind_ == node_kind::cutoff;
  }

  /// Whether the node's value lives for one cycle only.
  bool is_transient() const noexcept {
    return kind_ == node_kind::source || kind_ == node_kind::stream;
  }

  // Engine-managed data; only castor::dag touches these.
  dag* owner_ = nullptr;
  node_kind kind_;
  std::string name_;
  std::string location_;
  std::vector<node_base*> inputs_;
  std::vector<node_base*> observers_;
  uint32_t index_ = 0;
  uint64_t scheduled_cycle_ = 0;
  uint64_t cycle_id_ = 0;
  bool pruned_ = false;
  node_metrics metrics_;
};

/// A node whose value readers see as a `const T&`.
template <class T>
class value_node : public node_base {
public:
  using node_base::node_base;

  const T& value() const noexcept { return *ptr_; }

  const std::type_info& value_type() const noexcept override { return typeid(T); }

protected:
  const T* ptr_ = nullptr;
};

/// A node that owns its value.
template <class T>
class stored_node : public value_node<T> {
public:
  stored_node(node_kind kind, std::vector<node_base*> inputs, T initial)
      : value_node<T>(kind, std::move(inputs)), value_(std::move(initial)) {
    this->ptr_ = &value_;
  }

  T value_;
};

template <class... Ins>
std::vector<node_base*> erase_inputs(const value_node<Ins>*... inputs) {
  return {const_cast<node_base*>(static_cast<const node_base*>(inputs))...};
}

template <class T>
class source_node final : public stored_node<T> {
public:
  explicit source_node(T empty)
      : stored_node<T>(node_kind::source, {}, empty), empty_(std::move(empty)) {}

  bool run() override {
    if (pending_) {
      this->value_ = std::move(*pending_);
      pending_.reset();
    }
    return !empty_traits<T>::is_empty(this->value_);
  }

  void reset() override { this->value_ = empty_; }

  void drop_pending() override { pending_.reset(); }

  std::optional<T> pending_;

private:
  T empty_;
};

// A stream. Its function returns the cycle's value or, with `Into`, writes
// it in place: `fn(T& out, const Ins&...)`, `out` being the node's empty
// value assigned over the last cycle's (reset() at the start of the cycle
// after it ran, or the catch below), so a vector keeps its capacity and the
// stream allocates nothing once warm.
template <class T, class Fn, bool Into, class... Ins>
class stream_node final : public stored_node<T> {
public:
  stream_node(Fn fn, T empty, const value_node<Ins>*... inputs)
      : stored_node<T>(node_kind::stream, erase_inputs(inputs...), empty),
        fn_(std::move(fn)), empty_(std::move(empty)), inputs_(inputs...) {}

  bool run() override {
    if constexpr (Into) {
      try {
        std::apply(
            [this](const auto*... in) { std::invoke(fn_, this->value_, in->value()...); },
            inputs_);
      } catch (...) {
        // A failed stream reads empty, as one that returns its value does.
        reset();
        throw;
      }
    } else {
      this->value_ = std::apply(
          [this](const auto*... in) -> T { return std::invoke(fn_, in->value()...); },
          inputs_);
    }
    return !empty_traits<T>::is_empty(this->value_);
  }

  void reset() override { this->value_ = empty_; }

private:
  Fn fn_;
  T empty_;
  std::tuple<const value_node<Ins>*...> inputs_;
};

template <class T, class Fn, class... Ins>
class state_node final : public stored_node<T> {
public:
  state_node(Fn fn, const value_node<Ins>*... inputs)
      : stored_node<T>(node_kind::state, erase_inputs(inputs...), T{}),
        fn_(std::move(fn)), inputs_(inputs...) {}

  bool run() override {
    using R = std::invoke_result_t<Fn&, const Ins&...>;
    if constexpr (is_state_result<R>::value) {
      auto result = std::apply(
          [this](const auto*... in) { return std::invoke(fn_, in->value()...); },
          inputs_);
      return std::move(result).apply_to(this->value_) == change::updated;
    } else {
      this->value_ = std::apply(
          [this](const auto*... in) -> T { return std::invoke(fn_, in->value()...); },
          inputs_);
      return true;
    }
  }

private:
  Fn fn_;
  std::tuple<const value_node<Ins>*...> inputs_;
};

template <class T, class Fn, class... Ins>
class accumulate_node final : public stored_node<T> {
public:
  accumulate_node(T initial, Fn fn, const value_node<Ins>*... inputs)
      : stored_node<T>(node_kind::state, erase_inputs(inputs...), std::move(initial)),
        fn_(std::move(fn)), inputs_(inputs...) {}

  bool run() override {
    using R = std::invoke_result_t<Fn&, T&, const Ins&...>;
    return std::apply(
        [this](const auto*... in) {
          if constexpr (std::is_void_v<R>) {
            std::invoke(fn_, this->value_, in->value()...);
            return true;
          } else {
            return std::invoke(fn_, this->value_, in->value()...) == change::updated;
          }
        },
        inputs_);
  }

private:
  Fn fn_;
  std::tuple<const value_node<Ins>*...> inputs_;
};

template <class T>
class const_node final : public stored_node<T> {
public:
  explicit const_node(T value)
      : stored_node<T>(node_kind::constant, {}, std::move(value)) {}
};

class now_node final : public stored_node<timestamp> {
public:
  now_node() : stored_node<timestamp>(node_kind::now, {}, timestamp{}) {}
};

/// Reads its input's value in place and passes it on (sink, silence).
template <class T>
class alias_node final : public value_node<T> {
public:
  alias_node(node_kind kind, const value_node<T>* input)
      : value_node<T>(kind, erase_inputs(input)) {
    this->ptr_ = &input->value();
  }

  bool run() override { return this->kind_ == node_kind::sink; }
};

template <class T, class Cmp>
class cutoff_node final : public stored_node<T> {
public:
  cutoff_node(Cmp cmp, const value_node<T>* input)
      : stored_node<T>(node_kind::cutoff, erase_inputs(input), input->value()),
        cmp_(std::move(cmp)), input_(input) {}

  bool run() override {
    if (seen_ && std::invoke(cmp_, std::as_const(this->value_), input_->value()))
      return false;
    this->value_ = input_->value();
    seen_ = true;
    return true;
  }

private:
  Cmp cmp_;
  const value_node<T>* input_;
  bool seen_ = false;
};

class timer_node;

class timer_node final : public stored_node<timer> {
public:
  timer_node() : stored_node<timer>(node_kind::timer, {}, timer{}) {
    value_.node_ = this;
  }

  bool run() override { return true; }

  std::optional<timestamp> due_;
  uint64_t fired_cycle_ = 0;
};

} // namespace detail
} // namespace castor
