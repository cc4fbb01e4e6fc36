// SPDX-License-Identifier: Apache-2.0
#include "castor/dag.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cxxabi.h>

namespace castor {

namespace {

// Min-heap by topological index.
constexpr auto later = [](const detail::node_base* a, const detail::node_base* b) {
  return a->index_ > b->index_;
};

} // namespace

const char* to_string(node_kind kind) noexcept {
  switch (kind) {
  case node_kind::source:
    return "source";
  case node_kind::stream:
    return "stream";
  case node_kind::state:
    return "state";
  case node_kind::constant:
    return "const";
  case node_kind::sink:
    return "sink";
  case node_kind::now:
    return "now";
  case node_kind::timer:
    return "timer";
  case node_kind::cutoff:
    return "cutoff";
  case node_kind::silence:
    return "silence";
  }
  return "unknown";
}

std::string node_failure::message() const {
  return fmt::format("node '{}' ({}, created at {}) failed in cycle {} at {}: {}", node,
                     to_string(kind), location, cycle_id, to_string(time), what);
}

namespace detail {

std::string format_location(const std::source_location& loc) {
  // Keep the last two path components: "tests/dag_test.cpp:42".
  std::string_view file = loc.file_name();
  if (auto last = file.rfind('/'); last != std::string_view::npos && last > 0)
    if (auto before = file.rfind('/', last - 1); before != std::string_view::npos)
      file.remove_prefix(before + 1);
  return fmt::format("{}:{}", file, loc.line());
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled{
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free};
  return status == 0 && demangled ? std::string{demangled.get()} : type.name();
}

std::string type_mismatch(const char* what, std::string_view name,
                          const std::type_info& have, const std::type_info& wanted) {
  return fmt::format("castor: {} '{}' holds {} values, not {}", what, name,
                     type_name(have), type_name(wanted));
}

} // namespace detail

void node_handle::check_type(const std::type_info& wanted) const {
  if (node_->value_type() != wanted)
    throw dag_error(detail::type_mismatch(to_string(node_->kind_), node_->name_,
                                          node_->value_type(), wanted));
}

// -- timer ----------------------------------------------------------------------

void timer::set(timestamp t) const {
  node_->owner_->set_timer(node_, t);
}

void timer::clear() const {
  node_->owner_->set_timer(node_, std::nullopt);
}

std::optional<timestamp> timer::next() const noexcept {
  return node_->due_;
}

bool timer::fired() const noexcept {
  return node_->fired_cycle_ != 0 && node_->fired_cycle_ == node_->owner_->cycle_id();
}

// -- dag: building --------------------------------------------------------------

dag::dag() = default;

dag::~dag() = default;

void dag::add_erased(std::unique_ptr<detail::node_base> node, std::string name,
                     const location& loc) {
  node->owner_ = this;
  node->index_ = static_cast<uint32_t>(nodes_.size());
  node->name_ = name.empty() ? fmt::format("{}_{}", to_string(node->kind_), node->index_)
                             : std::move(name);
  node->location_ = detail::format_location(loc);
  for (auto* input : node->inputs_) {
    // The same node used twice as input is observed once.
    auto& observers = input->observers_;
    if (std::find(observers.begin(), observers.end(), node.get()) == observers.end())
      observers.push_back(node.get());
  }
  nodes_.push_back(std::move(node));
}

void dag::check_input(const detail::node_base* node, const char* what) const {
  if (node == nullptr)
    throw dag_error(fmt::format("castor: {} is an empty node handle", what));
  if (node->owner_ != this)
    throw dag_error(fmt::format("castor: {} '{}' belongs to another dag (created at {})",
                                what, node->name_, node->location_));
  if (node->pruned_)
    throw dag_error(
        fmt::format("castor: {} '{}' was removed by prune()", what, node->name_));
}

node_ref<timestamp> dag::now() {
  if (now_ == nullptr) {
    auto node = std::make_unique<detail::now_node>();
    now_ = node.get();
    add_erased(std::move(node), "now", location::current());
    now_->value_ = time_ == timestamp::min() ? timestamp{} : time_;
  }
  return node_ref<timestamp>{now_};
}

node_ref<timer> dag::timer_manager(location loc) {
  auto* node = add(std::make_unique<detail::timer_node>(), {}, loc);
  return node_ref<timer>{node};
}

size_t dag::prune() {
  std::vector<char> keep(nodes_.size(), 0);
  for (size_t i = nodes_.size(); i-- > 0;) {
    auto* node = nodes_[i].get();
    if (node->kind_ == node_kind::sink)
      keep[i] = 1;
    if (keep[i])
      for (auto* input : node->inputs_)
        keep[input->index_] = 1;
  }
  std::vector<std::unique_ptr<detail::node_base>> kept;
  kept.reserve(nodes_.size());
  auto removed = [](const detail::node_base* n) { return n->pruned_; };
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (keep[i]) {
      kept.push_back(std::move(nodes_[i]));
      continue;
    }
    auto* node = nodes_[i].get();
    node->pruned_ = true;
    node->observers_.clear();
    if (node->kind_ == node_kind::source)
      sources_.erase(node->name_);
    if (node->kind_ == node_kind::timer)
      set_timer(static_cast<detail::timer_node*>(node), std::nullopt);
    if (node == now_)
      now_ = nullptr;
    pruned_.push_back(std::move(nodes_[i]));
  }
  auto count = nodes_.size() - kept.size();
  nodes_ = std::move(kept);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto& node = *nodes_[i];
    node.index_ = static_cast<uint32_t>(i);
    std::erase_if(node.observers_, removed);
  }
  std::erase_if(source_list_, removed);
  std::erase_if(to_reset_, removed);
  std::erase_if(ready_, removed);
  std::make_heap(ready_.begin(), ready_.end(), later);
  return count;
}

