// SPDX-License-Identifier: Apache-2.0
#include "service_config.hpp"

#include "castor/kafka.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

namespace castor::service {

namespace {

// Collects the first error, with the file and line it is about.
class checker {
public:
  explicit checker(std::string path) : path_(std::move(path)) {}

  void fail(const toml::source_region& where, const std::string& what) {
    if (err_)
      return;
    if (where.begin.line == 0) // about the file as a whole
      err_ = make_error(ec::invalid_config, fmt::format("{}: {}", path_, what));
    else
      err_ = make_error(ec::invalid_config,
                        fmt::format("{}:{}: {}", path_, where.begin.line, what));
  }

  void fail_kafka(const toml::source_region& where, const caf::error& e) {
    if (!err_)
      err_ = make_error(code_of(e),
                        fmt::format("{}:{}: {}", path_, where.begin.line, render(e)));
  }

  // Every key of `table` must be one of `known`.
  void only(const toml::table& table, const std::string& prefix,
            std::initializer_list<std::string_view> known) {
    for (auto& [key, node] : table) {
      bool ok = false;
      for (auto k : known)
        ok = ok || key.str() == k;
      if (!ok)
        fail(node.source(), fmt::format("unknown key '{}{}'", prefix, key.str()));
    }
  }

  std::optional<std::string> string(const toml::table& t, std::string_view key,
                                    const std::string& prefix) {
    auto* node = t.get(key);
    if (node == nullptr)
      return std::nullopt;
    if (auto* s = node->as_string())
      return s->get();
    fail(node->source(), fmt::format("'{}{}' must be a string", prefix, key));
    return std::nullopt;
  }

  std::optional<int64_t> integer(const toml::table& t, std::string_view key,
                                 const std::string& prefix, int64_t min) {
    auto* node = t.get(key);
    if (node == nullptr)
      return std::nullopt;
    auto* i = node->as_integer();
    if (i == nullptr) {
      fail(node->source(), fmt::format("'{}{}' must be an integer", prefix, key));
      return std::nullopt;
    }
    if (i->get() < min) {
      fail(node->source(),
           fmt::format("'{}{}' must be at least {}, not {}", prefix, key, min, i->get()));
      return std::nullopt;
    }
    return i->get();
  }

  // "30s", "250ms", "5m".
  std::optional<duration> period(const toml::table& t, std::string_view key,
                                 const std::string& prefix, bool allow_zero = false) {
    auto text = string(t, key, prefix);
    if (!text)
      return std::nullopt;
    // Reuse the start policy's duration syntax.
    auto parsed = start_policy::parse("relative:" + *text);
    if (!parsed || parsed->relative < duration::zero() ||
        (!allow_zero && parsed->relative == duration::zero())) {
      fail(t.get(key)->source(),
           fmt::format("'{}{}' = '{}' is not a {} duration (e.g. 30s, 250ms, 5m)", prefix,
                       key, *text, allow_zero ? "non-negative" : "positive"));
      return std::nullopt;
    }
    return parsed->relative;
  }

  // "stop" or "dead_letter".
  std::optional<error_policy> policy(const toml::table& t, std::string_view key,
                                     const std::string& prefix) {
    auto text = string(t, key, prefix);
    if (!text)
      return std::nullopt;
    auto parsed = parse_error_policy(*text);
    if (!parsed) {
      fail(t.get(key)->source(),
           fmt::format("'{}{}' = '{}' is not one of stop, dead_letter", prefix, key,
                       *text));
      return std::nullopt;
    }
    return *parsed;
  }

  // A table of librdkafka properties: values may be strings, integers or
  // booleans, and librdkafka itself checks them.
  kafka::properties properties(const toml::table& t, std::string_view key,
                               const std::string& what) {
    kafka::properties result;
    auto* node = t.get(key);
    if (node == nullptr)
      return result;
    auto* table = node->as_table();
    if (table == nullptr) {
      fail(node->source(), fmt::format("'kafka.{}' must be a table", key));
      return result;
    }
    for (auto& [k, v] : *table) {
      std::string value;
      if (auto* s = v.as_string())
        value = s->get();
      else if (auto* i = v.as_integer())
        value = std::to_string(i->get());
      else if (auto* b = v.as_boolean())
        value = b->get() ? "true" : "false";
      else if (auto* f = v.as_floating_point())
        value = fmt::format("{}", f->get());
      else {
        fail(v.source(),
             fmt::format("'kafka.{}.\"{}\"' must be a string, number or boolean", key,
                         k.str()));
        continue;
      }
      // Let librdkafka judge every property now, not at start-up.
      kafka::conf_ptr probe{rd_kafka_conf_new()};
      if (auto e = kafka::set(probe.get(), std::string{k.str()}, value, what))
        fail_kafka(v.source(), e);
      result[std::string{k.str()}] = value;
    }
    return result;
  }

