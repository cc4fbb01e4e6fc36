// SPDX-License-Identifier: Apache-2.0
#pragma once

// castor's reactive DAG: a single-threaded incremental graph of sources,
// streams, state and sinks. See docs/dag.md.

#include "castor/dag_traits.hpp"
#include "castor/detail/dag_nodes.hpp"
#include "castor/time.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <source_location>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace castor {

/// A misuse of the DAG API found at run time: a duplicate source name, a node
/// from another DAG, setting a node that is not a source, a type mismatch.
class dag_error : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

/// Why a cycle failed: the node that threw, where it was created and what it
/// threw.
struct node_failure {
  /// The node's name.
  std::string node;
  /// The node's kind.
  node_kind kind = node_kind::stream;
  /// Where the node was created (`file:line`).
  std::string location;
  /// The exception's message.
  std::string what;
  /// The cycle that failed.
  uint64_t cycle_id = 0;
  /// The cycle time of the failed cycle.
  timestamp time{};

  /// One line for logs: "node 'x' (stream, created at f.cpp:12) failed in
  /// cycle 7: boom".
  std::string message() const;
};

/// Thrown by the test bench when a cycle fails.
class node_error : public std::runtime_error {
public:
  explicit node_error(node_failure failure)
      : std::runtime_error(failure.message()), failure_(std::move(failure)) {}

  const node_failure& failure() const noexcept { return failure_; }

private:
  node_failure failure_;
};

/// What one cycle did.
struct cycle_metrics {
  /// The cycle's id (the first cycle is 1).
  uint64_t cycle_id = 0;
  /// The cycle time.
  timestamp time{};
  /// Nodes notified (sources set, timers fired, readers of updated nodes).
  uint64_t notifications = 0;
  /// Nodes that ran.
  uint64_t nodes_run = 0;
  /// Timers that fired.
  uint64_t timers_fired = 0;
  /// Wall time the cycle took (zero while timing is off).
  duration elapsed{0};
  /// How many cycles this one stands for in the nodes' times: 0 when its
  /// nodes were not timed, 1 when they were timed as every cycle's are, the
  /// sampling period when they were one fast cycle's in that many (see
  /// `dag::time_one_cycle_in`).
  uint32_t timing_weight = 0;
  /// Whether a node threw.
  bool failed = false;
};

/// An untyped view of a node: name, kind, metrics, and checked access to its
/// value. Valid as long as its DAG lives.
class node_handle {
public:
  node_handle() = default;
  explicit node_handle(const detail::node_base* node) : node_(node) {}

  const std::string& name() const { return node_->name_; }
  node_kind kind() const { return node_->kind_; }
  /// Where the node was created (`file:line`).
  const std::string& location() const { return node_->location_; }
  /// The last cycle in which the node counted as updated (0: never).
  uint64_t cycle_id() const { return node_->cycle_id_; }
  const node_metrics& metrics() const { return node_->metrics_; }
  const std::type_info& value_type() const { return node_->value_type(); }

  /// The node's value; throws dag_error when it is not a `T`.
  template <class T>
  const T& value_as() const {
    check_type(typeid(T));
    return static_cast<const detail::value_node<T>*>(node_)->value();
  }

  const detail::node_base* get() const noexcept { return node_; }

private:
  void check_type(const std::type_info& wanted) const;

  const detail::node_base* node_ = nullptr;
};

/// A typed handle to a node whose value is a `T`: what the DAG's building
/// functions return and take as inputs.
template <class T>
class node_ref {
public:
  using value_type = T;

  node_ref() = default;
  explicit node_ref(detail::value_node<T>* node) : node_(node) {}

  /// The node's current value.
  const T& value() const { return node_->value(); }
  const std::string& name() const { return node_->name_; }
  /// The last cycle in which the node counted as updated (0: never).
  uint64_t cycle_id() const { return node_->cycle_id_; }
  node_handle handle() const { return node_handle{node_}; }
  detail::value_node<T>* get() const noexcept { return node_; }
  explicit operator bool() const noexcept { return node_ != nullptr; }

private:
  detail::value_node<T>* node_ = nullptr;
};

/// A source stream: a node whose value the driver (or a test) sets.
template <class T>
class source_ref : public node_ref<T> {
public:
  source_ref() = default;
  explicit source_ref(detail::source_node<T>* node) : node_ref<T>(node) {}
};