// -- dag: running ---------------------------------------------------------------

detail::node_base* dag::lookup_source(std::string_view name) const {
  if (auto i = sources_.find(name); i != sources_.end())
    return i->second;
  if (sinks_.contains(name))
    throw dag_error(fmt::format(
        "castor: '{}' is a sink, not a source: only sources can be set", name));
  throw dag_error(fmt::format("castor: no source named '{}'", name));
}

void dag::schedule_for_next_cycle(detail::node_base* node) {
  if (node->scheduled_cycle_ == cycle_ + 1)
    return;
  node->scheduled_cycle_ = cycle_ + 1;
  ready_.push_back(node);
  std::push_heap(ready_.begin(), ready_.end(), later);
}

void dag::set_timer(detail::timer_node* node, std::optional<timestamp> t) {
  if (node->due_)
    timers_.erase({*node->due_, node});
  node->due_ = t;
  if (t)
    timers_.emplace(*t, node);
}

void dag::notify_observers(detail::node_base* node) {
  for (auto* observer : node->observers_) {
    if (observer->scheduled_cycle_ == cycle_)
      continue;
    observer->scheduled_cycle_ = cycle_;
    ready_.push_back(observer);
    std::push_heap(ready_.begin(), ready_.end(), later);
    ++last_cycle_.notifications;
  }
}

bool dag::run_node(detail::node_base* node, std::optional<node_failure>& failure) {
  ++last_cycle_.nodes_run;
  ++node->metrics_.runs;
  bool updated = false;
  try {
    updated = node->run();
  } catch (const std::exception& e) {
    failure =
        node_failure{node->name_, node->kind_, node->location_, e.what(), cycle_, time_};
  } catch (...) {
    failure = node_failure{node->name_,         node->kind_, node->location_,
                           "unknown exception", cycle_,      time_};
  }
  if (auto weight = last_cycle_.timing_weight; weight > 0) {
    // One clock read per node: the time since the previous node finished,
    // i.e. the node's run plus the engine's few ns of bookkeeping for it.
    auto now = std::chrono::steady_clock::now();
    auto spent = std::chrono::duration_cast<duration>(now - tick_);
    tick_ = now;
    node->metrics_.total_time += spent * weight;
    node->metrics_.max_time = std::max(node->metrics_.max_time, spent);
  }
  if (failure)
    return false;
  if (node->is_transient())
    to_reset_.push_back(node);
  if (updated) {
    ++node->metrics_.updates;
    node->cycle_id_ = cycle_;
    if (node->kind_ == node_kind::sink)
      updated_sinks_.emplace_back(node);
    notify_observers(node);
  }
  return true;
}

