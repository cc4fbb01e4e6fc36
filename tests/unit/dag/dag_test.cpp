// SPDX-License-Identifier: Apache-2.0
// Behaviour of the DAG engine (docs/dag.md).

#include "castor/dag.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using castor::dag;
using castor::timestamp;

namespace {

using ints = std::vector<int>;
using words = std::vector<std::string>;

const timestamp t0 = castor::from_millis(1'767'225'600'000);

// Counts how often a node function ran.
struct run_counter {
  int* runs;
  ints operator()(const ints& in) const {
    ++*runs;
    return in;
  }
};

ints doubled(const ints& in) {
  ints out;
  for (auto x : in)
    out.push_back(2 * x);
  return out;
}

int sum(const ints& in) {
  int total = 0;
  for (auto x : in)
    total += x;
  return total;
}

// A value that counts copies of non-empty payloads.
struct tracked {
  static inline int copies = 0;
  std::vector<int> data;
  tracked() = default;
  tracked(const tracked& other) : data(other.data) { copies += !data.empty(); }
  tracked(tracked&&) noexcept = default;
  tracked& operator=(const tracked& other) {
    data = other.data;
    copies += !data.empty();
    return *this;
  }
  tracked& operator=(tracked&&) noexcept = default;
  bool empty() const { return data.empty(); }
};

} // namespace

TEST_CASE("the first cycle runs every stream and state once", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  int stream_runs = 0;
  int state_runs = 0;
  auto s = g.stream(run_counter{&stream_runs}).map(src);
  auto st = g.state([&](const ints& in) {
               ++state_runs;
               return static_cast<int>(in.size());
             }).map(s);
  REQUIRE_FALSE(g.execute(t0));
  CHECK(stream_runs == 1);
  CHECK(state_runs == 1);
  // A state counts as updated in the initialisation cycle, even from empty input.
  CHECK(st.cycle_id() == 1);
  CHECK(s.cycle_id() == 0); // the stream's result was empty
  // Afterwards nothing runs without input.
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(stream_runs == 1);
  CHECK(state_runs == 1);
  CHECK(g.last_cycle().nodes_run == 0);
}

TEST_CASE("a stream that did not run reads empty in later cycles", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto a = g.stream(doubled).map(src);
  auto other = g.source_stream<ints>("other");
  ints seen_by_reader;
  auto reader = g.stream([&](const ints& x, const ints& d) {
                   seen_by_reader = d;
                   return x;
                 }).map(other, a);
  g.sink("out", reader);
  REQUIRE_FALSE(g.execute(t0));
  g.set(src, ints{1, 2});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(a.value() == ints{2, 4});
  CHECK(seen_by_reader == ints{2, 4});
  // Next cycle: only `other` is set; `a` did not run and reads empty.
  g.set(other, ints{7});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(a.value().empty());
  CHECK(seen_by_reader.empty());
  CHECK(src.value().empty());
}

TEST_CASE("a state fed by streams keeps its cycle id when empty inputs are set",
          "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto total = g.state(sum).map(src);
  REQUIRE_FALSE(g.execute(t0));
  g.set(src, ints{1, 2, 3});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(total.value() == 6);
  CHECK(total.cycle_id() == 2);
  g.set(src, ints{});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(total.value() == 6);
  CHECK(total.cycle_id() == 2);
  CHECK(g.cycle_id() == 3);
  CHECK(g.last_cycle().nodes_run == 1); // only the source itself
}

TEST_CASE("a node runs at most once per cycle however many inputs changed", "[dag]") {
  dag g;
  auto a = g.source_stream<ints>("a");
  auto b = g.source_stream<ints>("b");
  auto c = g.stream(doubled).map(a);
  int runs = 0;
  auto both = g.stream([&](const ints& x, const ints& y, const ints& z) {
                 ++runs;
                 ints out = x;
                 out.insert(out.end(), y.begin(), y.end());
                 out.insert(out.end(), z.begin(), z.end());
                 return out;
               }).map(a, b, c);
  REQUIRE_FALSE(g.execute(t0));
  runs = 0;
  g.set(a, ints{1});
  g.set(b, ints{5});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(runs == 1);
  CHECK(both.value() == ints{1, 5, 2});
}