/// A sink: what drivers read after a cycle.
template <class T>
class sink_ref : public node_ref<T> {
public:
  sink_ref() = default;
  explicit sink_ref(detail::value_node<T>* node) : node_ref<T>(node) {}
};

namespace detail {

template <class T>
struct is_node_ref : std::false_type {};
template <class T>
struct is_node_ref<node_ref<T>> : std::true_type {};
template <class T>
struct is_node_ref<source_ref<T>> : std::true_type {};
template <class T>
struct is_node_ref<sink_ref<T>> : std::true_type {};

template <class T>
inline constexpr bool is_node_ref_v = is_node_ref<std::remove_cvref_t<T>>::value;

template <class Ref>
using ref_value_t = typename std::remove_cvref_t<Ref>::value_type;

std::string format_location(const std::source_location& loc);

/// The readable (demangled) name of a type.
std::string type_name(const std::type_info& type);

/// "castor: <what> '<name>' holds <have> values, not <wanted>".
std::string type_mismatch(const char* what, std::string_view name,
                          const std::type_info& have, const std::type_info& wanted);

struct no_empty {};

} // namespace detail

class dag;

/// Builds a stream node: `dag.stream(fn).map(inputs...)`.
template <class Fn, class Empty = detail::no_empty>
class stream_builder {
public:
  stream_builder(dag* owner, Fn fn, Empty empty, std::source_location loc)
      : owner_(owner), fn_(std::move(fn)), empty_(std::move(empty)), loc_(loc) {}

  /// Gives the node a name (default: derived from its kind and position).
  stream_builder& named(std::string name) & {
    name_ = std::move(name);
    return *this;
  }
  stream_builder&& named(std::string name) && {
    name_ = std::move(name);
    return std::move(*this);
  }

  /// Wires the node to its inputs and adds it to the DAG.
  template <class... Refs>
  auto map(const Refs&... inputs);

private:
  dag* owner_;
  Fn fn_;
  Empty empty_;
  std::source_location loc_;
  std::string name_;
};

/// Builds a state node: `dag.state(fn).map(inputs...)`.
template <class Fn>
class state_builder {
public:
  state_builder(dag* owner, Fn fn, std::source_location loc)
      : owner_(owner), fn_(std::move(fn)), loc_(loc) {}

  state_builder& named(std::string name) & {
    name_ = std::move(name);
    return *this;
  }
  state_builder&& named(std::string name) && {
    name_ = std::move(name);
    return std::move(*this);
  }

  template <class... Refs>
  auto map(const Refs&... inputs);

private:
  dag* owner_;
  Fn fn_;
  std::source_location loc_;
  std::string name_;
};

/// Builds a node that updates its value in place, with `fn(T&, const
/// Ins&...)`: a state (`dag.accumulate(initial, fn).map(inputs...)`) or,
/// with `Stream`, a stream (`dag.stream_into(empty, fn).map(inputs...)`).
template <class T, class Fn, bool Stream = false>
class accumulate_builder {
public:
  accumulate_builder(dag* owner, T initial, Fn fn, std::source_location loc)
      : owner_(owner), initial_(std::move(initial)), fn_(std::move(fn)), loc_(loc) {}

  accumulate_builder& named(std::string name) & {
    name_ = std::move(name);
    return *this;
  }
  accumulate_builder&& named(std::string name) && {
    name_ = std::move(name);
    return std::move(*this);
  }

  template <class... Refs>
  auto map(const Refs&... inputs);

private:
  dag* owner_;
  T initial_;
  Fn fn_;
  std::source_location loc_;
  std::string name_;
};

/// A single-threaded incremental graph. Nodes are added with their inputs
/// already present, so insertion order is a topological order and cycles
/// cannot be built. `execute(t)` runs one cycle: only the nodes whose inputs
/// updated run, each at most once, in insertion order.
class dag {
public:
  using location = std::source_location;

  dag();
  ~dag();
  dag(const dag&) = delete;
  dag& operator=(const dag&) = delete;

  // -- building ---------------------------------------------------------------

  /// A source stream named `name`, set by the driver or a test. Its value
  /// lives for one cycle; `empty` is what it reads when not set.
  template <class T>
  source_ref<T> source_stream(std::string name, T empty = T{},
                              location loc = location::current());