uint32_t dag::node_timing_weight() noexcept {
  if (!timing_)
    return 0;
  // The first cycles are all timed (a short run's figures are exact), and
  // every cycle after a slow one.
  if (slow_ || sample_period_ == 1 || cycle_ < always_timed_cycles)
    return 1;
  // xorshift64: a pseudo-random pick, so that work recurring every k cycles
  // is neither always nor never timed.
  sample_state_ ^= sample_state_ << 13;
  sample_state_ ^= sample_state_ >> 7;
  sample_state_ ^= sample_state_ << 17;
  return sample_state_ % sample_period_ == 0 ? sample_period_ : 0;
}

std::optional<node_failure> dag::execute(timestamp t) {
  using clock = std::chrono::steady_clock;
  // The cycle is timed whenever timing is on (two clock reads); its nodes
  // one cycle in sample_period_ while cycles are fast (one read per node).
  auto weight = node_timing_weight();
  auto start = timing_ ? clock::now() : clock::time_point{};
  ++cycle_;
  time_ = std::max(time_, t);
  last_cycle_ = cycle_metrics{};
  last_cycle_.cycle_id = cycle_;
  last_cycle_.timing_weight = weight;
  last_cycle_.time = time_;
  // Streams and sources of the previous cycle read empty again.
  for (auto* node : to_reset_)
    node->reset();
  to_reset_.clear();
  updated_sinks_.clear();
  if (now_ != nullptr)
    now_->value_ = time_;
  last_cycle_.notifications = ready_.size();
  // Fire due timers.
  while (!timers_.empty() && timers_.begin()->first <= time_) {
    auto* node = timers_.begin()->second;
    timers_.erase(timers_.begin());
    node->due_.reset();
    node->fired_cycle_ = cycle_;
    ++last_cycle_.timers_fired;
    if (node->scheduled_cycle_ != cycle_) {
      node->scheduled_cycle_ = cycle_;
      ready_.push_back(node);
      std::push_heap(ready_.begin(), ready_.end(), later);
      ++last_cycle_.notifications;
    }
  }
  std::optional<node_failure> failure;
  if (weight > 0)
    tick_ = last_cycle_.timers_fired > 0 ? clock::now() : start;
  if (!initialised_) {
    // The initialisation cycle: every source, stream, state and cutoff runs
    // once; the rest follow the usual rule.
    initialised_ = true;
    for (auto& node : nodes_) {
      if (!node->runs_at_init() && node->scheduled_cycle_ != cycle_)
        continue;
      if (!run_node(node.get(), failure))
        break;
    }
    ready_.clear();
  } else {
    while (!ready_.empty()) {
      std::pop_heap(ready_.begin(), ready_.end(), later);
      auto* node = ready_.back();
      ready_.pop_back();
      if (!run_node(node, failure))
        break;
    }
  }
  if (failure) {
    // A failed cycle produces nothing: the remaining notifications are
    // dropped (with the source values nobody read yet: the driver owns the
    // cycle's input and reports it) and no sink counts as updated.
    for (auto* node : ready_)
      node->drop_pending();
    ready_.clear();
    updated_sinks_.clear();
    last_cycle_.failed = true;
  }
  if (timing_) {
    last_cycle_.elapsed = std::chrono::duration_cast<duration>(
        (weight > 0 && last_cycle_.nodes_run > 0 ? tick_ : clock::now()) - start);
    slow_ = last_cycle_.elapsed >= slow_cycle_;
  }
  return failure;
}

// -- dag: inspecting ------------------------------------------------------------

std::optional<timestamp> dag::next_timer() const {
  if (timers_.empty())
    return std::nullopt;
  return timers_.begin()->first;
}

std::vector<node_handle> dag::sources() const {
  std::vector<node_handle> result;
  for (auto* node : source_list_)
    result.emplace_back(node);
  return result;
}

std::vector<node_handle> dag::sinks() const {
  std::vector<node_handle> result;
  for (auto* node : sink_list_)
    result.emplace_back(node);
  return result;
}

std::vector<node_handle> dag::nodes() const {
  std::vector<node_handle> result;
  for (auto& node : nodes_)
    result.emplace_back(node.get());
  return result;
}

std::optional<node_handle> dag::find_source(std::string_view name) const {
  if (auto i = sources_.find(name); i != sources_.end())
    return node_handle{i->second};
  return std::nullopt;
}

std::optional<node_handle> dag::find_sink(std::string_view name) const {
  if (auto i = sinks_.find(name); i != sinks_.end())
    return node_handle{i->second};
  return std::nullopt;
}

} // namespace castor