TEST_CASE("the same node used twice as input is read twice and runs once", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  int runs = 0;
  auto pairwise = g.stream([&](const ints& x, const ints& y) {
                     ++runs;
                     ints out;
                     for (size_t i = 0; i < x.size(); ++i)
                       out.push_back(x[i] * y[i]);
                     return out;
                   }).map(src, src);
  REQUIRE_FALSE(g.execute(t0));
  runs = 0;
  g.set(src, ints{2, 3});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(runs == 1);
  CHECK(pairwise.value() == ints{4, 9});
  CHECK(src.get()->observers_.size() == 1);
}

TEST_CASE("now gives the cycle time and wakes nobody", "[dag]") {
  dag g;
  auto now = g.now();
  int runs = 0;
  timestamp seen{};
  auto src = g.source_stream<ints>("src");
  auto stamped = g.stream([&](const ints& in, const timestamp& t) {
                    ++runs;
                    seen = t;
                    return in;
                  }).map(src, now);
  REQUIRE_FALSE(g.execute(t0));
  CHECK(runs == 1);
  CHECK(seen == t0);
  REQUIRE_FALSE(g.execute(t0 + 5s));
  CHECK(runs == 1); // time moved, nothing ran
  CHECK(now.value() == t0 + 5s);
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 7s));
  CHECK(runs == 2);
  CHECK(seen == t0 + 7s);
  CHECK(stamped.value() == ints{1});
  CHECK(g.now().get() == now.get()); // one now node per DAG
}

TEST_CASE("the cycle time never moves backwards", "[dag]") {
  dag g;
  auto now = g.now();
  REQUIRE_FALSE(g.execute(t0 + 10s));
  REQUIRE_FALSE(g.execute(t0));
  CHECK(g.time() == t0 + 10s);
  CHECK(now.value() == t0 + 10s);
  REQUIRE_FALSE(g.execute(t0 + 11s));
  CHECK(g.time() == t0 + 11s);
}

TEST_CASE("cutoff passes values on only when the comparator says they changed", "[dag]") {
  dag g;
  auto price = g.source_stream<std::optional<double>>("price");
  auto last =
      g.state([](const std::optional<double>& p) { return p.value_or(0.0); }).map(price);
  auto changed = g.cutoff(last, [](double a, double b) { return std::abs(a - b) < 0.1; });
  std::vector<double> seen;
  auto out = g.stream([&](const double& v) {
                seen.push_back(v);
                return std::optional<double>{v};
              }).map(changed);
  g.sink("out", out);
  // Initialisation at 4.0 passes (nothing seen before).
  g.set(price, std::optional<double>{4.0});
  REQUIRE_FALSE(g.execute(t0));
  g.set(price, std::optional<double>{4.05});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(changed.value() == 4.0);
  g.set(price, std::optional<double>{4.11});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(changed.value() == 4.11);
  CHECK(seen == std::vector<double>{4.0, 4.11});
  CHECK(changed.cycle_id() == 3);
}

TEST_CASE("cutoff defaults to equality", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto n = g.state([](const ints& in) { return in.size(); }).map(src);
  auto distinct = g.cutoff(n);
  REQUIRE_FALSE(g.execute(t0));
  CHECK(distinct.cycle_id() == 1);
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(distinct.cycle_id() == 2);
  g.set(src, ints{9});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(distinct.cycle_id() == 2); // still one element
}