  /// A stream: runs when an input updated; its result lives for one cycle
  /// and counts as updated when non-empty.
  template <class Fn>
  stream_builder<Fn> stream(Fn fn, location loc = location::current()) {
    return {this, std::move(fn), detail::no_empty{}, loc};
  }

  /// A stream with an explicit empty value (each node keeps its own copy).
  template <class Fn, class Empty>
  stream_builder<Fn, Empty> stream(Fn fn, Empty empty,
                                   location loc = location::current()) {
    return {this, std::move(fn), std::move(empty), loc};
  }

  /// A state: runs when an input updated; its value persists. `fn` returns
  /// the new value (`T`) or a `state_result<T>`.
  template <class Fn>
  state_builder<Fn> state(Fn fn, location loc = location::current()) {
    return {this, std::move(fn), loc};
  }

  /// A state that updates its value in place: `fn(T& value, const Ins&...)`
  /// returning `void` (updated) or a `castor::change`.
  template <class T, class Fn>
  accumulate_builder<T, Fn> accumulate(T initial, Fn fn,
                                       location loc = location::current()) {
    return {this, std::move(initial), std::move(fn), loc};
  }

  /// A stream that writes its value in place: `fn(T& out, const Ins&...)`
  /// returning `void`. `out` comes as `empty` (a vector keeps the capacity
  /// of the last cycle's value, so the stream allocates nothing once warm);
  /// the stream counts as updated when `out` is non-empty after `fn`.
  template <class T, class Fn>
  accumulate_builder<T, Fn, true> stream_into(T empty, Fn fn,
                                              location loc = location::current()) {
    return {this, std::move(empty), std::move(fn), loc};
  }

  /// A constant: never runs, never updates.
  template <class T>
  node_ref<std::decay_t<T>> const_(T&& value, location loc = location::current());

  /// A sink named `name`: updated when its input updated. Drivers read the
  /// sinks updated in a cycle.
  template <class Ref>
  sink_ref<detail::ref_value_t<Ref>> sink(std::string name, const Ref& input,
                                          location loc = location::current());

  /// The cycle time. Reading it wakes nobody.
  node_ref<timestamp> now();

  /// A timer manager: its value is a `timer` that node functions may set;
  /// the node updates (waking its readers) in the cycle the timer fires.
  node_ref<timer> timer_manager(location loc = location::current());

  /// Passes its input on only when `same(previous, current)` is false, where
  /// `previous` is the last value passed on. Default: `==`.
  template <class Ref, class Cmp = std::equal_to<>>
  node_ref<detail::ref_value_t<Ref>> cutoff(const Ref& input, Cmp same = {},
                                            location loc = location::current());

  /// Reads its input but never wakes its readers.
  template <class Ref>
  node_ref<detail::ref_value_t<Ref>> silence(const Ref& input,
                                             location loc = location::current());

  /// Removes every node with no path to a sink; returns how many. Handles to
  /// removed nodes must not be used afterwards.
  size_t prune();

  // -- running ----------------------------------------------------------------

  /// Sets a source's value for the next cycle.
  template <class T, class V>
  void set(const source_ref<T>& source, V&& value);

  /// Sets the source named `name`; throws dag_error for an unknown name or a
  /// value of the wrong type.
  template <class T>
  void set(std::string_view name, T&& value);

  /// Runs one cycle at time `t` (the cycle time never moves backwards): fires
  /// due timers, then runs the notified nodes in order. Returns the failure
  /// when a node threw: the cycle then produces no sink updates, the nodes
  /// after the failing one do not run, and the DAG is ready for the next
  /// cycle (see docs/dag.md, "When a node throws").
  [[nodiscard]] std::optional<node_failure> execute(timestamp t);

  // -- inspecting -------------------------------------------------------------

  /// The id of the last cycle run (0 before the first).
  uint64_t cycle_id() const noexcept { return cycle_; }

  /// The time of the last cycle.
  timestamp time() const noexcept { return time_; }

  /// The earliest pending timer, if any.
  std::optional<timestamp> next_timer() const;

  /// The sinks updated in the last cycle, in creation order.
  std::span<const node_handle> updated_sinks() const noexcept { return updated_sinks_; }

