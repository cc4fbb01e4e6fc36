// SPDX-License-Identifier: Apache-2.0
#include "marks.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <map>

namespace marks {

namespace {

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
  std::string side;
  double price = 0;
};

void from_json(const nlohmann::json& j, trade& t) {
  j.at("id").get_to(t.id);
  j.at("symbol").get_to(t.symbol);
  j.at("side").get_to(t.side);
  j.at("price").get_to(t.price);
  if (t.side != "buy" && t.side != "sell")
    throw std::invalid_argument("side must be buy or sell, not " + t.side);
}

// The last usable mid of each symbol, and when it was quoted.
struct book {
  struct mid {
    double value = 0;
    castor::timestamp at;
  };
  std::map<std::string, mid> mids;
};

using mark = std::pair<std::string, std::string>; // trade id, JSON
using marks = std::vector<mark>;

// To hundredths: 47.619... -> 47.62 (and JSON prints 47.62).
double hundredths(double x) {
  return std::round(x * 100) / 100;
}

} // namespace

caf::expected<castor::pipeline_definition_ptr> make(const castor::dag_config& cfg) {
  auto max_age =
      cfg.params.get_or<castor::duration>("max_quote_age", std::chrono::minutes{1});
  auto min_spread = cfg.params.get_or<double>("min_spread_bps", 0.0);
  auto& quotes_in = cfg.source("quotes");
  auto& trades_in = cfg.source("trades");
  auto& marks_out = cfg.sink("marks");

  auto graph = std::make_unique<castor::dag>();
  auto quotes = graph->source_stream<std::vector<quote>>("quotes");
  auto trades = graph->source_stream<std::vector<trade>>("trades");
  auto now = graph->now();
  // A cycle is one timestamp of both topics: the book has every quote up to
  // the trades' time (those at that very time included) and none after.
  auto last =
      graph
          ->accumulate(
              book{},
              [min_spread](book& b, const std::vector<quote>& in, castor::timestamp t) {
                bool changed = false;
                for (auto& q : in) {
                  auto mid = (q.bid + q.ask) / 2;
                  if (mid <= 0 || (q.ask - q.bid) / mid * 1e4 < min_spread)
                    continue;
                  b.mids[q.symbol] = {mid, t};
                  changed = true;
                }
                return changed ? castor::change::updated : castor::change::unchanged;
              })
          .named("last_mid")
          .map(quotes, now);
  auto marked = graph
                    ->stream([max_age](const book& b, const std::vector<trade>& in,
                                       castor::timestamp t) {
                      marks out;
                      for (auto& tr : in) {
                        nlohmann::json doc{{"id", tr.id},
                                           {"symbol", tr.symbol},
                                           {"side", tr.side},
                                           {"price", tr.price},
                                           {"mid", nullptr},
                                           {"slippage_bps", nullptr},
                                           {"quote_age_ms", nullptr}};
                        auto i = b.mids.find(tr.symbol);
                        if (i != b.mids.end() && t - i->second.at <= max_age) {
                          auto mid = i->second.value;
                          // Positive: the trade paid more than mid (buy) or got less
                          // (sell).
                          auto sign = tr.side == "buy" ? 1.0 : -1.0;
                          doc["mid"] = mid;
                          doc["slippage_bps"] =
                              hundredths(sign * (tr.price - mid) / mid * 1e4);
                          doc["quote_age_ms"] =
                              castor::to_millis(t) - castor::to_millis(i->second.at);
                        }
                        out.emplace_back(tr.id, doc.dump());
                      }
                      return out;
                    })
                    .named("mark")
                    .map(last, trades, now);
  auto sink = graph->sink("marks", marked);

  auto def = std::make_shared<castor::pipeline_definition>(std::move(graph));
  def->source(quotes, quotes_in.topic, castor::serde::json_as<quote>(), quotes_in.start);
  def->source(trades, trades_in.topic, castor::serde::json_as<trade>(), trades_in.start);
  def->sink(sink,
            castor::serializer<marks>{
                [](const marks& ms, std::vector<castor::producer_record>& out) {
                  for (auto& [id, doc] : ms) {
                    castor::producer_record r;
                    r.key = id;
                    r.value = doc;
                    out.push_back(std::move(r));
                  }
                }},
            marks_out.topic);
  return def;
}

} // namespace marks
