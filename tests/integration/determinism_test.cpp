// SPDX-License-Identifier: Apache-2.0
// Reproducible results against the mock cluster (docs/pipeline.md,
// "Deterministic results"): the same input gives byte-identical records
// (key, value, headers, timestamp, order) in every run and at every batch
// size, under engine.cycles = timestamp and under a duration; a replay
// followed by live input gives what a full replay gives; the naive as-of
// join of trades to the last quote is right in replay and live.

#include "castor/dags/builtin.hpp"
#include "castor/json.hpp"
#include "castor/pipeline.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <span>
#include <thread>

#include "kafka_env.hpp"
#include "pipeline_fixture.hpp"

using namespace std::chrono_literals;
using castor::cycle_policy;
using castor::start_policy;
using castor::dags::sink_spec;
using castor::dags::source_spec;
using castor::test::kafka_env;
using castor::test::record;
using castor::test::stats_of;
using castor::test::stop_and_wait;
using castor::test::system_fixture;
using castor::test::t0;
using castor::test::wait_until;

namespace {

// Everything that makes a record's bytes, one line per record (as kcat's
// "%k\t%s\t%h\t%T" would print it).
std::vector<std::string> bytes_of(const std::vector<record>& records) {
  std::vector<std::string> result;
  for (auto& r : records) {
    std::string headers;
    for (auto& h : r.headers)
      headers += fmt::format("{}{}={}", headers.empty() ? "" : ",", h.name,
                             h.value.value_or("<null>"));
    result.push_back(fmt::format("{}\t{}\t{}\t{}", r.key.value_or("<null>"),
                                 r.value.value_or("<null>"), headers, r.time_ms));
  }
  return result;
}

std::vector<std::string> keys_and_values(const std::vector<record>& records) {
  std::vector<std::string> result;
  for (auto& r : records)
    result.push_back(r.key.value_or("<null>") + "\t" + r.value.value_or("<null>"));
  return result;
}

using definition_factory = std::function<castor::pipeline_definition_ptr(
    const std::vector<std::string>& sink_topics)>;

struct variant {
  std::string cycles;
  size_t batch_size;
};

// Runs a DAG over what the cluster holds into fresh sink topics until every
// one of `input` messages has been run, stops it, and returns each sink
// topic's records.
class runner {
public:
  runner(kafka_env& env, definition_factory make, size_t sinks)
      : env_(env), make_(std::move(make)), sinks_(sinks) {}

  std::vector<std::vector<record>> run(const variant& v, size_t input) {
    auto topics = fresh_topics();
    system_fixture fx;
    auto cfg = env_.config();
    auto cycles = cycle_policy::parse(v.cycles);
    REQUIRE(cycles);
    cfg.cycles = *cycles;
    cfg.batch_size = v.batch_size;
    auto pipeline = fx.run(make_(topics), cfg);
    settle(fx, pipeline, input);
    stop_and_wait(*fx.sys, pipeline);
    return read(topics);
  }

  std::vector<std::string> fresh_topics() {
    std::vector<std::string> topics;
    for (size_t i = 0; i < sinks_; ++i) {
      topics.push_back(fmt::format("out-{}-{}", runs_, i));
      REQUIRE_FALSE(env_.cluster->create_topic(topics.back(), 1));
    }
    ++runs_;
    return topics;
  }

  // Waits until `input` messages are released and run and all that was
  // produced is delivered, twice in a row.
  static void settle(system_fixture& fx, const castor::pipeline_actor& pipeline,
                     size_t input) {
    uint64_t last = UINT64_MAX;
    wait_until(
        *fx.sys, pipeline,
        [&](const castor::pipeline_stats& s) {
          bool done = s.live && s.released == input && s.waiting == 0 &&
                      s.delivered == s.produced;
          bool same = done && s.produced == last;
          last = done ? s.produced : UINT64_MAX;
          if (done && !same)
            std::this_thread::sleep_for(100ms);
          return same;
        },
        60s);
  }