  /// Every source, in creation order.
  std::vector<node_handle> sources() const;

  /// Every sink, in creation order.
  std::vector<node_handle> sinks() const;

  /// Every node, in topological order.
  std::vector<node_handle> nodes() const;

  std::optional<node_handle> find_source(std::string_view name) const;
  std::optional<node_handle> find_sink(std::string_view name) const;

  /// Number of nodes.
  size_t size() const noexcept { return nodes_.size(); }

  /// What the last cycle did.
  const cycle_metrics& last_cycle() const noexcept { return last_cycle_; }

  /// Turns timing of node runs on (default) or off.
  void enable_timing(bool on) noexcept { timing_ = on; }

  /// Every cycle is timed (two clock reads: `cycle_metrics::elapsed`); its
  /// nodes (a read per node run) in the first 1000 cycles, in every cycle
  /// that follows one that took `slow` or longer (default 20 µs), and
  /// otherwise in one cycle in `n` (picked pseudo-randomly, default 16),
  /// whose node times count n times (`cycle_metrics::timing_weight`), so
  /// that total times estimate the whole and `max_time` is the longest run
  /// timed. A clock read costs tens of ns: at a cycle per message, timing
  /// every node of every cycle costs about as much as the nodes. `n == 1`
  /// times every node run.
  void time_one_cycle_in(uint32_t n, duration slow = default_slow_cycle) noexcept {
    sample_period_ = std::max<uint32_t>(n, 1);
    slow_cycle_ = slow;
  }

  /// Cycles whose nodes are all timed before sampling starts.
  static constexpr uint64_t always_timed_cycles = 1000;
  static constexpr uint32_t default_sample_period = 16;
  static constexpr duration default_slow_cycle = std::chrono::microseconds{20};

private:
  // The weight of the node times of the cycle about to run (0: not timed).
  uint32_t node_timing_weight() noexcept;
  friend class timer;
  template <class, class>
  friend class stream_builder;
  template <class>
  friend class state_builder;
  template <class, class, bool>
  friend class accumulate_builder;

  template <class Node>
  Node* add(std::unique_ptr<Node> node, std::string name, const location& loc);

  void add_erased(std::unique_ptr<detail::node_base> node, std::string name,
                  const location& loc);

  template <class... Refs>
  void check_inputs(const Refs&... inputs) const {
    (check_input(inputs.get(), "input"), ...);
  }

  void check_input(const detail::node_base* node, const char* what) const;

  detail::node_base* lookup_source(std::string_view name) const;

  void schedule_for_next_cycle(detail::node_base* node);
  void set_timer(detail::timer_node* node, std::optional<timestamp> t);
  bool run_node(detail::node_base* node, std::optional<node_failure>& failure);
  void notify_observers(detail::node_base* node);

  struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using name_map =
      std::unordered_map<std::string, detail::node_base*, string_hash, std::equal_to<>>;

  std::vector<std::unique_ptr<detail::node_base>> nodes_;
  std::vector<std::unique_ptr<detail::node_base>> pruned_;
  std::vector<detail::node_base*> source_list_;
  std::vector<detail::node_base*> sink_list_;
  name_map sources_;
  name_map sinks_;
  // Min-heap (by index) of the nodes notified for the current cycle.
  std::vector<detail::node_base*> ready_;
  // Transient nodes that ran and must read empty again next cycle.
  std::vector<detail::node_base*> to_reset_;
  std::vector<node_handle> updated_sinks_;
  std::set<std::pair<timestamp, detail::timer_node*>> timers_;
  detail::now_node* now_ = nullptr;
  uint64_t cycle_ = 0;
  timestamp time_ = timestamp::min();
  bool initialised_ = false;
  bool timing_ = true;
  // Sampling of node times (see time_one_cycle_in).
  uint32_t sample_period_ = default_sample_period;
  duration slow_cycle_ = default_slow_cycle;
  bool slow_ = false;
  uint64_t sample_state_ = 0x9e3779b97f4a7c15ull;
  std::chrono::steady_clock::time_point tick_;
  cycle_metrics last_cycle_;
};

// -- implementation of the templates --------------------------------------------

template <class Node>
Node* dag::add(std::unique_ptr<Node> node, std::string name, const location& loc) {
  auto* raw = node.get();
  add_erased(std::move(node), std::move(name), loc);
  return raw;
}

