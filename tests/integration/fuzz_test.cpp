// SPDX-License-Identifier: Apache-2.0
// Randomized tests with fixed seeds (reproducible): the deserializers and
// the config loader take garbage without crashing or hanging, and answer
// with a clear error.

#include "castor/dags/builtin.hpp"
#include "castor/error.hpp"
#include "castor/json.hpp"
#include "castor/serde.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "service_config.hpp"

namespace {

using castor::message_view;

constexpr uint32_t seed = 20261122;

// Owned parts of random messages; views point into them.
struct random_messages {
  std::vector<std::optional<std::string>> keys;
  std::vector<std::optional<std::string>> values;
  std::vector<std::vector<castor::header>> headers;
  std::vector<message_view> views;
};

const std::vector<std::string> json_seeds{
    R"({"symbol":"ACME","qty":100,"price":12.5})",
    R"({"symbol":"XYZ","price":3})",
    R"([1,2,3])",
    R"("text")",
    R"({"a":{"b":[null,true,false,1e308,-0.0]}})",
    R"({"symbol":"\u00e9\ud83d\ude00","qty":-1})",
};

std::string random_bytes(std::mt19937& rng, size_t max) {
  std::uniform_int_distribution<size_t> len(0, max);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(len(rng), '\0');
  for (auto& c : s)
    c = static_cast<char>(byte(rng));
  return s;
}

// A valid JSON document with a few random edits.
std::string mutated_json(std::mt19937& rng) {
  auto s = json_seeds[rng() % json_seeds.size()];
  auto edits = rng() % 4;
  for (uint32_t i = 0; i < edits && !s.empty(); ++i) {
    auto at = rng() % s.size();
    switch (rng() % 3) {
    case 0:
      s.erase(at, 1 + rng() % 3);
      break;
    case 1:
      s.insert(at, 1, "{}[]\":,0123456789e.-nul\\"[rng() % 27]);
      break;
    default:
      s[at] = static_cast<char>(rng() % 256);
    }
  }
  return s;
}

random_messages make_messages(std::mt19937& rng) {
  random_messages m;
  auto n = 1 + rng() % 8;
  for (size_t i = 0; i < n; ++i) {
    auto pick = rng() % 10;
    m.keys.push_back(pick == 0 ? std::nullopt
                               : std::optional<std::string>{random_bytes(rng, 20)});
    if (pick == 1)
      m.values.emplace_back(std::nullopt);
    else if (pick < 6)
      m.values.emplace_back(mutated_json(rng));
    else
      m.values.emplace_back(random_bytes(rng, pick == 9 ? 100000 : 200));
    std::vector<castor::header> hs;
    for (auto h = rng() % 3; h > 0; --h)
      hs.push_back(
          {random_bytes(rng, 8),
           rng() % 2 ? std::nullopt : std::optional<std::string>{random_bytes(rng, 8)}});
    m.headers.push_back(std::move(hs));
  }
  for (size_t i = 0; i < n; ++i) {
    message_view v;
    v.topic = "fuzz";
    v.partition = static_cast<int32_t>(rng() % 4);
    v.offset = static_cast<int64_t>(i);
    if (rng() % 5 != 0) {
      v.time = castor::timestamp{std::chrono::milliseconds{rng()}};
      v.time_type = castor::timestamp_type::create_time;
    }
    if (m.keys[i])
      v.key = *m.keys[i];
    if (m.values[i])
      v.value = *m.values[i];
    v.headers = castor::headers_view{&m.headers[i]};
    m.views.push_back(v);
  }
  return m;
}

// Runs `f` on random message spans: it returns or throws a
// deserialize_error with a valid index or a std::exception, each with a
// message. Returns how many were rejected.
template <class F>
int hammer(F&& f, int rounds) {
  std::mt19937 rng{seed};
  int rejected = 0;
  for (int i = 0; i < rounds; ++i) {
    auto m = make_messages(rng);
    std::span<const message_view> span{m.views};
    try {
      f(span);
    } catch (const castor::deserialize_error& e) {
      REQUIRE(e.index() < span.size());
      REQUIRE(std::string{e.what()}.size() > 0);
      ++rejected;
    } catch (const std::exception& e) {
      REQUIRE(std::string{e.what()}.size() > 0);
      ++rejected;
    }
  }
  return rejected;
}

} // namespace

