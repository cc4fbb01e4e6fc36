// SPDX-License-Identifier: Apache-2.0
#include "castor/dags/builtin.hpp"

#include "castor/dags/word_ids.hpp"
#include "castor/json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <span>
#include <tuple>

namespace castor::dags {

namespace {

caf::error wrong_shape(const char* dag, const char* what) {
  return make_error(ec::invalid_config, fmt::format("dag '{}' needs {}", dag, what));
}

// Views into the cycle's messages: a stream value, so it lives one cycle.
using words = std::vector<std::string_view>;
using count_updates = std::vector<std::pair<std::string, std::string>>;
// The cycle's words of every source, as spans of the sources' own vectors
// (no copy; valid for the cycle, like the sources' values).
using word_lists = std::vector<std::span<const std::string_view>>;
using views = std::vector<message_view>;

// Every word's count, and the words counted in the last update (each once):
// a cycle's output costs its distinct words, not all the words it saw.
// Words map to dense ids (word_ids.hpp: one slot, one integer compare for
// short words); counts are indexed by id.
struct word_counts {
  struct entry {
    int64_t count = 0;
    uint64_t seen_in = 0;
  };
  word_ids ids;
  std::vector<entry> entries;
  /// Ids counted in the last update.
  std::vector<word_ids::id> touched;
  uint64_t update = 0;

  void add(const word_lists& seen) {
    ++update;
    touched.clear();
    for (auto list : seen)
      add_words(list);
  }

  void add_words(std::span<const std::string_view> words) {
    for (auto w : words) {
      auto i = ids(w);
      if (i == entries.size())
        entries.emplace_back();
      auto& e = entries[i];
      ++e.count;
      if (e.seen_in != update) {
        e.seen_in = update;
        touched.push_back(i);
      }
    }
  }
};

// The latest count of every word seen in this cycle, in word order.
count_updates changed_counts(const word_counts& counts, const word_lists& seen) {
  count_updates result;
  if (seen.empty())
    return result;
  auto unique = counts.touched;
  std::sort(unique.begin(), unique.end(), [&](word_ids::id a, word_ids::id b) {
    return counts.ids.word(a) < counts.ids.word(b);
  });
  result.reserve(unique.size());
  for (auto i : unique)
    result.emplace_back(counts.ids.word(i), std::to_string(counts.entries[i].count));
  return result;
}

// Release order: (timestamp, topic, partition, offset).
auto release_key(const message_view& m) {
  return std::tuple{m.time.value_or(timestamp::min()), m.topic, m.partition, m.offset};
}

// Into `out`: its buffer is the last cycle's (see dag::stream_into).
void merge_two(views& out, const views& a, const views& b) {
  out.reserve(a.size() + b.size());
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out),
             [](const message_view& x, const message_view& y) {
               return release_key(x) < release_key(y);
             });
}

// Key, value, headers and timestamp of each message; with `coordinates`,
// also headers naming where it came from.
void copy_messages(const views& messages, std::vector<producer_record>& out,
                   bool coordinates) {
  // `out` gathers many cycles' records: an exact reserve each cycle would
  // copy them all every cycle.
  if (out.capacity() < out.size() + messages.size())
    out.reserve(std::max(out.size() + messages.size(), 2 * out.capacity()));
  for (auto& m : messages) {
    auto& r = out.emplace_back();
    // The input's bytes as they are: librdkafka copies them when it
    // produces, and castor keeps the input until then.
    if (m.key)
      r.key = bytes::borrow(*m.key);
    if (m.value)
      r.value = bytes::borrow(*m.value);
    r.headers = m.headers.copy(); // (no allocation when there are none)
    r.time = m.time;
    // The producer writes these as castor.* headers (record_origin).
    if (coordinates)
      r.origin = record_origin{std::string{m.topic}, m.partition, m.offset, m.time};
  }
}

} // namespace