template <class T>
source_ref<T> dag::source_stream(std::string name, T empty, location loc) {
  static_assert(has_emptiness<T>,
                "castor: a source's value type needs an empty() member or a "
                "castor::empty_traits<T> specialisation");
  if (name.empty())
    throw dag_error("castor: a source needs a name (at " + detail::format_location(loc) +
                    ")");
  if (sources_.contains(name))
    throw dag_error("castor: duplicate source name '" + name + "' (at " +
                    detail::format_location(loc) + ")");
  auto* node = add(std::make_unique<detail::source_node<T>>(std::move(empty)), name, loc);
  sources_.emplace(std::move(name), node);
  source_list_.push_back(node);
  return source_ref<T>{node};
}

template <class T>
node_ref<std::decay_t<T>> dag::const_(T&& value, location loc) {
  using V = std::decay_t<T>;
  auto* node =
      add(std::make_unique<detail::const_node<V>>(std::forward<T>(value)), {}, loc);
  return node_ref<V>{node};
}

template <class Ref>
sink_ref<detail::ref_value_t<Ref>> dag::sink(std::string name, const Ref& input,
                                             location loc) {
  static_assert(detail::is_node_ref_v<Ref>,
                "castor: sink() takes a node handle returned by this dag");
  using V = detail::ref_value_t<Ref>;
  check_input(input.get(), "sink input");
  if (name.empty())
    throw dag_error("castor: a sink needs a name (at " + detail::format_location(loc) +
                    ")");
  if (sinks_.contains(name))
    throw dag_error("castor: duplicate sink name '" + name + "' (at " +
                    detail::format_location(loc) + ")");
  auto* node = add(std::make_unique<detail::alias_node<V>>(node_kind::sink, input.get()),
                   name, loc);
  sinks_.emplace(std::move(name), node);
  sink_list_.push_back(node);
  return sink_ref<V>{node};
}

template <class Ref, class Cmp>
node_ref<detail::ref_value_t<Ref>> dag::cutoff(const Ref& input, Cmp same, location loc) {
  static_assert(detail::is_node_ref_v<Ref>,
                "castor: cutoff() takes a node handle returned by this dag");
  using V = detail::ref_value_t<Ref>;
  static_assert(std::is_invocable_r_v<bool, Cmp&, const V&, const V&>,
                "castor: a cutoff comparator is called as same(previous, current) "
                "with two const references and returns bool");
  static_assert(std::is_copy_constructible_v<V>, "castor: cutoff needs a copyable value");
  check_input(input.get(), "cutoff input");
  auto* node =
      add(std::make_unique<detail::cutoff_node<V, Cmp>>(std::move(same), input.get()), {},
          loc);
  return node_ref<V>{node};
}

template <class Ref>
node_ref<detail::ref_value_t<Ref>> dag::silence(const Ref& input, location loc) {
  static_assert(detail::is_node_ref_v<Ref>,
                "castor: silence() takes a node handle returned by this dag");
  using V = detail::ref_value_t<Ref>;
  check_input(input.get(), "silence input");
  auto* node = add(
      std::make_unique<detail::alias_node<V>>(node_kind::silence, input.get()), {}, loc);
  return node_ref<V>{node};
}

template <class T, class V>
void dag::set(const source_ref<T>& source, V&& value) {
  static_assert(std::is_constructible_v<T, V&&>,
                "castor: the value cannot be converted to the source's type");
  check_input(source.get(), "source");
  auto* node = static_cast<detail::source_node<T>*>(source.get());
  node->pending_.emplace(std::forward<V>(value));
  schedule_for_next_cycle(node);
}

template <class T>
void dag::set(std::string_view name, T&& value) {
  using V = std::decay_t<T>;
  auto* node = lookup_source(name);
  if (node->value_type() != typeid(V))
    throw dag_error(detail::type_mismatch("source", name, node->value_type(), typeid(V)));
  auto* source = static_cast<detail::source_node<V>*>(node);
  source->pending_.emplace(std::forward<T>(value));
  schedule_for_next_cycle(source);
}