TEST_CASE("silence hides a state's updates until something else wakes the reader",
          "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto trigger = g.source_stream<ints>("trigger");
  auto total = g.state(sum).map(src);
  auto quiet = g.silence(total);
  int runs = 0;
  auto report = g.stream([&](const ints& t, const int& value) {
                   ++runs;
                   return t.empty() ? ints{} : ints{value};
                 }).map(trigger, quiet);
  REQUIRE_FALSE(g.execute(t0));
  runs = 0;
  g.set(src, ints{5});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(runs == 0);
  CHECK(quiet.value() == 5);
  CHECK(quiet.cycle_id() == 0); // silence never counts as updated
  g.set(trigger, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(runs == 1);
  CHECK(report.value() == ints{5});
}

TEST_CASE("silence of a stream shows its value in the cycle it ran, empty after",
          "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto trigger = g.source_stream<ints>("trigger");
  auto d = g.stream(doubled).map(src);
  auto quiet = g.silence(d);
  int runs = 0;
  ints seen;
  g.stream([&](const ints& t, const ints& q) {
     ++runs;
     seen = q;
     return t;
   }).map(trigger, quiet);
  REQUIRE_FALSE(g.execute(t0));
  runs = 0;
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(runs == 0); // the silenced stream woke nobody
  g.set(src, ints{2});
  g.set(trigger, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(runs == 1);
  CHECK(seen == ints{4});
  g.set(trigger, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 3s));
  CHECK(seen.empty());
}

TEST_CASE("state results can report unchanged and silent", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto trigger = g.source_stream<ints>("trigger");
  // Keeps the max; unchanged when no new max; silent for odd maxima.
  int best = 0;
  auto max = g.state([&](const ints& in) -> castor::state_result<int> {
                for (auto x : in)
                  if (x > best) {
                    best = x;
                    if (x % 2 == 1)
                      return castor::state_result<int>::silent(x);
                    return x;
                  }
                return castor::state_result<int>::unchanged();
              }).map(src);
  int reader_runs = 0;
  g.stream([&](const int&, const ints& t) {
     ++reader_runs;
     return t;
   }).map(max, trigger);
  REQUIRE_FALSE(g.execute(t0));
  CHECK(max.cycle_id() == 0); // unchanged even in the first cycle
  reader_runs = 0;
  g.set(src, ints{4});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(max.value() == 4);
  CHECK(max.cycle_id() == 2);
  CHECK(reader_runs == 1);
  g.set(src, ints{3});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(max.value() == 4);
  CHECK(max.cycle_id() == 2);
  CHECK(reader_runs == 1);
  g.set(src, ints{7});
  REQUIRE_FALSE(g.execute(t0 + 3s));
  CHECK(max.value() == 7);    // stored...
  CHECK(max.cycle_id() == 2); // ...silently
  CHECK(reader_runs == 1);
}

TEST_CASE("accumulate updates its state in place", "[dag]") {
  dag g;
  auto src = g.source_stream<words>("words");
  auto counts =
      g.accumulate(std::map<std::string, int>{}, [](std::map<std::string, int>& acc,
                                                    const words& in) {
         if (in.empty())
           return castor::change::unchanged;
         for (auto& w : in)
           ++acc[w];
         return castor::change::updated;
       }).map(src);
  REQUIRE_FALSE(g.execute(t0));
  CHECK(counts.cycle_id() == 0);
  g.set(src, words{"a", "b", "a"});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(counts.value() == std::map<std::string, int>{{"a", 2}, {"b", 1}});
  CHECK(counts.cycle_id() == 2);
}

TEST_CASE("stream_into writes its value in place, reads empty in the next cycle and "
          "keeps its buffer",
          "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto other = g.source_stream<ints>("other");
  int runs = 0;
  auto evens = g.stream_into(ints{}, [&runs](ints& out, const ints& in) {
                  ++runs;
                  // `out` always comes empty.
                  CHECK(out.empty());
                  for (auto x : in)
                    if (x % 2 == 0)
                      out.push_back(x);
                }).named("evens").map(src);
  int reader_runs = 0;
  auto total = g.state([&reader_runs](const ints& in) {
                  ++reader_runs;
                  return sum(in);
                }).map(evens);
  g.sink("total", total);
  g.sink("other", other);
  // The first cycle runs every node: nothing written.
  REQUIRE_FALSE(g.execute(t0));
  CHECK(runs == 1);
  CHECK(evens.value().empty());
  g.set(src, ints{1, 2, 3, 4, 5, 6, 7, 8});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(evens.value() == ints{2, 4, 6, 8});
  CHECK(total.value() == 20);
  auto* buffer = evens.value().data();
  auto capacity = evens.value().capacity();
  // A cycle it does not run in: empty, the buffer kept.
  g.set(other, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(evens.value().empty());
  CHECK(evens.value().capacity() == capacity);
  // Written into the same buffer.
  g.set(src, ints{10, 12});
  REQUIRE_FALSE(g.execute(t0 + 3s));
  CHECK(evens.value() == ints{10, 12});
  CHECK(evens.value().data() == buffer);
  CHECK(evens.value().capacity() == capacity);
  CHECK(total.value() == 22);
  // Nothing written: not updated, so its reader does not run.
  g.set(src, ints{1, 3});
  REQUIRE_FALSE(g.execute(t0 + 4s));
  CHECK(runs == 4);
  CHECK(reader_runs == 3);
  CHECK(total.value() == 22);
}

TEST_CASE("a stream_into that throws fails the cycle and reads empty after", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto copied = g.stream_into(ints{}, [](ints& out, const ints& in) {
                   for (auto x : in) {
                     if (x < 0)
                       throw std::runtime_error("negative input");
                     out.push_back(x);
                   }
                 }).named("copier").map(src);
  auto seen = g.sink("seen", copied);
  g.set(src, ints{1, 2, -1});
  auto failure = g.execute(t0);
  REQUIRE(failure);
  CHECK(failure->node == "copier");
  CHECK(failure->kind == castor::node_kind::stream);
  // Not the half it wrote.
  CHECK(copied.value().empty());
  g.set(src, ints{3});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(seen.value() == ints{3});
}

TEST_CASE("every stream gets its own fresh empty value", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  ints shared_empty{};
  auto a = g.stream(doubled, shared_empty).map(src);
  auto b = g.stream(doubled, shared_empty).map(src);
  REQUIRE_FALSE(g.execute(t0));
  CHECK(&a.value() != &b.value());
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  g.set(src, ints{});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(a.value().empty());
  CHECK(b.value().empty());
  CHECK(shared_empty.empty());
}

TEST_CASE("node functions receive inputs as const references and cannot mutate them",
          "[dag]") {
  // A function taking a mutable reference cannot be wired (compile time).
  auto mutating = [](ints& in) {
    in.clear();
    return in;
  };
  STATIC_REQUIRE_FALSE(castor::is_node_function_v<decltype(mutating), ints>);
  STATIC_REQUIRE(castor::is_node_function_v<decltype(&doubled), ints>);
  // At run time, upstream values are what their node produced.
  dag g;
  auto src = g.source_stream<ints>("src");
  auto total = g.state(sum).map(src);
  const ints* seen = nullptr;
  g.stream([&](const ints& in) {
     seen = &in;
     return in;
   }).map(src);
  g.set(src, ints{1, 2});
  REQUIRE_FALSE(g.execute(t0));
  CHECK(seen == &src.value());
  CHECK(src.value() == ints{1, 2});
  CHECK(total.value() == 3);
}

TEST_CASE("results are moved into nodes, not copied", "[dag]") {
  dag g;
  auto src = g.source_stream<tracked>("src");
  auto pass = g.stream([](const tracked& in) {
                 tracked out;
                 out.data = in.data;
                 return out;
               }).map(src);
  auto keep = g.state([](const tracked& in) {
                 tracked out;
                 out.data = in.data;
                 return out;
               }).map(pass);
  g.sink("out", keep);
  REQUIRE_FALSE(g.execute(t0));
  tracked::copies = 0;
  tracked value;
  value.data = {1, 2, 3};
  g.set(src, std::move(value));
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(keep.value().data == ints{1, 2, 3});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(pass.value().empty());
  CHECK(tracked::copies == 0);
}

TEST_CASE("timers fire exactly when due and a later set replaces the pending one",
          "[dag]") {
  dag g;
  auto tm = g.timer_manager();
  auto src = g.source_stream<ints>("src");
  int fired = 0;
  auto on_timer = g.stream([&](const castor::timer& t, const ints& in) {
                     if (t.fired())
                       ++fired;
                     if (!in.empty())
                       t.set(t0 + std::chrono::seconds{in.front()});
                     return ints{fired};
                   }).map(tm, src);
  g.sink("fired", on_timer);
  REQUIRE_FALSE(g.execute(t0));
  CHECK_FALSE(g.next_timer());
  g.set(src, ints{10});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(g.next_timer() == t0 + 10s);
  // A later set replaces it.
  g.set(src, ints{20});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(g.next_timer() == t0 + 20s);
  CHECK(tm.value().next() == t0 + 20s);
  REQUIRE_FALSE(g.execute(t0 + 10s));
  CHECK(fired == 0);
  REQUIRE_FALSE(g.execute(t0 + 20s - 1ns));
  CHECK(fired == 0);
  REQUIRE_FALSE(g.execute(t0 + 20s));
  CHECK(fired == 1);
  CHECK(tm.cycle_id() == g.cycle_id());
  CHECK(g.last_cycle().timers_fired == 1);
  CHECK_FALSE(g.next_timer());
  REQUIRE_FALSE(g.execute(t0 + 30s));
  CHECK(fired == 1);
}

TEST_CASE("a timer fires in a cycle with no data and can be cleared", "[dag]") {
  dag g;
  auto tm = g.timer_manager();
  auto src = g.source_stream<ints>("src");
  int fired = 0;
  g.stream([&](const castor::timer& t, const ints& in) {
     if (t.fired())
       ++fired;
     if (in == ints{1})
       t.set(t0 + 5s);
     if (in == ints{2})
       t.clear();
     return in;
   }).map(tm, src);
  REQUIRE_FALSE(g.execute(t0));
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  g.set(src, ints{2});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK_FALSE(g.next_timer());
  REQUIRE_FALSE(g.execute(t0 + 6s));
  CHECK(fired == 0);
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 7s)); // sets t0+5s, already past: fires next cycle
  REQUIRE_FALSE(g.execute(t0 + 7s));
  CHECK(fired == 1);
}