  std::vector<std::vector<record>> read(const std::vector<std::string>& topics) {
    std::vector<std::vector<record>> result;
    for (auto& t : topics) {
      auto records = castor::testing::read_all(env_.bootstrap(), t);
      REQUIRE(records);
      result.push_back(std::move(*records));
    }
    return result;
  }

private:
  kafka_env& env_;
  definition_factory make_;
  size_t sinks_;
  int runs_ = 0;
};

// Timestamps with many ties, within partitions and across them: partition
// p's message i is at t0 + ((i + p) / 5) * 30 ms.
int64_t tied_time(int i, int p) {
  return t0 + ((i + p) / 5) * 30;
}

// Runs `variants` and checks that all of them give the same records as the
// first; returns those.
std::vector<std::vector<record>>
same_in_every_run(runner& r, const std::vector<variant>& variants, size_t input) {
  auto first = r.run(variants.front(), input);
  for (auto& out : first)
    REQUIRE_FALSE(out.empty());
  for (size_t k = 1; k < variants.size(); ++k) {
    INFO("engine.cycles = " << variants[k].cycles << ", batch_size "
                            << variants[k].batch_size << " vs " << variants.front().cycles
                            << ", batch_size " << variants.front().batch_size);
    auto again = r.run(variants[k], input);
    REQUIRE(again.size() == first.size());
    for (size_t s = 0; s < first.size(); ++s) {
      REQUIRE(again[s].size() == first[s].size());
      CHECK(bytes_of(again[s]) == bytes_of(first[s]));
    }
  }
  return first;
}

const std::vector<variant> by_timestamp{
    {"timestamp", 37}, {"timestamp", 501}, {"timestamp", 37}};
const std::vector<variant> by_bucket{{"100ms", 37}, {"100ms", 501}, {"100ms", 37}};

std::vector<std::string> vocabulary() {
  return {"the", "quick",  "brown", "fox", "jumps", "over",  "lazy",  "dog", "and",
          "cat", "sleeps", "all",   "day", "long",  "while", "birds", "sing"};
}

// 4,500 lines of random words over three partitions with tied timestamps.
std::vector<record> word_lines(const std::string& topic, int per_partition,
                               bool distinct_times = false) {
  std::mt19937 rng{42};
  auto words = vocabulary();
  std::vector<record> input;
  for (int i = 0; i < per_partition; ++i)
    for (int p = 0; p < 3; ++p) {
      std::string line;
      auto n = 1 + rng() % 6;
      for (size_t w = 0; w < n; ++w)
        line += (w ? " " : "") + words[rng() % words.size()];
      auto ts = distinct_times ? t0 + (i * 3 + p) * 10 : tied_time(i, p);
      input.push_back({topic, p, std::nullopt, line, ts});
    }
  return input;
}

definition_factory builtin(const std::string& name, std::vector<source_spec> sources) {
  return [name, sources](const std::vector<std::string>& topics) {
    std::vector<sink_spec> sinks;
    for (size_t i = 0; i < topics.size(); ++i)
      sinks.push_back({"out" + std::to_string(i), topics[i]});
    if (name == "positions")
      sinks = {{"positions", topics[0]}, {"marks", topics[1]}};
    auto def = castor::dags::make(name, sources, sinks);
    REQUIRE(def);
    return *def;
  };
}

// Trades and prices of four symbols, 1,200 each over five minutes from
// `base` (ms), four to a second: ties in and across partitions.
std::vector<record> trades_and_prices(int64_t base) {
  std::mt19937 rng{3};
  std::vector<record> input;
  for (int i = 0; i < 1200; ++i) {
    auto p = static_cast<int32_t>(i % 2);
    auto ts = base + (i / 4) * 1000; // ties in and across partitions
    input.push_back(
        {"trades", p, std::nullopt,
         fmt::format(R"({{"symbol":"S{}","quantity":{},"price":{}}})", rng() % 4,
                     static_cast<int>(rng() % 21) - 10, 100 + rng() % 50),
         ts});
    input.push_back(
        {"prices", p, std::nullopt,
         fmt::format(R"({{"symbol":"S{}","price":{}}})", rng() % 4, 100 + rng() % 50),
         ts + 500});
  }
  return input;
}

// -- the as-of join: trades marked with the last quote's mid, as a new user
// writes it (an accumulate of the last mid per symbol, a stream over mids
// and trades) ----------------------------------------------------------------

struct quote {
  std::string symbol;
  double bid = 0;
  double ask = 0;
};

void from_json(const nlohmann::json& j, quote& q) {
  j.at("symbol").get_to(q.symbol);
  j.at("bid").get_to(q.bid);
  j.at("ask").get_to(q.ask);
}

struct trade {
  std::string id;
  std::string symbol;
  double price = 0;
};

void from_json(const nlohmann::json& j, trade& t) {
  j.at("id").get_to(t.id);
  j.at("symbol").get_to(t.symbol);
  j.at("price").get_to(t.price);
}

using mids = std::map<std::string, double>;
using marks = std::vector<std::pair<std::string, std::string>>;

castor::pipeline_definition_ptr asof_join(const std::string& out_topic) {
  auto graph = std::make_unique<castor::dag>();
  auto quotes = graph->source_stream<std::vector<quote>>("quotes");
  auto trades = graph->source_stream<std::vector<trade>>("trades");
  auto last_mid = graph
                      ->accumulate(mids{},
                                   [](mids& m, const std::vector<quote>& in) {
                                     for (auto& q : in)
                                       m[q.symbol] = (q.bid + q.ask) / 2;
                                     return in.empty() ? castor::change::unchanged
                                                       : castor::change::updated;
                                   })
                      .map(quotes);
  auto marked = graph
                    ->stream([](const mids& m, const std::vector<trade>& in) {
                      marks out;
                      for (auto& t : in) {
                        auto i = m.find(t.symbol);
                        nlohmann::json doc{{"id", t.id}};
                        doc["mid"] =
                            i == m.end() ? nlohmann::json() : nlohmann::json(i->second);
                        out.emplace_back(t.id, doc.dump());
                      }
                      return out;
                    })
                    .map(last_mid, trades);
  auto sink = graph->sink("marks", marked);
  auto def = std::make_shared<castor::pipeline_definition>(std::move(graph));
  def->source(quotes, "quotes", castor::serde::json_as<quote>(),
              start_policy::earliest());
  def->source(trades, "trades", castor::serde::json_as<trade>(),
              start_policy::earliest());
  def->sink(sink,
            castor::serializer<marks>{
                [](const marks& ms, std::vector<castor::producer_record>& out) {
                  for (auto& [key, doc] : ms) {
                    castor::producer_record r;
                    r.key = key;
                    r.value = doc;
                    out.push_back(std::move(r));
                  }
                }},
            out_topic);
  return def;
}

// Quotes (two partitions) and trades (two partitions) of five symbols in
// time order; a trade never shares its time with a quote.
std::vector<record> quotes_and_trades() {
  std::mt19937 rng{7};
  std::vector<record> input;
  int trade_id = 0;
  for (int i = 0; i < 1500; ++i) {
    auto symbol = "S" + std::to_string(rng() % 5);
    auto ts = t0 + i * 20; // quotes at multiples of 20 ms
    auto bid = 100.0 + static_cast<double>(rng() % 1000) / 10;
    input.push_back(
        {"quotes", static_cast<int32_t>(rng() % 2), std::nullopt,
         fmt::format(R"({{"symbol":"{}","bid":{},"ask":{}}})", symbol, bid, bid + 0.5),
         ts});
    if (rng() % 3 == 0) {
      auto id = "T" + std::to_string(trade_id++);
      input.push_back(
          {"trades", static_cast<int32_t>(rng() % 2), std::nullopt,
           fmt::format(R"({{"id":"{}","symbol":"S{}","price":{}}})", id, rng() % 5, bid),
           ts + 10 + static_cast<int64_t>(rng() % 9)});
    }
  }
  std::stable_sort(input.begin(), input.end(),
                   [](auto& a, auto& b) { return a.time_ms < b.time_ms; });
  return input;
}

// The marks computed apart: each trade with the mid of the last quote of its
// symbol before it.
std::map<std::string, std::string> expected_marks(const std::vector<record>& input) {
  std::map<std::string, std::string> result;
  mids last;
  for (auto& r : input) { // in time order, no ties between quotes and trades
    auto doc = nlohmann::json::parse(*r.value);
    if (r.topic == "quotes") {
      last[doc["symbol"]] = (doc["bid"].get<double>() + doc["ask"].get<double>()) / 2;
      continue;
    }
    auto i = last.find(doc["symbol"]);
    nlohmann::json mark{{"id", doc["id"]}};
    mark["mid"] = i == last.end() ? nlohmann::json() : nlohmann::json(i->second);
    result[doc["id"]] = mark.dump();
  }
  return result;
}

size_t count_of(const std::vector<record>& input, const std::string& topic) {
  return static_cast<size_t>(std::count_if(input.begin(), input.end(),
                                           [&](auto& r) { return r.topic == topic; }));
}

// Writes `input` as a live feed would: each message is released before the
// next is written (written at once, messages of different partitions could
// reach the consumer in any order: live arrivals behind the watermark).
void feed_live(kafka_env& env, system_fixture& fx, const castor::pipeline_actor& pipeline,
               std::span<const record> input) {
  auto w = castor::testing::writer::make(env.bootstrap(), {{"linger.ms", "0"}});
  REQUIRE(w);
  auto released = stats_of(*fx.sys, pipeline).released;
  for (auto& rec : input) {
    REQUIRE_FALSE((*w)->write(rec));
    REQUIRE_FALSE((*w)->flush());
    ++released;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (stats_of(*fx.sys, pipeline).released < released &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    REQUIRE(stats_of(*fx.sys, pipeline).released >= released);
  }
}

} // namespace

TEST_CASE("merge: three partitions with many equal timestamps come out byte-identical "
          "in every run and at every batch size",
          "[integration][determinism]") {
  kafka_env env{{{"a", 2}, {"b", 1}}};
  std::vector<record> input;
  for (int i = 0; i < 1500; ++i)
    for (int p = 0; p < 3; ++p)
      input.push_back({p < 2 ? "a" : "b",
                       p < 2 ? p : 0,
                       fmt::format("k{}-{}", p, i),
                       "v" + std::to_string(i),
                       tied_time(i, p),
                       {{"h", std::to_string(i % 7)}}});
  env.produce(input);
  runner r{env,
           builtin("merge", {{"a", "a", start_policy::earliest()},
                             {"b", "b", start_policy::earliest()}}),
           1};
  auto out = same_in_every_run(r, by_timestamp, input.size());
  REQUIRE(out[0].size() == input.size());
  // In (timestamp, topic, partition, offset) order.
  std::vector<std::tuple<int64_t, std::string, int, int64_t>> order;
  for (auto& rec : out[0])
    order.emplace_back(rec.time_ms, *castor::test::header_of(rec, "castor.topic"),
                       std::stoi(*castor::test::header_of(rec, "castor.partition")),
                       std::stoll(*castor::test::header_of(rec, "castor.offset")));
  CHECK(std::is_sorted(order.begin(), order.end()));
  SECTION("by buckets of 100 ms, and by batch (whose order is the same)") {
    auto buckets = same_in_every_run(r, by_bucket, input.size());
    CHECK(bytes_of(buckets[0]) == bytes_of(out[0]));
    auto batch = r.run({"batch", 501}, input.size());
    CHECK(bytes_of(batch[0]) == bytes_of(out[0]));
  }
}

TEST_CASE("wordcount: 4,500 lines with tied timestamps give byte-identical counts in "
          "every run and at every batch size, timestamped with their cycle's time",
          "[integration][determinism]") {
  kafka_env env{{{"words", 3}}};
  auto input = word_lines("words", 1500);
  env.produce(input);
  runner r{env, builtin("wordcount", {{"words", "words", start_policy::earliest()}}), 1};
  SECTION("one cycle per timestamp") {
    auto out = same_in_every_run(r, by_timestamp, input.size());
    // One record per distinct word per timestamp, stamped with it.
    std::set<int64_t> times;
    for (auto& rec : input)
      times.insert(rec.time_ms);
    std::set<int64_t> out_times;
    for (auto& rec : out[0])
      out_times.insert(rec.time_ms);
    CHECK(out_times == times);
    std::map<std::string, int> counts;
    for (auto& rec : input) {
      std::istringstream words{*rec.value};
      for (std::string w; words >> w;)
        ++counts[w];
    }
    std::map<std::string, int> last;
    for (auto& rec : out[0])
      last[*rec.key] = std::stoi(*rec.value);
    CHECK(last == counts);
  }
  SECTION("one cycle per 100 ms bucket, at the bucket's end") {
    auto out = same_in_every_run(r, by_bucket, input.size());
    for (auto& rec : out[0])
      CHECK(rec.time_ms % 100 == 0);
  }
  SECTION("batch cycles still count every word") {
    auto out = r.run({"batch", 501}, input.size());
    std::map<std::string, int> last;
    for (auto& rec : out[0])
      last[*rec.key] = std::stoi(*rec.value);
    int total = 0;
    for (auto& [w, n] : last)
      total += n;
    int expected = 0;
    for (auto& rec : input) {
      std::istringstream words{*rec.value};
      for (std::string w; words >> w;)
        ++expected;
    }
    CHECK(total == expected);
  }
}

TEST_CASE("positions: positions and minute marks are byte-identical in every run and at "
          "every batch size",
          "[integration][determinism]") {
  kafka_env env{{{"trades", 2}, {"prices", 2}}};
  // In the future: the minute timer fires only between the data (live
  // timers wait for the wall clock), so what comes out is the data's alone.
  auto base = castor::to_millis(std::chrono::floor<std::chrono::minutes>(
      castor::wall_clock_now() + std::chrono::hours{24}));
  auto input = trades_and_prices(base);
  env.produce(input);
  runner r{env,
           builtin("positions", {{"trades", "trades", start_policy::earliest()},
                                 {"prices", "prices", start_policy::earliest()}}),
           2};
  auto out = same_in_every_run(r, by_timestamp, input.size());
  CHECK(out[1].size() >= 4 * 4); // four symbols marked over five minutes
  auto buckets = same_in_every_run(r, by_bucket, input.size());
  CHECK(buckets[1].size() == out[1].size());
}

TEST_CASE("wordcount: a replay followed by live input gives the keys and values of a "
          "full replay",
          "[integration][determinism]") {
  kafka_env env{{{"words", 3}}};
  auto input = word_lines("words", 400, true);
  auto half = input.size() / 2;
  env.produce({input.begin(), input.begin() + static_cast<ptrdiff_t>(half)});
  runner r{env, builtin("wordcount", {{"words", "words", start_policy::earliest()}}), 1};
  auto topics = r.fresh_topics();
  std::vector<std::vector<record>> split;
  {
    system_fixture fx;
    auto pipeline = fx.run(
        builtin("wordcount", {{"words", "words", start_policy::earliest()}})(topics),
        env.config());
    runner::settle(fx, pipeline, half);
    feed_live(env, fx, pipeline, std::span{input}.subspan(half));
    runner::settle(fx, pipeline, input.size());
    stop_and_wait(*fx.sys, pipeline);
    split = r.read(topics);
  }
  auto full = r.run({"timestamp", 100}, input.size());
  auto sorted = [](std::vector<std::string> kv) {
    std::sort(kv.begin(), kv.end());
    return kv;
  };
  auto a = sorted(keys_and_values(split[0]));
  auto b = sorted(keys_and_values(full[0]));
  std::vector<std::string> only_split;
  std::vector<std::string> only_full;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(),
                      std::back_inserter(only_split));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(),
                      std::back_inserter(only_full));
  CHECK(only_split == std::vector<std::string>{});
  CHECK(only_full == std::vector<std::string>{});
  CHECK(split[0].size() == full[0].size());
}