template <class Fn, class Empty>
template <class... Refs>
auto stream_builder<Fn, Empty>::map(const Refs&... inputs) {
  static_assert((detail::is_node_ref_v<Refs> && ...),
                "castor: map() takes node handles (node_ref<T>) returned by this dag");
  constexpr bool callable = is_node_function_v<Fn, detail::ref_value_t<Refs>...>;
  static_assert(callable,
                "castor: this stream's function cannot be called with const references "
                "to its inputs' values (in map's order), or it returns void");
  if constexpr (callable) {
    using R =
        std::decay_t<std::invoke_result_t<Fn&, const detail::ref_value_t<Refs>&...>>;
    static_assert(has_emptiness<R>,
                  "castor: a stream's value type needs an empty() member or a "
                  "castor::empty_traits<T> specialisation");
    owner_->check_inputs(inputs...);
    R empty = [&] {
      if constexpr (std::is_same_v<Empty, detail::no_empty>)
        return R{};
      else
        return R(std::move(empty_));
    }();
    using node_t = detail::stream_node<R, Fn, false, detail::ref_value_t<Refs>...>;
    auto* node = owner_->add(
        std::make_unique<node_t>(std::move(fn_), std::move(empty), inputs.get()...),
        std::move(name_), loc_);
    return node_ref<R>{node};
  } else {
    return node_ref<int>{};
  }
}

template <class Fn>
template <class... Refs>
auto state_builder<Fn>::map(const Refs&... inputs) {
  static_assert((detail::is_node_ref_v<Refs> && ...),
                "castor: map() takes node handles (node_ref<T>) returned by this dag");
  constexpr bool callable = is_node_function_v<Fn, detail::ref_value_t<Refs>...>;
  static_assert(callable,
                "castor: this state's function cannot be called with const references "
                "to its inputs' values (in map's order), or it returns void");
  if constexpr (callable) {
    using R =
        std::decay_t<std::invoke_result_t<Fn&, const detail::ref_value_t<Refs>&...>>;
    using T = typename detail::state_value<R>::type;
    static_assert(std::is_default_constructible_v<T>,
                  "castor: a state's value type must be default-constructible (or use "
                  "dag.accumulate(initial, fn))");
    owner_->check_inputs(inputs...);
    using node_t = detail::state_node<T, Fn, detail::ref_value_t<Refs>...>;
    auto* node = owner_->add(std::make_unique<node_t>(std::move(fn_), inputs.get()...),
                             std::move(name_), loc_);
    return node_ref<T>{node};
  } else {
    return node_ref<int>{};
  }
}

template <class T, class Fn, bool Stream>
template <class... Refs>
auto accumulate_builder<T, Fn, Stream>::map(const Refs&... inputs) {
  static_assert((detail::is_node_ref_v<Refs> && ...),
                "castor: map() takes node handles (node_ref<T>) returned by this dag");
  constexpr bool callable = [] {
    if constexpr (!is_accumulator_v<Fn, T, detail::ref_value_t<Refs>...>)
      return false;
    else if constexpr (Stream)
      return std::is_void_v<std::invoke_result_t<Fn&, T&, const detail::ref_value_t<Refs>&...>>;
    else
      return true;
  }();
  static_assert(callable || Stream,
                "castor: an accumulator is called as fn(T& value, const inputs&...) and "
                "returns void or castor::change");
  static_assert(callable || !Stream,
                "castor: stream_into's function is called as fn(T& out, const inputs&...) "
                "and returns void");
  if constexpr (Stream)
    static_assert(has_emptiness<T>, "castor: a stream's value type needs an empty() member "
                                    "or a castor::empty_traits<T> specialisation");
  if constexpr (callable && (!Stream || has_emptiness<T>)) {
    owner_->check_inputs(inputs...);
    auto* node = [&] {
      if constexpr (Stream)
        return owner_->add(
            std::make_unique<detail::stream_node<T, Fn, true, detail::ref_value_t<Refs>...>>(
                std::move(fn_), std::move(initial_), inputs.get()...),
            std::move(name_), loc_);
      else
        return owner_->add(
            std::make_unique<detail::accumulate_node<T, Fn, detail::ref_value_t<Refs>...>>(
                std::move(initial_), std::move(fn_), inputs.get()...),
            std::move(name_), loc_);
    }();
    return node_ref<T>{node};
  } else {
    return node_ref<int>{};
  }
}

} // namespace castor
