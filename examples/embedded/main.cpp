// SPDX-License-Identifier: Apache-2.0
// A host application embedding castor (docs/embedding.md).
//
// Its own caf::actor_system runs its own `monitor` actor and a castor
// pipeline with its own DAG: the volume-weighted average price (VWAP) of
// each symbol, from trades ("SYMBOL PRICE QUANTITY") on topic `trades` to
// records (key SYMBOL, value VWAP) on topic `vwap`. The monitor receives
// castor's status (the switch to live) and figures (every 100 ms), stops
// the pipeline once every trade's update is delivered, and the app checks
// what Kafka holds.
//
//   vwap_app [--bootstrap HOST:PORT] [--metrics HOST:PORT]
//
// Without --bootstrap it starts librdkafka's mock cluster in-process and
// writes sample trades there; with it, it uses that cluster (topics
// `trades` and `vwap` must exist) and writes the same trades.

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>

#include <castor/dag.hpp>
#include <castor/kafka/config.hpp>
#include <castor/logger.hpp>
#include <castor/metrics_endpoint.hpp>
#include <castor/pipeline.hpp>
#include <castor/scheduler.hpp>
#include <castor/serde.hpp>
#include <castor/testing/io.hpp>
#include <castor/testing/mock_cluster.hpp>
#include <charconv>
#include <cmath>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

// -- the application's own types, deserializer, DAG and serializer ----------------

struct trade {
  std::string symbol;
  double price = 0;
  int64_t quantity = 0;
};

using trades = std::vector<trade>;

struct vwap_update {
  std::string symbol;
  double vwap = 0;
};

using vwap_updates = std::vector<vwap_update>;

// "SYMBOL PRICE QUANTITY"; anything else is rejected with its index, so
// castor dead-letters (or stops on) that message alone.
castor::deserializer<trades> trade_text() {
  return [](std::span<const castor::message_view> messages) {
    trades out;
    out.reserve(messages.size());
    for (size_t i = 0; i < messages.size(); ++i) {
      auto& m = messages[i];
      std::istringstream in{std::string{m.value.value_or("")}};
      trade t;
      if (!(in >> t.symbol >> t.price >> t.quantity) || t.quantity <= 0)
        throw castor::deserialize_error(
            i, fmt::format("not 'SYMBOL PRICE QUANTITY': '{}'", m.value.value_or("")));
      out.push_back(std::move(t));
    }
    return out;
  };
}

struct book {
  struct sums {
    double notional = 0;
    int64_t quantity = 0;
  };
  std::map<std::string, sums> by_symbol;
};

castor::pipeline_definition_ptr vwap_pipeline() {
  auto graph = std::make_unique<castor::dag>();
  auto input = graph->source_stream<trades>("trades");
  auto totals = graph
                    ->accumulate(book{},
                                 [](book& b, const trades& in) {
                                   for (auto& t : in) {
                                     auto& s = b.by_symbol[t.symbol];
                                     s.notional += t.price * double(t.quantity);
                                     s.quantity += t.quantity;
                                   }
                                 })
                    .named("totals")
                    .map(input);
  // One update per trade, in trade order: each shows the VWAP after it.
  auto updates = graph
                     ->stream([](const book& b, const trades& in) {
                       // The book already holds this cycle's trades: the
                       // update of each symbol is its VWAP after the cycle.
                       vwap_updates out;
                       for (auto& t : in) {
                         auto& s = b.by_symbol.at(t.symbol);
                         out.push_back({t.symbol, s.notional / double(s.quantity)});
                       }
                       return out;
                     })
                     .named("vwap")
                     .map(totals, input);
  auto sink = graph->sink("vwap", updates);
  auto def = std::make_shared<castor::pipeline_definition>(std::move(graph));
  def->source(input, "trades", trade_text(), castor::start_policy::earliest());
  def->sink(
      sink,
      castor::serializer<vwap_updates>{
          [](const vwap_updates& updates, std::vector<castor::producer_record>& out) {
            for (auto& u : updates) {
              castor::producer_record r;
              r.key = u.symbol;
              r.value = fmt::format("{:.4f}", u.vwap);
              out.push_back(std::move(r));
            }
          }},
      "vwap");
  return def;
}

// -- the application's own actor ----------------------------------------------------

struct monitor_state {
  castor::pipeline_actor pipeline;
  uint64_t reports = 0;
  bool live = false;
  bool stop_sent = false;
};

// Receives castor's status and figures; stops the pipeline once `expected`
// records are delivered; quits when the pipeline is down.
caf::behavior monitor(caf::stateful_actor<monitor_state>* self, uint64_t expected) {
  self->set_down_handler([self](caf::down_msg& down) {
    std::cout << "monitor: pipeline down ("
              << (down.reason ? castor::render(down.reason) : "clean stop") << "), "
              << self->state.reports << " reports received\n";
    self->quit(down.reason);
  });
  return {
      [self](castor::pipeline_actor& pipeline) {
        self->state.pipeline = pipeline;
        self->monitor(pipeline);
      },
      [self](castor::live_atom) {
        self->state.live = true;
        std::cout << "monitor: castor switched to live\n";
      },
      [self, expected](castor::pipeline_stats& s) {
        auto& st = self->state;
        ++st.reports;
        std::cout << fmt::format("monitor: {} consumed, {} delivered, {} cycles, "
                                 "held {}, live {}\n",
                                 s.consumed, s.delivered, s.cycles, s.held, s.live);
        if (st.live && s.delivered >= expected && st.pipeline && !st.stop_sent) {
          st.stop_sent = true;
          std::cout << "monitor: every update delivered: stopping the pipeline\n";
          self->send(st.pipeline, castor::stop_atom::value);
        }
      },
  };
}

