// SPDX-License-Identifier: Apache-2.0
// Test plugin: DAG "upper" (source "in", sink "out"): each value in upper
// case, `repeat` times (engine.params.repeat, default 1), followed by
// engine.params.suffix (default none). DAG "boom": its factory throws.

#include <castor/plugin.hpp>
#include <cctype>

namespace {

using values = std::vector<std::string>;

caf::expected<castor::pipeline_definition_ptr> make_upper(const castor::dag_config& cfg) {
  auto repeat = cfg.params.get_or<int>("repeat", 1);
  auto suffix = cfg.params.get_or<std::string>("suffix", "");
  auto& in = cfg.source("in");
  auto& out = cfg.sink("out");
  auto graph = std::make_unique<castor::dag>();
  auto source = graph->source_stream<values>("in");
  auto shouted =
      graph
          ->stream([repeat, suffix](const values& vs) {
            values result;
            for (auto v : vs) {
              for (auto& c : v)
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
              std::string text;
              for (int k = 0; k < repeat; ++k)
                text += v;
              result.push_back(text + suffix);
            }
            return result;
          })
          .named("shout")
          .map(source);
  auto sink = graph->sink("out", shouted);
  auto def = std::make_shared<castor::pipeline_definition>(std::move(graph));
  def->source(source, in.topic,
              castor::deserializer<values>{[](std::span<const castor::message_view> ms) {
                values vs;
                for (auto& m : ms)
                  vs.emplace_back(m.value.value_or(""));
                return vs;
              }},
              in.start);
  def->sink(sink,
            castor::serializer<values>{
                [](const values& vs, std::vector<castor::producer_record>& records) {
                  for (auto& v : vs) {
                    castor::producer_record r;
                    r.value = v;
                    records.push_back(std::move(r));
                  }
                }},
            out.topic);
  return def;
}

} // namespace

CASTOR_PLUGIN(registry) {
  registry.add("upper", make_upper);
  registry.add(
      "boom",
      [](const castor::dag_config&) -> caf::expected<castor::pipeline_definition_ptr> {
        throw std::runtime_error("the boom factory always throws");
      });
}