TEST_CASE("prune removes nodes with no path to a sink", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto unused_src = g.source_stream<ints>("unused");
  auto d = g.stream(doubled).map(src);
  int dead_runs = 0;
  g.stream([&](const ints& in) {
     ++dead_runs;
     return in;
   }).map(d);
  g.stream(doubled).map(unused_src);
  auto kept = g.stream(doubled).map(d);
  g.sink("out", kept);
  CHECK(g.size() == 7);
  CHECK(g.prune() == 3);
  CHECK(g.size() == 4);
  CHECK(g.sources().size() == 1);
  CHECK_FALSE(g.find_source("unused"));
  CHECK_THROWS_WITH(g.set("unused", ints{1}),
                    Catch::Contains("no source named 'unused'"));
  CHECK_THROWS_WITH(g.stream(doubled).map(unused_src),
                    Catch::Contains("was removed by prune()"));
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0));
  CHECK(dead_runs == 0);
  CHECK(kept.value() == ints{4});
  auto nodes = g.nodes();
  for (size_t i = 0; i < nodes.size(); ++i)
    CHECK(nodes[i].get()->index_ == i);
}

TEST_CASE("a node that throws fails the cycle as a whole and names itself", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto before = g.state(sum).named("before").map(src);
  auto failing = g.stream([](const ints& in) {
                    if (!in.empty() && in.front() < 0)
                      throw std::runtime_error("negative input");
                    return in;
                  })
                     .named("checker")
                     .map(src);
  auto late_src = g.source_stream<ints>("late");
  auto out = g.stream([](const ints& a, const ints& b) {
                ints r = a;
                r.insert(r.end(), b.begin(), b.end());
                return r;
              }).map(failing, late_src);
  g.sink("out", out);
  REQUIRE_FALSE(g.execute(t0));

  g.set(src, ints{-1});
  g.set(late_src, ints{9});
  auto failure = g.execute(t0 + 1s);
  REQUIRE(failure);
  CHECK(failure->node == "checker");
  CHECK(failure->kind == castor::node_kind::stream);
  CHECK(failure->what == "negative input");
  CHECK(failure->cycle_id == 2);
  CHECK_THAT(failure->location, Catch::Contains("dag_test.cpp:"));
  CHECK_THAT(failure->message(), Catch::Contains("node 'checker' (stream, created at dag/"
                                                 "dag_test.cpp:"));
  CHECK_THAT(failure->message(), Catch::Contains("failed in cycle 2"));
  // The failed cycle produces nothing.
  CHECK(g.updated_sinks().empty());
  CHECK(g.last_cycle().failed);
  // Nodes before the failing one did run: documented, not silent.
  CHECK(before.value() == -1);
  // The late source's value was dropped with the cycle, not carried over.
  CHECK(out.cycle_id() == 0);

  // The next cycle runs normally.
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(out.value() == ints{1});
  CHECK(g.updated_sinks().size() == 1);
  CHECK(before.value() == 1);
  g.set(late_src, ints{3});
  REQUIRE_FALSE(g.execute(t0 + 3s));
  CHECK(out.value() == ints{3});
}