TEST_CASE("the naive as-of join of trades to the last quote's mid is right in replay",
          "[integration][determinism]") {
  kafka_env env{{{"quotes", 2}, {"trades", 2}, {"marks", 1}}};
  auto input = quotes_and_trades();
  env.produce(input);
  auto expected = expected_marks(input);
  system_fixture fx;
  auto cfg = env.config();
  cfg.batch_size = 500;
  auto pipeline = fx.run(asof_join("marks"), cfg);
  runner::settle(fx, pipeline, input.size());
  stop_and_wait(*fx.sys, pipeline);
  auto out = env.read("marks", expected.size());
  REQUIRE(out.size() == count_of(input, "trades"));
  std::map<std::string, std::string> got;
  for (auto& rec : out)
    got[*rec.key] = *rec.value;
  std::vector<std::string> wrong;
  for (auto& [id, mark] : expected)
    if (got[id] != mark)
      wrong.push_back(id + ": " + got[id] + " instead of " + mark);
  CHECK(wrong == std::vector<std::string>{});
}

TEST_CASE("the naive as-of join of trades to the last quote's mid is right live",
          "[integration][determinism]") {
  kafka_env env{{{"quotes", 2}, {"trades", 2}, {"marks", 1}}};
  auto input = quotes_and_trades();
  input.resize(600); // written one at a time
  auto expected = expected_marks(input);
  system_fixture fx;
  auto pipeline = fx.run(asof_join("marks"), env.config());
  wait_until(*fx.sys, pipeline, [](auto& s) { return s.live; });
  feed_live(env, fx, pipeline, input);
  runner::settle(fx, pipeline, input.size());
  stop_and_wait(*fx.sys, pipeline);
  auto out = env.read("marks", expected.size());
  REQUIRE(out.size() == expected.size());
  std::map<std::string, std::string> got;
  for (auto& rec : out)
    got[*rec.key] = *rec.value;
  std::vector<std::string> wrong;
  for (auto& [id, mark] : expected)
    if (got[id] != mark)
      wrong.push_back(id + ": " + got[id] + " instead of " + mark);
  CHECK(wrong == std::vector<std::string>{});
}