caf::expected<pipeline_definition_ptr> wordcount(const std::vector<source_spec>& sources,
                                                 const std::vector<sink_spec>& sinks) {
  if (sources.empty())
    return wrong_shape("wordcount", "at least one source");
  if (sinks.size() != 1)
    return wrong_shape("wordcount", "exactly one sink");
  auto graph = std::make_unique<dag>();
  std::vector<source_ref<words>> inputs;
  for (auto& s : sources)
    inputs.push_back(graph->source_stream<words>(s.name));
  // The words of every source, in source order.
  node_ref<word_lists> text = graph
                                  ->stream([](const words& first) {
                                    word_lists all;
                                    if (!first.empty())
                                      all.emplace_back(first);
                                    return all;
                                  })
                                  .named("all_words")
                                  .map(inputs[0]);
  for (size_t i = 1; i < inputs.size(); ++i)
    text = graph
               ->stream([](const word_lists& before, const words& more) {
                 auto all = before;
                 if (!more.empty())
                   all.emplace_back(more);
                 return all;
               })
               .named("words_" + std::to_string(i))
               .map(text, inputs[i]);
  auto counts =
      graph
          ->accumulate(word_counts{},
                       [](word_counts& all, const word_lists& seen) {
                         all.add(seen);
                         return seen.empty() ? change::unchanged : change::updated;
                       })
          .named("word_counts")
          .map(text);
  auto updates = graph->stream(changed_counts).named("changed_counts").map(counts, text);
  auto out = graph->sink(sinks[0].name, updates);
  auto def = std::make_shared<pipeline_definition>(std::move(graph));
  for (size_t i = 0; i < sources.size(); ++i)
    def->source(inputs[i], sources[i].topic, serde::word_views(), sources[i].start);
  def->sink(out, serde::key_values_out(), sinks[0].topic);
  return def;
}

namespace {

caf::expected<pipeline_definition_ptr>
ordered_copy(const char* name, const std::vector<source_spec>& sources,
             const std::vector<sink_spec>& sinks, bool coordinates) {
  if (sources.empty())
    return wrong_shape(name, "at least one source");
  if (sinks.size() != 1)
    return wrong_shape(name, "exactly one sink");
  auto graph = std::make_unique<dag>();
  std::vector<source_ref<views>> inputs;
  for (auto& s : sources)
    inputs.push_back(graph->source_stream<views>(s.name));
  node_ref<views> merged = inputs[0];
  for (size_t i = 1; i < inputs.size(); ++i)
    merged = graph->stream_into(views{}, merge_two)
                 .named("merge_" + std::to_string(i))
                 .map(merged, inputs[i]);
  auto out = graph->sink(sinks[0].name, merged);
  auto def = std::make_shared<pipeline_definition>(std::move(graph));
  for (size_t i = 0; i < sources.size(); ++i)
    def->source(inputs[i], sources[i].topic, serde::views(), sources[i].start);
  def->sink(out,
            serializer<views>{[coordinates](const views& messages,
                                            std::vector<producer_record>& records) {
              copy_messages(messages, records, coordinates);
            }},
            sinks[0].topic);
  return def;
}

} // namespace

caf::expected<pipeline_definition_ptr> merge(const std::vector<source_spec>& sources,
                                             const std::vector<sink_spec>& sinks) {
  return ordered_copy("merge", sources, sinks, true);
}

caf::expected<pipeline_definition_ptr> copy(const std::vector<source_spec>& sources,
                                            const std::vector<sink_spec>& sinks) {
  return ordered_copy("copy", sources, sinks, false);
}

namespace {

// -- positions: trades and prices, marked to market every minute -------------

struct trade {
  std::string symbol;
  double quantity = 0; // signed: buys positive, sells negative
  double price = 0;
};

void from_json(const nlohmann::json& j, trade& t) {
  j.at("symbol").get_to(t.symbol);
  j.at("quantity").get_to(t.quantity);
  j.at("price").get_to(t.price);
}

struct price_tick {
  std::string symbol;
  double price = 0;
};

void from_json(const nlohmann::json& j, price_tick& p) {
  j.at("symbol").get_to(p.symbol);
  j.at("price").get_to(p.price);
}

struct position {
  double quantity = 0;
  /// What the position cost (signed cash paid).
  double cost = 0;
};

using positions = std::map<std::string, position>;
using last_prices = std::map<std::string, double>;
using keyed_json = std::vector<std::pair<std::string, std::string>>;

timestamp next_minute(timestamp t) {
  return std::chrono::floor<std::chrono::minutes>(t) + std::chrono::minutes{1};
}

void keyed_json_out(const keyed_json& docs, std::vector<producer_record>& out) {
  for (auto& [key, doc] : docs) {
    auto& r = out.emplace_back();
    r.key = key;
    r.value = doc;
  }
}

} // namespace