TEST_CASE("fuzz: the built-in deserializers take random messages without crashing",
          "[fuzz][serde]") {
  const int rounds = 3000;
  CHECK(hammer([](auto span) { (void)castor::serde::records()(span); }, rounds) == 0);
  CHECK(hammer([](auto span) { (void)castor::serde::views()(span); }, rounds) == 0);
  // Null values are rejected (about one message in ten).
  CHECK(hammer([](auto span) { (void)castor::serde::strings()(span); }, rounds) > 0);
  CHECK(hammer([](auto span) { (void)castor::serde::words()(span); }, rounds) > 0);
  auto json_rejected =
      hammer([](auto span) { (void)castor::serde::json()(span); }, rounds);
  CHECK(json_rejected > 0);
  CHECK(json_rejected < rounds);
}

TEST_CASE("fuzz: every built-in DAG's sources reject garbage with an error, never a "
          "crash",
          "[fuzz][serde]") {
  castor::registry dags;
  for (auto& name : dags.names()) {
    std::vector<castor::source_spec> sources{{"a", "a", {}}, {"b", "b", {}}};
    std::vector<castor::sink_spec> sinks{{"x", "x"}, {"y", "y"}};
    auto make = [&](std::vector<castor::source_spec> so,
                    std::vector<castor::sink_spec> si) {
      return dags.make(name, castor::dag_config{std::move(so), std::move(si), {}});
    };
    auto def = make(sources, sinks);
    if (!def) { // some take one source or one sink
      def = make({sources[0]}, {sinks[0]});
      if (!def)
        def = make(sources, {sinks[0]});
    }
    INFO("dag " << name);
    REQUIRE(def);
    for (auto& binding : (*def)->sources())
      hammer([&](auto span) { binding.check(span); }, 1500);
  }
}

TEST_CASE("fuzz: mutated example configs load or fail with an error naming the file",
          "[fuzz][config]") {
  namespace fs = std::filesystem;
  std::mt19937 rng{seed};
  auto dir = fs::temp_directory_path() / fmt::format("castor-fuzz-{}", ::getpid());
  fs::create_directories(dir);
  const std::string alphabet = "[]{}=\"',.:#\n 0123456789abcxyz_-@";
  int failed = 0;
  int loaded = 0;
  for (auto& entry : fs::directory_iterator{CASTOR_SOURCE_DIR "/config"}) {
    if (entry.path().extension() != ".toml")
      continue;
    std::ifstream in{entry.path()};
    std::stringstream text;
    text << in.rdbuf();
    auto original = text.str();
    for (int round = 0; round < 400; ++round) {
      auto s = original;
      auto edits = 1 + rng() % 4;
      for (uint32_t e = 0; e < edits && !s.empty(); ++e) {
        auto at = rng() % s.size();
        switch (rng() % 5) {
        case 0:
          s.erase(at, 1 + rng() % 20);
          break;
        case 1:
          s.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          s[at] = static_cast<char>(rng() % 256);
          break;
        case 3: { // duplicate a line
          auto begin = s.rfind('\n', at);
          begin = begin == std::string::npos ? 0 : begin + 1;
          auto end = s.find('\n', at);
          end = end == std::string::npos ? s.size() : end + 1;
          s.insert(end, s.substr(begin, end - begin));
          break;
        }
        default:
          s.resize(at);
        }
      }
      auto path = dir / "fuzz.toml";
      std::ofstream{path, std::ios::trunc} << s;
      castor::registry dags;
      auto cfg = castor::service::load(path.string(), dags);
      if (cfg) {
        ++loaded;
        continue;
      }
      ++failed;
      auto text = castor::render(cfg.error());
      INFO(text);
      auto code = castor::code_of(cfg.error());
      CHECK((code == castor::ec::invalid_config || code == castor::ec::kafka_config));
      CHECK_THAT(text, Catch::Contains("fuzz.toml"));
    }
  }
  fs::remove_all(dir);
  CHECK(failed > 0);
  CHECK(loaded > 0);
}