TEST_CASE("positions over past data: what the replay makes is byte-identical at batch 37 "
          "and 501, and no timer runs ahead of the history held at the switch to live",
          "[integration][determinism]") {
  kafka_env env{{{"trades", 2}, {"prices", 2}}};
  auto base = t0; // in the past of the wall clock
  auto input = trades_and_prices(base);
  int64_t last = 0;
  for (auto& r : input)
    last = std::max(last, r.time_ms);
  env.produce(input);
  runner r{env,
           builtin("positions", {{"trades", "trades", start_policy::earliest()},
                                 {"prices", "prices", start_policy::earliest()}}),
           2};
  auto once = [&](size_t batch) {
    auto topics = r.fresh_topics();
    system_fixture fx;
    auto cfg = env.config();
    cfg.batch_size = batch;
    cfg.timer_catch_up = 5;
    auto pipeline = fx.run(
        builtin("positions", {{"trades", "trades", start_policy::earliest()},
                              {"prices", "prices", start_policy::earliest()}})(topics),
        cfg);
    wait_until(
        *fx.sys, pipeline,
        [&](const castor::pipeline_stats& s) {
          return s.live && s.released == input.size() && s.waiting == 0;
        },
        30s);
    std::this_thread::sleep_for(1s);
    stop_and_wait(*fx.sys, pipeline);
    auto out = r.read(topics);
    return out[0];
  };
  auto a = once(37);
  auto b = once(501);
  auto c = once(37);
  size_t late = 0;
  for (auto& x : a)
    if (x.time_ms > last)
      ++late;
  INFO("positions records a/b/c " << a.size() << " " << b.size() << " " << c.size()
                                  << ", a stamped after the data: " << late);
  CHECK(late == 0);
  CHECK(bytes_of(a) == bytes_of(b));
  CHECK(bytes_of(a) == bytes_of(c));
}