caf::expected<pipeline_definition_ptr>
positions_dag(const std::vector<source_spec>& sources,
              const std::vector<sink_spec>& sinks) {
  if (sources.size() != 2)
    return wrong_shape("positions", "two sources: trades, then prices");
  if (sinks.size() != 2)
    return wrong_shape("positions", "two sinks: positions, then marks");
  auto graph = std::make_unique<dag>();
  auto trades = graph->source_stream<std::vector<trade>>(sources[0].name);
  auto ticks = graph->source_stream<std::vector<price_tick>>(sources[1].name);
  // State: positions by symbol, from trades.
  auto book = graph
                  ->accumulate(positions{},
                               [](positions& book, const std::vector<trade>& in) {
                                 for (auto& t : in) {
                                   auto& p = book[t.symbol];
                                   p.quantity += t.quantity;
                                   p.cost += t.quantity * t.price;
                                 }
                                 return in.empty() ? change::unchanged : change::updated;
                               })
                  .named("book")
                  .map(trades);
  // State: the last price of each symbol; trades count as prices too.
  auto prices = graph
                    ->accumulate(last_prices{},
                                 [](last_prices& last, const std::vector<price_tick>& in,
                                    const std::vector<trade>& traded) {
                                   for (auto& t : traded)
                                     last[t.symbol] = t.price;
                                   for (auto& p : in)
                                     last[p.symbol] = p.price;
                                   return in.empty() && traded.empty() ? change::unchanged
                                                                       : change::updated;
                                 })
                    .named("last_prices")
                    .map(ticks, trades);
  // Stream: the positions of the symbols traded in this cycle.
  auto changed =
      graph
          ->stream([](const positions& book, const std::vector<trade>& traded) {
            keyed_json out;
            std::set<std::string> seen;
            for (auto& t : traded)
              if (seen.insert(t.symbol).second) {
                auto& p = book.at(t.symbol);
                out.emplace_back(t.symbol, nlohmann::json{{"symbol", t.symbol},
                                                          {"position", p.quantity},
                                                          {"cost", p.cost}}
                                               .dump());
              }
            return out;
          })
          .named("changed_positions")
          .map(book, trades);
  // Stream: every minute (cycle time: replay or wall clock), each position
  // marked to market with the last price.
  auto marks = graph
                   ->stream([](const castor::timer& minute, const timestamp& now,
                               const positions& book, const last_prices& last) {
                     keyed_json out;
                     if (minute.fired()) {
                       for (auto& [symbol, p] : book) {
                         auto px = last.find(symbol);
                         nlohmann::json doc{{"symbol", symbol},
                                            {"time", to_string(now)},
                                            {"position", p.quantity}};
                         if (px != last.end()) {
                           doc["price"] = px->second;
                           doc["value"] = p.quantity * px->second;
                           doc["pnl"] = p.quantity * px->second - p.cost;
                         }
                         out.emplace_back(symbol, doc.dump());
                       }
                     }
                     if (!minute.next())
                       minute.set(next_minute(now));
                     return out;
                   })
                   .named("mark_to_market")
                   .map(graph->timer_manager(), graph->now(), book, prices);
  auto positions_out = graph->sink(sinks[0].name, changed);
  auto marks_out = graph->sink(sinks[1].name, marks);
  auto def = std::make_shared<pipeline_definition>(std::move(graph));
  def->source(trades, sources[0].topic, serde::json_as<trade>(), sources[0].start);
  def->source(ticks, sources[1].topic, serde::json_as<price_tick>(), sources[1].start);
  def->sink(positions_out, serializer<keyed_json>{keyed_json_out}, sinks[0].topic);
  def->sink(marks_out, serializer<keyed_json>{keyed_json_out}, sinks[1].topic);
  return def;
}

void add_builtins(registry& r) {
  auto bind = [](factory f) {
    return
        [f = std::move(f)](const dag_config& cfg) { return f(cfg.sources, cfg.sinks); };
  };
  r.add("wordcount", bind(wordcount));
  r.add("merge", bind(merge));
  r.add("copy", bind(copy));
  r.add("positions", bind(positions_dag));
}

caf::expected<pipeline_definition_ptr> make(const std::string& name,
                                            const std::vector<source_spec>& sources,
                                            const std::vector<sink_spec>& sinks) {
  static const registry builtins;
  return builtins.make(name, dag_config{sources, sinks, {}});
}

} // namespace castor::dags