TEST_CASE("a throw that is not a std::exception is reported too", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  g.sink("out", g.stream([](const ints& in) -> ints {
                   if (!in.empty())
                     throw 42;
                   return in;
                 }).map(src));
  REQUIRE_FALSE(g.execute(t0));
  g.set(src, ints{1});
  auto failure = g.execute(t0 + 1s);
  REQUIRE(failure);
  CHECK(failure->what == "unknown exception");
}

TEST_CASE("misuse is reported at run time with a clear message", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  g.sink("out", src);
  CHECK_THROWS_WITH(g.source_stream<ints>("src"),
                    Catch::Contains("duplicate source name 'src'"));
  CHECK_THROWS_WITH(g.sink("out", src), Catch::Contains("duplicate sink name 'out'"));
  CHECK_THROWS_WITH(g.set("out", ints{1}),
                    Catch::Contains("'out' is a sink, not a source"));
  CHECK_THROWS_WITH(g.set("nope", ints{1}), Catch::Contains("no source named 'nope'"));
  CHECK_THROWS_WITH(g.set("src", std::string{"x"}),
                    Catch::Contains("source 'src' holds std::vector<int"));
  dag other;
  auto foreign = other.source_stream<ints>("foreign");
  CHECK_THROWS_WITH(g.stream(doubled).map(foreign),
                    Catch::Contains("input 'foreign' belongs to another dag"));
  CHECK_THROWS_WITH(g.set(foreign, ints{1}), Catch::Contains("belongs to another dag"));
  castor::node_ref<ints> empty_handle;
  CHECK_THROWS_WITH(g.stream(doubled).map(empty_handle),
                    Catch::Contains("empty node handle"));
  CHECK_THROWS_WITH(g.find_sink("out")->value_as<int>(),
                    Catch::Contains("sink 'out' holds std::vector<int"));
}