// -- input and check ----------------------------------------------------------------

std::vector<trade> sample_trades() {
  std::vector<trade> result;
  const char* symbols[] = {"AAPL", "MSFT", "NVDA"};
  for (int i = 0; i < 300; ++i)
    result.push_back({symbols[i % 3], 100.0 + (i % 17) * 0.25, 1 + i % 7});
  return result;
}

// The trades, written with castor's test tools (castor::testing: a plain
// producer that sets timestamps).
bool produce(const std::string& bootstrap, const std::vector<trade>& input) {
  int64_t t0 = 1'767'258'000'000; // 2026-01-01T09:00:00Z
  std::vector<castor::testing::record> records;
  for (size_t i = 0; i < input.size(); ++i)
    records.push_back(
        {"trades", static_cast<int32_t>(i % 2), std::nullopt,
         fmt::format("{} {} {}", input[i].symbol, input[i].price, input[i].quantity),
         t0 + static_cast<int64_t>(i) * 1000});
  if (auto err = castor::testing::produce(bootstrap, records)) {
    std::cerr << castor::render(err) << "\n";
    return false;
  }
  return true;
}

// The last VWAP per symbol on `vwap`, and how many records it holds.
std::pair<std::map<std::string, std::string>, size_t>
read_vwaps(const std::string& bootstrap) {
  std::map<std::string, std::string> last;
  auto records = castor::testing::read_all(bootstrap, "vwap");
  if (!records) {
    std::cerr << castor::render(records.error()) << "\n";
    return {last, 0};
  }
  for (auto& r : *records)
    last[r.key.value_or("")] = r.value.value_or("");
  return {last, records->size()};
}

} // namespace

int main(int argc, char** argv) {
  std::string bootstrap;
  std::string metrics_listen;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--bootstrap")
      bootstrap = argv[i + 1];
    else if (flag == "--metrics")
      metrics_listen = argv[i + 1];
  }
  // An in-process development broker unless told otherwise.
  std::unique_ptr<castor::testing::mock_cluster> cluster;
  if (bootstrap.empty()) {
    auto started = castor::testing::mock_cluster::start();
    if (!started) {
      std::cerr << castor::render(started.error()) << "\n";
      return 1;
    }
    cluster = std::move(*started);
    for (auto [topic, partitions] : {std::pair{"trades", 2}, std::pair{"vwap", 1}})
      if (auto err = cluster->create_topic(topic, partitions)) {
        std::cerr << castor::render(err) << "\n";
        return 1;
      }
    bootstrap = cluster->bootstrap_servers();
  }
  auto input = sample_trades();
  if (!produce(bootstrap, input))
    return 1;

  caf::actor_system_config cfg;
  castor::add_message_types(cfg); // castor's types travel between actors
  // As many scheduler threads as castor's service would start (no more than
  // the cores: idle CAF workers poll); a host with busy actors of its own
  // may want more.
  castor::set_scheduler_threads(cfg);
  caf::actor_system sys{cfg};
  auto watcher = sys.spawn(monitor, static_cast<uint64_t>(input.size()));

  castor::pipeline_config pc;
  pc.consumer = {{"bootstrap.servers", bootstrap}, {"fetch.wait.max.ms", "10"}};
  pc.producer = {{"bootstrap.servers", bootstrap}, {"linger.ms", "5"}};
  pc.batch_size = 50;
  pc.listener = caf::actor_cast<caf::actor>(watcher);
  pc.stats_interval = std::chrono::milliseconds{100};
  auto pipeline = castor::spawn_pipeline(sys, vwap_pipeline(), pc);
  caf::anon_send(watcher, pipeline);
  std::unique_ptr<castor::metrics_endpoint> metrics;
  if (!metrics_listen.empty()) {
    auto started = castor::metrics_endpoint::start(sys, pipeline, metrics_listen);
    if (!started) {
      std::cerr << castor::render(started.error()) << "\n";
      caf::anon_send(pipeline, castor::stop_atom::value);
    } else {
      metrics = std::move(*started);
    }
  }
  auto stopped = castor::wait_for(sys, pipeline);
  metrics.reset();
  if (stopped) {
    std::cerr << "pipeline failed: " << castor::render(stopped) << "\n";
    return 1;
  }
  {
    caf::scoped_actor self{sys};
    self->wait_for(watcher);
  }

  // What Kafka holds: one update per trade, and each symbol's last one is
  // its VWAP over every trade.
  auto [vwaps, count] = read_vwaps(bootstrap);
  std::map<std::string, book::sums> expected;
  for (auto& t : input) {
    expected[t.symbol].notional += t.price * double(t.quantity);
    expected[t.symbol].quantity += t.quantity;
  }
  bool ok = count == input.size();
  std::cout << fmt::format("vwap holds {} records for {} trades\n", count, input.size());
  for (auto& [symbol, s] : expected) {
    auto want = fmt::format("{:.4f}", s.notional / double(s.quantity));
    auto got = vwaps.count(symbol) ? vwaps[symbol] : "none";
    std::cout << fmt::format("{}: VWAP {} (expected {})\n", symbol, got, want);
    ok = ok && got == want;
  }
  std::cout << (ok ? "embedded example: ok\n" : "embedded example: WRONG\n");
  // Kafka clients that a silent broker left closing in the background end
  // before static destruction does.
  castor::kafka::finish_closing(std::chrono::seconds{5});
  return ok ? 0 : 1;
}