  caf::error error() const { return err_; }

private:
  std::string path_;
  caf::error err_;
};

} // namespace

pipeline_config service_config::to_pipeline_config(const std::string& bootstrap) const {
  auto result = pipeline;
  result.consumer["bootstrap.servers"] = bootstrap;
  result.producer["bootstrap.servers"] = bootstrap;
  if (!group_id.empty())
    result.consumer["group.id"] = group_id;
  return result;
}

caf::expected<service_config> load(const std::string& path) {
  toml::table doc;
  try {
    doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (e.source().begin.line == 0)
      return make_error(ec::invalid_config,
                        fmt::format("{}: cannot read: {}", path, e.description()));
    return make_error(
        ec::invalid_config,
        fmt::format("{}:{}: {}", path, e.source().begin.line, e.description()));
  }
  // Environment overrides: CASTOR_<TABLE>_<KEY> for the scalar keys below
  // (e.g. CASTOR_KAFKA_BOOTSTRAP_SERVERS, CASTOR_ENGINE_BATCH_SIZE).
  static constexpr std::pair<std::string_view, std::string_view> overridable[] = {
      {"kafka", "bootstrap_servers"},
      {"kafka", "group_id"},
      {"engine", "dag"},
      {"engine", "batch_size"},
      {"engine", "idle_timeout"},
      {"engine", "startup_timeout"},
      {"engine", "flush_timeout"},
      {"engine", "progress_interval"},
      {"engine", "commit_interval"},
      {"errors", "dead_letter_topic"},
      {"errors", "on_deserialize_error"},
      {"errors", "on_node_error"},
      {"log", "level"},
      {"metrics", "listen"},
  };
  for (auto [table, key] : overridable) {
    std::string name = "CASTOR_" + std::string{table} + "_" + std::string{key};
    for (auto& c : name)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const char* value = std::getenv(name.c_str());
    if (value == nullptr)
      continue;
    if (!doc.contains(table))
      doc.insert(table, toml::table{});
    auto* t = doc.get(table)->as_table();
    if (t == nullptr)
      continue; // reported below as a wrong type
    if (key == "batch_size") {
      try {
        size_t used = 0;
        auto n = std::stoll(value, &used);
        if (used != std::strlen(value))
          throw std::invalid_argument{"trailing characters"};
        t->insert_or_assign(key, n);
      } catch (const std::exception&) {
        return make_error(
            ec::invalid_config,
            fmt::format("{}='{}' (engine.batch_size) is not an integer", name, value));
      }
    } else {
      t->insert_or_assign(key, std::string{value});
    }
  }
  checker check{path};
  service_config cfg;
  cfg.path = path;
  check.only(
      doc, "",
      {"kafka", "engine", "errors", "log", "metrics", "sources", "sinks", "embedded"});
  toml::source_region top{};

  auto table_of = [&](std::string_view key) -> const toml::table* {
    auto* node = doc.get(key);
    if (node == nullptr)
      return nullptr;
    if (auto* t = node->as_table())
      return t;
    check.fail(node->source(), fmt::format("'{}' must be a table", key));
    return nullptr;
  };

  // [kafka]
  if (auto* kafka = table_of("kafka")) {
    check.only(*kafka, "kafka.",
               {"bootstrap_servers", "group_id", "consumer", "producer"});
    if (auto v = check.string(*kafka, "bootstrap_servers", "kafka."))
      cfg.bootstrap_servers = *v;
    if (auto v = check.string(*kafka, "group_id", "kafka."))
      cfg.group_id = *v;
    cfg.pipeline.consumer = check.properties(*kafka, "consumer", "consumer");
    cfg.pipeline.producer = check.properties(*kafka, "producer", "producer");
    for (auto* props : {&cfg.pipeline.consumer, &cfg.pipeline.producer})
      if (props->contains("bootstrap.servers"))
        check.fail(kafka->source(),
                   "set the cluster with 'kafka.bootstrap_servers', not "
                   "bootstrap.servers in kafka.consumer / kafka.producer");
  }
  if (cfg.bootstrap_servers.empty())
    check.fail(top, "'kafka.bootstrap_servers' is required (\"embedded\" or "
                    "\"host:port,...\")");

  // [engine]
  if (auto* engine = table_of("engine")) {
    check.only(*engine, "engine.",
               {"dag", "batch_size", "idle_timeout", "startup_timeout", "flush_timeout",
                "progress_interval", "commit_interval"});
    if (auto v = check.string(*engine, "dag", "engine."))
      cfg.dag = *v;
    if (auto v = check.integer(*engine, "batch_size", "engine.", 1))
      cfg.pipeline.batch_size = static_cast<size_t>(*v);
    if (auto v = check.period(*engine, "idle_timeout", "engine."))
      cfg.pipeline.idle_timeout = *v;
    if (auto v = check.period(*engine, "startup_timeout", "engine."))
      cfg.pipeline.startup_timeout = *v;
    if (auto v = check.period(*engine, "flush_timeout", "engine."))
      cfg.pipeline.flush_timeout = *v;
    if (auto v = check.period(*engine, "progress_interval", "engine."))
      cfg.pipeline.progress_interval = *v;
    if (auto v = check.period(*engine, "commit_interval", "engine.", true))
      cfg.pipeline.commit_interval = *v;
    if (!cfg.dag.empty() && !dags::builtin().contains(cfg.dag)) {
      std::string names;
      for (auto& [name, _] : dags::builtin())
        names += (names.empty() ? "" : ", ") + name;
      check.fail(
          engine->get("dag")->source(),
          fmt::format("'engine.dag' = '{}' is not a built-in DAG ({})", cfg.dag, names));
    }
  }
  if (cfg.dag.empty())
    check.fail(top, "'engine.dag' is required");

  // [errors]
  if (auto* errors = table_of("errors")) {
    check.only(*errors, "errors.",
               {"dead_letter_topic", "on_deserialize_error", "on_node_error"});
    if (auto v = check.string(*errors, "dead_letter_topic", "errors."))
      cfg.pipeline.dead_letter_topic = *v;
    if (auto v = check.policy(*errors, "on_deserialize_error", "errors."))
      cfg.pipeline.on_deserialize_error = *v;
    if (auto v = check.policy(*errors, "on_node_error", "errors."))
      cfg.pipeline.on_node_error = *v;
    if (cfg.pipeline.dead_letter_topic.empty())
      for (auto key : {"on_deserialize_error", "on_node_error"})
        if (auto* node = errors->get(key);
            node != nullptr && node->value_or(std::string_view{}) == "dead_letter")
          check.fail(node->source(), fmt::format("'errors.{}' = 'dead_letter' needs "
                                                 "'errors.dead_letter_topic'",
                                                 key));
  }

  // [metrics]
  if (auto* metrics = table_of("metrics")) {
    check.only(*metrics, "metrics.", {"listen"});
    if (auto v = check.string(*metrics, "listen", "metrics.")) {
      // host:port, the port a number (0: any free one).
      auto colon = v->rfind(':');
      int port = -1;
      if (colon != std::string::npos && colon > 0 && colon + 1 < v->size() &&
          v->find_first_not_of("0123456789", colon + 1) == std::string::npos &&
          v->size() - colon - 1 <= 5)
        port = std::stoi(v->substr(colon + 1));
      if (port < 0 || port > 65535)
        check.fail(metrics->get("listen")->source(),
                   fmt::format("'metrics.listen' = '{}' is not host:port", *v));
      else
        cfg.metrics_listen = *v;
    }
  }

  // [log]
  if (auto* log = table_of("log")) {
    check.only(*log, "log.", {"level"});
    if (auto v = check.string(*log, "level", "log.")) {
      static const std::set<std::string> levels{"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
      if (levels.contains(*v))
        cfg.log_level = *v;
      else
        check.fail(
            log->get("level")->source(),
            fmt::format("'log.level' = '{}' is not one of trace, debug, info, warn, "
                        "error, critical, off",
                        *v));
    }
  }

  // [[sources]] and [[sinks]]
  auto array_of = [&](std::string_view key) -> const toml::array* {
    auto* node = doc.get(key);
    if (node == nullptr)
      return nullptr;
    if (auto* a = node->as_array(); a != nullptr && a->is_array_of_tables())
      return a;
    check.fail(node->source(),
               fmt::format("'{}' must be an array of tables ([[{}]])", key, key));
    return nullptr;
  };
  if (auto* sources = array_of("sources")) {
    for (auto& node : *sources) {
      auto& t = *node.as_table();
      check.only(t, "sources.", {"name", "topic", "start"});
      dags::source_spec spec;
      spec.name = check.string(t, "name", "sources.").value_or("");
      spec.topic = check.string(t, "topic", "sources.").value_or("");
      if (spec.name.empty() || spec.topic.empty())
        check.fail(t.source(), "each [[sources]] needs a name and a topic");
      auto start = check.string(t, "start", "sources.").value_or("latest");
      if (auto policy = start_policy::parse(start))
        spec.start = *policy;
      else
        check.fail(t.get("start")->source(), render(policy.error()));
      cfg.sources.push_back(std::move(spec));
    }
  }
  if (cfg.sources.empty())
    check.fail(top, "at least one [[sources]] is required");
  if (auto* sinks = array_of("sinks")) {
    for (auto& node : *sinks) {
      auto& t = *node.as_table();
      check.only(t, "sinks.", {"name", "topic"});
      dags::sink_spec spec;
      spec.name = check.string(t, "name", "sinks.").value_or("");
      spec.topic = check.string(t, "topic", "sinks.").value_or("");
      if (spec.name.empty() || spec.topic.empty())
        check.fail(t.source(), "each [[sinks]] needs a name and a topic");
      cfg.sinks.push_back(std::move(spec));
    }
  }

  // [embedded]
  if (auto* embedded = table_of("embedded")) {
    check.only(*embedded, "embedded.", {"topics"});
    if (auto* node = embedded->get("topics")) {
      auto* list = node->as_array();
      if (list == nullptr)
        check.fail(node->source(),
                   "'embedded.topics' must be an array of \"name:partitions\"");
      else
        for (auto& item : *list) {
          auto* s = item.as_string();
          auto text = s != nullptr ? s->get() : std::string{};
          auto colon = text.rfind(':');
          int partitions = 0;
          if (colon != std::string::npos)
            try {
              partitions = std::stoi(text.substr(colon + 1));
            } catch (const std::exception&) {
              partitions = 0;
            }
          if (colon == 0 || colon == std::string::npos || partitions < 1 ||
              partitions > 1000)
            check.fail(
                item.source(),
                fmt::format("'embedded.topics' entry '{}' is not \"name:partitions\"",
                            text));
          else
            cfg.embedded_topics.push_back({text.substr(0, colon), partitions});
        }
    }
  }
  if (auto err = check.error())
    return err;
  // The DAG must accept the sources and sinks as configured.
  auto def = dags::builtin().at(cfg.dag)(cfg.sources, cfg.sinks);
  if (!def)
    return make_error(ec::invalid_config,
                      fmt::format("{}: {}", path, render(def.error())));
  if (auto err = (*def)->validate())
    return make_error(ec::invalid_config, fmt::format("{}: {}", path, render(err)));
  return cfg;
}

std::string to_toml(const service_config& cfg) {
  auto quote = [](const std::string& s) {
    std::ostringstream os;
    os << toml::value<std::string>{s};
    return os.str();
  };
  auto props = [&](const kafka::properties& p) {
    std::string out;
    for (auto& [k, v] : p)
      out += fmt::format("\"{}\" = {}\n", k, quote(kafka::is_secret(k) ? "***" : v));
    return out;
  };
  auto seconds = [](duration d) {
    return fmt::format("\"{}ms\"",
                       std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  std::string out;
  out += fmt::format("[kafka]\nbootstrap_servers = {}\n", quote(cfg.bootstrap_servers));
  if (!cfg.group_id.empty())
    out += fmt::format("group_id = {}\n", quote(cfg.group_id));
  out += "\n[kafka.consumer]\n" + props(cfg.pipeline.consumer);
  out += "\n[kafka.producer]\n" + props(cfg.pipeline.producer);
  out += fmt::format(
      "\n[engine]\ndag = {}\nbatch_size = {}\nidle_timeout = {}\n"
      "startup_timeout = {}\nflush_timeout = {}\nprogress_interval = {}\n"
      "commit_interval = {}\n",
      quote(cfg.dag), cfg.pipeline.batch_size, seconds(cfg.pipeline.idle_timeout),
      seconds(cfg.pipeline.startup_timeout), seconds(cfg.pipeline.flush_timeout),
      seconds(cfg.pipeline.progress_interval), seconds(cfg.pipeline.commit_interval));
  auto& p = cfg.pipeline;
  out += fmt::format("\n[errors]\ndead_letter_topic = {}\non_deserialize_error = {}\n"
                     "on_node_error = {}\n",
                     quote(p.dead_letter_topic), quote(to_string(p.deserialize_policy())),
                     quote(to_string(p.on_node_error)));
  out += fmt::format("\n[log]\nlevel = {}\n", quote(cfg.log_level));
  if (!cfg.metrics_listen.empty())
    out += fmt::format("\n[metrics]\nlisten = {}\n", quote(cfg.metrics_listen));
  for (auto& s : cfg.sources)
    out += fmt::format("\n[[sources]]\nname = {}\ntopic = {}\nstart = {}\n",
                       quote(s.name), quote(s.topic), quote(s.start.to_string()));
  for (auto& s : cfg.sinks)
    out += fmt::format("\n[[sinks]]\nname = {}\ntopic = {}\n", quote(s.name),
                       quote(s.topic));
  if (!cfg.embedded_topics.empty()) {
    out += "\n[embedded]\ntopics = [";
    for (size_t i = 0; i < cfg.embedded_topics.size(); ++i)
      out += fmt::format("{}\"{}:{}\"", i ? ", " : "", cfg.embedded_topics[i].name,
                         cfg.embedded_topics[i].partitions);
    out += "]\n";
  }
  return out;
}

} // namespace castor::service