TEST_CASE("nodes have given or derived names and the place they were created", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto anon = g.stream(doubled).map(src);
  auto named = g.state(sum).named("total").map(anon);
  CHECK(anon.name() == "stream_1");
  CHECK(named.name() == "total");
  CHECK_THAT(anon.handle().location(), Catch::Matches("dag/dag_test\\.cpp:[0-9]+"));
}

TEST_CASE("sources and sinks are listed in creation order", "[dag]") {
  dag g;
  auto b = g.source_stream<ints>("b");
  auto a = g.source_stream<words>("a");
  g.sink("z", b);
  g.sink("y", a);
  auto sources = g.sources();
  REQUIRE(sources.size() == 2);
  CHECK(sources[0].name() == "b");
  CHECK(sources[1].name() == "a");
  CHECK(sources[1].value_type() == typeid(words));
  auto sinks = g.sinks();
  REQUIRE(sinks.size() == 2);
  CHECK(sinks[0].name() == "z");
  CHECK(sinks[1].kind() == castor::node_kind::sink);
  g.set(a, words{"x"});
  REQUIRE_FALSE(g.execute(t0));
  REQUIRE(g.updated_sinks().size() == 1);
  CHECK(g.updated_sinks()[0].name() == "y");
  CHECK(g.updated_sinks()[0].value_as<words>() == words{"x"});
}

