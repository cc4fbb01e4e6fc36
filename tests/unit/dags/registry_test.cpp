// SPDX-License-Identifier: Apache-2.0
// The DAG registry and the parameters a DAG factory reads.

#include "castor/registry.hpp"

#include <catch2/catch.hpp>

using castor::config_error;
using castor::dag_config;
using castor::dag_params;
using castor::param_value;
using castor::registry;
using Catch::Matchers::Contains;

namespace {

param_value at(param_value::array items) {
  return {std::move(items), "vwap.toml:7"};
}

template <class T>
param_value at(T v) {
  return {v, "vwap.toml:7"};
}

dag_params example() {
  dag_params p;
  p.set("depth", at(int64_t{5}));
  p.set("fee", at(0.25));
  p.set("strict", at(true));
  p.set("venue", at(std::string{"XNYS"}));
  p.set("window", at(std::string{"250ms"}));
  p.set("symbols",
        at(param_value::array{at(std::string{"AAPL"}), at(std::string{"MSFT"})}));
  p.set("levels", at(param_value::array{at(int64_t{1}), at(int64_t{300})}));
  return p;
}

} // namespace

TEST_CASE("params: integers, floats, booleans, strings, durations and arrays of them",
          "[registry]") {
  auto p = example();
  CHECK(p.get<int>("depth") == 5);
  CHECK(p.get<int64_t>("depth") == 5);
  CHECK(p.get<double>("fee") == 0.25);
  CHECK(p.get<double>("depth") == 5.0); // an integer is a number too
  CHECK(p.get<bool>("strict"));
  CHECK(p.get<std::string>("venue") == "XNYS");
  CHECK(p.get<castor::duration>("window") == std::chrono::milliseconds{250});
  CHECK(p.get<std::vector<std::string>>("symbols") ==
        std::vector<std::string>{"AAPL", "MSFT"});
  CHECK(p.get<std::vector<int>>("levels") == std::vector<int>{1, 300});
  CHECK(p.get_or<int>("missing", 7) == 7);
  CHECK(p.get_or<std::string>("venue", "x") == "XNYS");
}

TEST_CASE("params: a missing or ill-typed key names engine.params.<key> and where",
          "[registry]") {
  auto p = example();
  CHECK_THROWS_WITH(p.get<int>("missing"),
                    "'engine.params.missing' is required by this DAG");
  CHECK_THROWS_WITH(p.get<int>("venue"),
                    "vwap.toml:7: 'engine.params.venue' must be an integer, not \"XNYS\" "
                    "(string)");
  CHECK_THROWS_WITH(
      p.get_or<bool>("depth", false),
      "vwap.toml:7: 'engine.params.depth' must be a boolean, not 5 (integer)");
  CHECK_THROWS_WITH(p.get<castor::duration>("venue"), Contains("must be a duration"));
  CHECK_THROWS_WITH(p.get<uint8_t>("levels"), Contains("must be an integer"));
  CHECK_THROWS_WITH(p.get<std::vector<uint8_t>>("levels"),
                    "vwap.toml:7: 'engine.params.levels[1]' must be an integer from 0 to "
                    "255, not 300 (integer)");
  CHECK_THROWS_AS(p.get<std::string>("fee"), config_error);
}

TEST_CASE("registry: the built-in DAGs are registered like any other, and a name is "
          "taken once",
          "[registry]") {
  registry r;
  CHECK(r.names() == std::vector<std::string>{"copy", "merge", "positions", "wordcount"});
  CHECK(r.origin("wordcount") == "built-in");
  CHECK(registry::empty().names().empty());
  r.add("vwap", [](const dag_config&) -> caf::expected<castor::pipeline_definition_ptr> {
    throw config_error("'engine.params.window' is required by this DAG");
  });
  CHECK(r.origin("vwap") == "program");
  CHECK_THROWS_WITH(r.add("wordcount",
                          [](const dag_config&) {
                            return caf::expected<castor::pipeline_definition_ptr>{
                                nullptr};
                          }),
                    "DAG 'wordcount' from program is already registered (from built-in)");
  // A factory that throws is a configuration error naming the DAG.
  auto made = r.make("vwap", {});
  REQUIRE_FALSE(made);
  CHECK(castor::code_of(made.error()) == castor::ec::invalid_config);
  CHECK_THAT(castor::message_of(made.error()),
             Contains("DAG 'vwap' (program): 'engine.params.window' is required"));
  auto unknown = r.make("pricing", {});
  REQUIRE_FALSE(unknown);
  CHECK_THAT(
      castor::message_of(unknown.error()),
      Contains("no DAG 'pricing' (known: copy, merge, positions, vwap, wordcount)"));
  // A built-in DAG checks its shape.
  auto wrong = r.make("wordcount", {{}, {{"a", "a"}, {"b", "b"}}, {}});
  CHECK_FALSE(wrong);
  auto right = r.make("wordcount", {{{"in", "in", {}}}, {{"out", "out"}}, {}});
  CHECK(right);
}