TEST_CASE("const nodes never run and never update", "[dag]") {
  dag g;
  auto factor = g.const_(3);
  auto src = g.source_stream<ints>("src");
  auto scaled = g.stream([](const ints& in, const int& f) {
                   ints out;
                   for (auto x : in)
                     out.push_back(x * f);
                   return out;
                 }).map(src, factor);
  g.set(src, ints{1, 2});
  REQUIRE_FALSE(g.execute(t0));
  CHECK(scaled.value() == ints{3, 6});
  CHECK(factor.cycle_id() == 0);
  CHECK(factor.handle().metrics().runs == 0);
}

TEST_CASE("metrics count notifications, runs, updates and time", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto d = g.stream(doubled).map(src);
  auto total = g.state(sum).map(d);
  g.sink("out", total);
  REQUIRE_FALSE(g.execute(t0));
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  auto& cycle = g.last_cycle();
  CHECK(cycle.cycle_id == 2);
  CHECK(cycle.time == t0 + 1s);
  CHECK(cycle.notifications == 4);
  CHECK(cycle.nodes_run == 4);
  CHECK_FALSE(cycle.failed);
  auto m = d.handle().metrics();
  CHECK(m.runs == 2);
  CHECK(m.updates == 1);
  CHECK(m.total_time.count() > 0);
  CHECK(m.max_time <= m.total_time);
  g.enable_timing(false);
  g.set(src, ints{1});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(d.handle().metrics().total_time == m.total_time);
  CHECK(d.handle().metrics().runs == 3);
}

TEST_CASE("the nodes of fast cycles are timed one cycle in n and counted n times",
          "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  auto d = g.stream(doubled).map(src);
  g.sink("out", d);
  // No cycle counts as slow here, so the picks are the fixed sequence of
  // the generator's seed.
  g.time_one_cycle_in(16, std::chrono::hours{1});
  uint64_t weights = 0;
  uint64_t timed = 0;
  castor::duration weighted{0};
  bool all_elapsed = true;
  bool weights_valid = true;
  auto run = [&](int cycles) {
    for (int i = 0; i < cycles; ++i) {
      g.set(src, ints{i});
      REQUIRE_FALSE(g.execute(t0 + std::chrono::seconds{i}));
      auto& c = g.last_cycle();
      weights_valid = weights_valid && (c.timing_weight == 0 || c.timing_weight == 1 ||
                                        c.timing_weight == 16);
      // Every cycle is timed, whether its nodes were or not.
      all_elapsed = all_elapsed && c.elapsed > castor::duration::zero();
      weights += c.timing_weight;
      timed += c.timing_weight > 0 ? 1 : 0;
      // Without timers, a timed cycle's node times add up to its elapsed.
      weighted += c.elapsed * c.timing_weight;
    }
  };
  // The first 1000 cycles: every node run timed.
  run(1000);
  CHECK(timed == 1000);
  CHECK(weights == 1000);
  // Then one cycle in 16, each counting 16 times: the weights add up to
  // about the cycles run (160,000 cycles: 10,000 expected samples, a
  // standard deviation of ~97).
  run(160'000);
  CHECK(weights_valid);
  CHECK(all_elapsed);
  CHECK(timed - 1000 > 9'000);
  CHECK(timed - 1000 < 11'000);
  CHECK(weights == 1000 + 16 * (timed - 1000));
  CHECK(static_cast<double>(weights) == Approx(161'000).epsilon(0.1));
  CHECK(d.handle().metrics().runs == 161'000);
  castor::duration total{0};
  for (auto& node : g.nodes())
    total += node.metrics().total_time;
  CHECK(total == weighted);
}

TEST_CASE("slow cycles are all timed", "[dag]") {
  dag g;
  auto src = g.source_stream<ints>("src");
  // A node that takes at least 30 µs, over the 20 µs threshold.
  auto slow = g.stream([](const ints& in) {
                 auto until =
                     std::chrono::steady_clock::now() + std::chrono::microseconds{30};
                 while (std::chrono::steady_clock::now() < until) {
                 }
                 return in;
               }).map(src);
  g.sink("out", slow);
  g.time_one_cycle_in(16);
  for (int i = 0; i < 1100; ++i) {
    g.set(src, ints{i});
    REQUIRE_FALSE(g.execute(t0 + std::chrono::seconds{i}));
    CHECK(g.last_cycle().timing_weight == 1);
    CHECK(g.last_cycle().elapsed >= std::chrono::microseconds{30});
  }
  CHECK(slow.handle().metrics().total_time >= 1100 * std::chrono::microseconds{30});
}

TEST_CASE("a cycle's work grows with the nodes it touches, not the graph's size",
          "[dag]") {
  dag g;
  g.enable_timing(false);
  std::vector<castor::source_ref<ints>> sources;
  for (int chain = 0; chain < 1000; ++chain) {
    auto src = g.source_stream<ints>("src" + std::to_string(chain));
    sources.push_back(src);
    castor::node_ref<ints> last = src;
    for (int i = 0; i < 8; ++i)
      last = g.stream(doubled).map(last);
    g.sink("out" + std::to_string(chain), last);
  }
  REQUIRE(g.size() == 10'000);
  REQUIRE_FALSE(g.execute(t0));
  g.set(sources[500], ints{1});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(g.last_cycle().nodes_run == 10);
  CHECK(g.last_cycle().notifications == 10);
  REQUIRE(g.updated_sinks().size() == 1);
  CHECK(g.updated_sinks()[0].value_as<ints>() == ints{256});
}

TEST_CASE("the word count of beavers' guide counts words across cycles", "[dag]") {
  dag g;
  auto word_source = g.source_stream<words>("words");
  auto count_state =
      g.accumulate(std::map<std::string, int>{}, [](std::map<std::string, int>& state,
                                                    const words& in) {
         for (auto& w : in)
           ++state[w];
       }).map(word_source);
  auto count_stream =
      g.stream([](const std::map<std::string, int>& state, const words& updated) {
         std::map<std::string, int> out;
         for (auto& w : updated)
           out[w] = state.at(w);
         return out;
       }).map(count_state, word_source);
  g.sink("counts", count_stream);
  REQUIRE_FALSE(g.execute(t0));
  g.set("words", words{"foo", "bar", "foo"});
  REQUIRE_FALSE(g.execute(t0 + 1s));
  CHECK(count_stream.value() == std::map<std::string, int>{{"bar", 1}, {"foo", 2}});
  g.set("words", words{"foo"});
  REQUIRE_FALSE(g.execute(t0 + 2s));
  CHECK(count_stream.value() == std::map<std::string, int>{{"foo", 3}});
  REQUIRE_FALSE(g.execute(t0 + 3s));
  CHECK(g.updated_sinks().empty());
}
