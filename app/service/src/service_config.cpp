// SPDX-License-Identifier: Apache-2.0
#include "service_config.hpp"

#include "castor/kafka/config.hpp"
#include "castor/logger.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "plugins.hpp"

extern char** environ;

namespace castor::service {

namespace {

// The scalar keys the environment may override, as CASTOR_<TABLE>_<KEY> in
// upper case (e.g. CASTOR_ENGINE_BATCH_SIZE).
struct overridable_key {
  std::string_view table;
  std::string_view key;
  bool integer = false;
};

constexpr overridable_key overridable[] = {
    {"kafka", "bootstrap_servers"},
    {"kafka", "group_id"},
    {"engine", "dag"},
    {"engine", "batch_size", true},
    {"engine", "idle_timeout"},
    {"engine", "startup_timeout"},
    {"engine", "flush_timeout"},
    {"engine", "progress_interval"},
    {"engine", "commit_interval"},
    {"engine", "timer_catch_up", true},
    {"engine", "cycles"},
    {"engine", "stop"},
    {"engine", "replay_speed"},
    {"engine", "assignment"},
    {"engine", "memory_budget"},
    {"engine", "threads"},
    {"errors", "dead_letter_topic"},
    {"errors", "on_deserialize_error"},
    {"errors", "on_node_error"},
    {"log", "level"},
    {"metrics", "listen"},
};

// CASTOR_* variables that are not overrides: read by castor's own scripts.
constexpr std::string_view script_variables[] = {"CASTOR_BUILD_DIR"};

std::string variable_of(std::string_view table, std::string_view key) {
  std::string name = fmt::format("CASTOR_{}_{}", table, key);
  for (auto& c : name)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

// Collects the first error, naming where it is: the file and line, or the
// environment variable the value came from.
class checker {
public:
  explicit checker(std::string path) : path_(std::move(path)) {}

  /// The value of `dotted` ("engine.batch_size") came from `variable`.
  void from_environment(std::string dotted, std::string variable, std::string value) {
    env_[std::move(dotted)] = {std::move(variable), std::move(value)};
  }

  void fail(const toml::source_region& where, const std::string& what) {
    if (err_)
      return;
    if (where.begin.line == 0) // about the file as a whole
      err_ = make_error(ec::invalid_config, fmt::format("{}: {}", path_, what));
    else
      err_ = make_error(ec::invalid_config,
                        fmt::format("{}:{}: {}", path_, where.begin.line, what));
  }

  /// A bad value of key `dotted` at `where`.
  void fail_key(const std::string& dotted, const toml::source_region& where,
                const std::string& what, ec code = ec::invalid_config) {
    if (err_)
      return;
    if (auto i = env_.find(dotted); i != env_.end())
      err_ = make_error(code, fmt::format("environment {}='{}': {}", i->second.first,
                                          i->second.second, what));
    else if (where.begin.line == 0)
      err_ = make_error(code, fmt::format("{}: {}", path_, what));
    else
      err_ = make_error(code, fmt::format("{}:{}: {}", path_, where.begin.line, what));
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
    fail_key(prefix + std::string{key}, node->source(),
             fmt::format("'{}{}' must be a string", prefix, key));
    return std::nullopt;
  }

  std::optional<int64_t> integer(const toml::table& t, std::string_view key,
                                 const std::string& prefix, int64_t min, int64_t max) {
    auto* node = t.get(key);
    if (node == nullptr)
      return std::nullopt;
    auto dotted = prefix + std::string{key};
    auto* i = node->as_integer();
    if (i == nullptr) {
      fail_key(dotted, node->source(), fmt::format("'{}' must be an integer", dotted));
      return std::nullopt;
    }
    if (i->get() < min || i->get() > max) {
      fail_key(
          dotted, node->source(),
          fmt::format("'{}' must be from {} to {}, not {}", dotted, min, max, i->get()));
      return std::nullopt;
    }
    return i->get();
  }

  // "30s", "250ms", "5m" (at most castor::max_duration).
  std::optional<duration> period(const toml::table& t, std::string_view key,
                                 const std::string& prefix, bool allow_zero = false) {
    auto text = string(t, key, prefix);
    if (!text)
      return std::nullopt;
    auto parsed = parse_duration(*text);
    if (!parsed || (!allow_zero && *parsed == duration::zero())) {
      fail_key(prefix + std::string{key}, t.get(key)->source(),
               fmt::format("'{}{}' = '{}' is not a {} duration (<number><ms|s|m|h|d>, "
                           "e.g. 30s, 250ms, 5m; at most {})",
                           prefix, key, *text, allow_zero ? "non-negative" : "positive",
                           format_duration(max_duration)));
      return std::nullopt;
    }
    return parsed;
  }

  // "stop" or "dead_letter".
  std::optional<error_policy> policy(const toml::table& t, std::string_view key,
                                     const std::string& prefix) {
    auto text = string(t, key, prefix);
    if (!text)
      return std::nullopt;
    auto parsed = parse_error_policy(*text);
    if (!parsed) {
      fail_key(prefix + std::string{key}, t.get(key)->source(),
               fmt::format("'{}{}' = '{}' is not one of stop, dead_letter", prefix, key,
                           *text));
      return std::nullopt;
    }
    return *parsed;
  }

  // A topic name (`dotted` names the key in messages).
  std::optional<std::string> topic(const toml::table& t, std::string_view key,
                                   const std::string& prefix) {
    auto name = string(t, key, prefix);
    if (name && !kafka::valid_topic_name(*name)) {
      fail_key(prefix + std::string{key}, t.get(key)->source(),
               fmt::format("'{}{}' = '{}' is not a topic name (1-249 of a-z A-Z 0-9 . "
                           "_ -)",
                           prefix, key, *name));
      return std::nullopt;
    }
    return name;
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
      if (auto e = kafka::check_property(std::string{k.str()}, value, what))
        fail_key({}, v.source(), message_of(e), code_of(e));
      result[std::string{k.str()}] = value;
    }
    return result;
  }

  caf::error error() const { return err_; }

private:
  std::string path_;
  caf::error err_;
  std::map<std::string, std::pair<std::string, std::string>> env_;
};

// "host:port": a host name, an IPv4 address or a bracketed IPv6 address, and
// a port from 0 (any free one) to 65535. Empty when it is fine, else why not.
std::string check_listen_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return "is not host:port";
  auto host = text.substr(0, colon);
  auto port_text = text.substr(colon + 1);
  int port = -1;
  auto [end, err] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (err != std::errc{} || end != port_text.data() + port_text.size() || port < 0 ||
      port > 65535)
    return "is not host:port (the port must be a number from 0 to 65535)";
  if (host.front() == '[') {
    in6_addr v6{};
    if (host.back() != ']' ||
        inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6) != 1)
      return fmt::format("is not host:port ('{}' is not an IPv6 address)", host);
    return {};
  }
  // Only digits and dots: it must be an IPv4 address.
  if (host.find_first_not_of("0123456789.") == std::string::npos) {
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) != 1)
      return fmt::format("is not host:port ('{}' is not an IPv4 address)", host);
    return {};
  }
  bool name_ok =
      host.size() <= 253 && host.front() != '-' && host.front() != '.' &&
      std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
      });
  if (!name_ok)
    return fmt::format("is not host:port ('{}' is not a host name)", host);
  return {};
}

} // namespace

pipeline_config service_config::to_pipeline_config(const std::string& bootstrap) const {
  auto result = pipeline;
  result.consumer["bootstrap.servers"] = bootstrap;
  result.producer["bootstrap.servers"] = bootstrap;
  if (!group_id.empty())
    result.consumer["group.id"] = group_id;
  return result;
}

// A value of [engine.params] as the DAG reads it; nullopt (and a failure
// recorded) for what params cannot hold (tables, dates).
std::optional<param_value> param_of(checker& check, const toml::node& node,
                                    const std::string& path, const std::string& dotted) {
  param_value v;
  v.where = fmt::format("{}:{}", path, node.source().begin.line);
  if (auto* i = node.as_integer())
    v.value = i->get();
  else if (auto* f = node.as_floating_point())
    v.value = f->get();
  else if (auto* b = node.as_boolean())
    v.value = b->get();
  else if (auto* s = node.as_string())
    v.value = s->get();
  else if (auto* a = node.as_array()) {
    param_value::array items;
    for (size_t k = 0; k < a->size(); ++k) {
      auto item = param_of(check, *a->get(k), path, fmt::format("{}[{}]", dotted, k));
      if (!item)
        return std::nullopt;
      items.push_back(std::move(*item));
    }
    v.value = std::move(items);
  } else {
    check.fail(node.source(), fmt::format("'{}' must be an integer, float, boolean, "
                                          "string or an array of them",
                                          dotted));
    return std::nullopt;
  }
  return v;
}

std::optional<double> parse_replay_speed(std::string_view text) {
  if (text == "max")
    return 0.0;
  if (text.size() < 2 || text.back() != 'x')
    return std::nullopt;
  std::string number{text.substr(0, text.size() - 1)};
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(number.c_str(), &end);
  if (errno != 0 || end != number.c_str() + number.size() || !(v > 0) || v > 1e9)
    return std::nullopt;
  return v;
}

std::optional<size_t> parse_memory_budget(std::string_view text) {
  if (text == "off" || text == "0")
    return size_t{0};
  static const std::pair<std::string_view, size_t> units[] = {{"KiB", size_t{1} << 10},
                                                              {"MiB", size_t{1} << 20},
                                                              {"GiB", size_t{1} << 30},
                                                              {"KB", 1000},
                                                              {"MB", 1000'000},
                                                              {"GB", 1000'000'000},
                                                              {"B", 1}};
  size_t unit = 1;
  for (auto& [suffix, factor] : units)
    if (text.size() > suffix.size() && text.ends_with(suffix)) {
      text.remove_suffix(suffix.size());
      unit = factor;
      break;
    }
  size_t n = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (err != std::errc{} || end != text.data() + text.size() || n == 0 ||
      n > (size_t{1} << 50) / unit)
    return std::nullopt;
  // At least 16 MiB: below, librdkafka's floor of 64 KiB a partition and
  // one fetch would exceed it anyway.
  if (n * unit < (size_t{16} << 20))
    return std::nullopt;
  return n * unit;
}

std::optional<size_t> parse_threads(std::string_view text) {
  if (text == "auto")
    return size_t{0};
  size_t n = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (err != std::errc{} || end != text.data() + text.size() || text.empty() || n < 1 ||
      n > 256)
    return std::nullopt;
  return n;
}

std::string threads_to_string(size_t threads) {
  return threads == 0 ? std::string{"auto"} : std::to_string(threads);
}

std::string memory_budget_to_string(size_t bytes) {
  if (bytes == 0)
    return "off";
  if (bytes % (size_t{1} << 30) == 0)
    return fmt::format("{}GiB", bytes >> 30);
  if (bytes % (size_t{1} << 20) == 0)
    return fmt::format("{}MiB", bytes >> 20);
  return std::to_string(bytes);
}

std::string replay_speed_to_string(double speed) {
  return speed <= 0 ? std::string{"max"} : fmt::format("{}x", speed);
}

dag_config dag_config_of(const service_config& cfg) {
  return dag_config{cfg.sources, cfg.sinks, cfg.params};
}

caf::expected<service_config> load(const std::string& path, registry& dags) {
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
  checker check{path};
  // Environment overrides win over the file and are checked like it; errors
  // name the variable.
  std::set<std::string> known_variables{std::begin(script_variables),
                                        std::end(script_variables)};
  for (auto [table, key, integer] : overridable) {
    auto name = variable_of(table, key);
    known_variables.insert(name);
    const char* value = std::getenv(name.c_str());
    if (value == nullptr)
      continue;
    if (!doc.contains(table))
      doc.insert(table, toml::table{});
    auto* t = doc.get(table)->as_table();
    if (t == nullptr)
      continue; // reported below as a wrong type
    auto dotted = fmt::format("{}.{}", table, key);
    check.from_environment(dotted, name, value);
    if (integer) {
      int64_t n = 0;
      auto [end, err] = std::from_chars(value, value + std::strlen(value), n);
      if (err != std::errc{} || end != value + std::strlen(value) || *value == '\0')
        return make_error(
            ec::invalid_config,
            fmt::format("{}='{}' ({}) is not an integer", name, value, dotted));
      t->insert_or_assign(key, n);
    } else {
      t->insert_or_assign(key, std::string{value});
    }
  }
  // A misspelled override would be ignored without a word: warn.
  for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
    std::string_view entry{*env};
    if (!entry.starts_with("CASTOR_"))
      continue;
    auto name = std::string{entry.substr(0, entry.find('='))};
    if (!known_variables.contains(name))
      logger()->warn("castor: ignores the environment variable {}: not a configuration "
                     "override (see docs/configuration.md)",
                     name);
  }

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
    if (auto* producer = kafka->get_as<toml::table>("producer"))
      if (auto* id = producer->get("transactional.id"))
        check.fail(id->source(),
                   "'kafka.producer.\"transactional.id\"': " + transactions_message());
  }
  if (cfg.bootstrap_servers.empty())
    check.fail(top, "'kafka.bootstrap_servers' is required (\"embedded\" or "
                    "\"host:port,...\")");

  // [engine]
  if (auto* engine = table_of("engine")) {
    check.only(*engine, "engine.",
               {"dag", "batch_size", "idle_timeout", "startup_timeout", "flush_timeout",
                "progress_interval", "commit_interval", "timer_catch_up", "cycles",
                "plugins", "params", "stop", "replay_speed", "assignment",
                "memory_budget", "threads"});
    if (auto* node = engine->get("threads")) {
      // An integer, or a string: "auto", or digits (CASTOR_ENGINE_THREADS).
      std::optional<size_t> n;
      std::string shown;
      if (auto* i = node->as_integer()) {
        shown = std::to_string(i->get());
        n = parse_threads(shown);
      } else if (auto* text = node->as_string()) {
        shown = text->get();
        n = parse_threads(shown);
      }
      if (n)
        cfg.threads = *n;
      else if (shown.empty())
        check.fail_key("engine.threads", node->source(),
                       "'engine.threads' must be \"auto\" or an integer from 1 to 256");
      else
        check.fail_key("engine.threads", node->source(),
                       fmt::format("'engine.threads' = '{}' is not \"auto\" or a number "
                                   "of scheduler threads from 1 to 256",
                                   shown));
    }
    if (auto v = check.string(*engine, "memory_budget", "engine.")) {
      if (auto budget = parse_memory_budget(*v))
        cfg.pipeline.memory_budget = *budget;
      else
        check.fail_key("engine.memory_budget", engine->get("memory_budget")->source(),
                       fmt::format("'engine.memory_budget' = '{}' is not a size of at "
                                   "least 16MiB (\"256MiB\", \"1GiB\", \"512MB\", bytes) "
                                   "or \"off\"",
                                   *v));
    }
    if (auto v = check.string(*engine, "assignment", "engine.")) {
      auto* node = engine->get("assignment");
      if (*v == "group")
        cfg.pipeline.assignment = assignment_mode::group;
      else if (*v != "manual")
        check.fail_key("engine.assignment", node->source(),
                       fmt::format("'engine.assignment' = '{}' is not manual (read every "
                                   "partition) or group (share them with the instances "
                                   "of kafka.group_id)",
                                   *v));
      else
        cfg.pipeline.assignment = assignment_mode::manual;
      if (cfg.pipeline.assignment == assignment_mode::group && cfg.group_id.empty() &&
          !cfg.pipeline.consumer.contains("group.id"))
        check.fail_key("engine.assignment", node->source(),
                       "'engine.assignment' = 'group' needs a consumer group: set "
                       "'kafka.group_id' (the instances that share the partitions "
                       "share it)");
    }
    if (auto v = check.string(*engine, "stop", "engine.")) {
      if (auto policy = stop_policy::parse(*v))
        cfg.pipeline.stop = *policy;
      else
        check.fail_key("engine.stop", engine->get("stop")->source(),
                       fmt::format("'engine.stop' = '{}' is not never, end or a time "
                                   "(absolute:<ISO 8601>, start_of_day:HH:MM@Zone, "
                                   "relative:[-|+]<duration>): {}",
                                   *v, message_of(policy.error())));
    }
    if (auto v = check.string(*engine, "replay_speed", "engine.")) {
      if (auto speed = parse_replay_speed(*v))
        cfg.pipeline.replay_speed = *speed;
      else
        check.fail_key("engine.replay_speed", engine->get("replay_speed")->source(),
                       fmt::format("'engine.replay_speed' = '{}' is not \"max\" or "
                                   "\"<N>x\" with N a positive number (e.g. 1x, 10x, "
                                   "0.25x)",
                                   *v));
    }
    if (cfg.pipeline.assignment == assignment_mode::group && cfg.pipeline.stop.bounded())
      check.fail_key("engine.assignment", engine->get("assignment")->source(),
                     "'engine.assignment' = 'group' with 'engine.stop' = '" +
                         cfg.pipeline.stop.to_string() +
                         "': a bounded replay reads every partition itself (use manual)");
    if (auto v = check.string(*engine, "dag", "engine."))
      cfg.dag = *v;
    // Plugins first: the DAG may be one of theirs. A relative path is
    // relative to the configuration file's folder.
    if (auto* node = engine->get("plugins")) {
      auto* list = node->as_array();
      if (list == nullptr || !list->is_homogeneous<std::string>()) {
        check.fail(node->source(),
                   "'engine.plugins' must be an array of paths (strings)");
      } else {
        auto base = std::filesystem::path{path}.parent_path();
        for (auto& item : *list) {
          std::filesystem::path file{item.as_string()->get()};
          if (file.is_relative() && !base.empty())
            file = base / file;
          if (check.error())
            break;
          if (auto err = load_plugin(file.string(), dags)) {
            check.fail(item.source(),
                       fmt::format("'engine.plugins': {}", message_of(err)));
            break;
          }
          cfg.plugins.push_back(file.string());
        }
      }
    }
    if (auto* node = engine->get("params")) {
      if (auto* table = node->as_table()) {
        for (auto& [key, value] : *table)
          if (auto v = param_of(check, value, path,
                                fmt::format("engine.params.{}", key.str())))
            cfg.params.set(std::string{key.str()}, std::move(*v));
      } else {
        check.fail(node->source(), "'engine.params' must be a table ([engine.params])");
      }
    }
    if (auto v = check.integer(*engine, "batch_size", "engine.", 1,
                               static_cast<int64_t>(defaults::max_batch_size)))
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
    if (auto v = check.integer(*engine, "timer_catch_up", "engine.", 0, 1'000'000'000))
      cfg.pipeline.timer_catch_up = static_cast<uint64_t>(*v);
    if (auto v = check.string(*engine, "cycles", "engine.")) {
      if (auto policy = cycle_policy::parse(*v))
        cfg.pipeline.cycles = *policy;
      else
        check.fail_key("engine.cycles", engine->get("cycles")->source(),
                       fmt::format("'engine.cycles' = '{}' is not timestamp, batch or a "
                                   "positive duration (e.g. 100ms, 1s)",
                                   *v));
    }
    if (!cfg.dag.empty() && !check.error() && !dags.contains(cfg.dag)) {
      std::string names;
      for (auto& name : dags.names())
        names += (names.empty() ? "" : ", ") + name;
      check.fail_key("engine.dag", engine->get("dag")->source(),
                     fmt::format("'engine.dag' = '{}' is not a DAG castor knows ({}; a "
                                 "plugin's DAGs come with engine.plugins)",
                                 cfg.dag, names));
    }
  }
  if (cfg.dag.empty())
    check.fail(top, "'engine.dag' is required");

  // [errors]
  const toml::node* dead_letter_node = nullptr;
  if (auto* errors = table_of("errors")) {
    check.only(*errors, "errors.",
               {"dead_letter_topic", "on_deserialize_error", "on_node_error"});
    if (auto v = check.topic(*errors, "dead_letter_topic", "errors.")) {
      cfg.pipeline.dead_letter_topic = *v;
      dead_letter_node = errors->get("dead_letter_topic");
    }
    if (auto v = check.policy(*errors, "on_deserialize_error", "errors."))
      cfg.pipeline.on_deserialize_error = *v;
    if (auto v = check.policy(*errors, "on_node_error", "errors."))
      cfg.pipeline.on_node_error = *v;
    if (cfg.pipeline.dead_letter_topic.empty())
      for (auto key : {"on_deserialize_error", "on_node_error"})
        if (auto* node = errors->get(key);
            node != nullptr && node->value_or(std::string_view{}) == "dead_letter")
          check.fail_key(fmt::format("errors.{}", key), node->source(),
                         fmt::format("'errors.{}' = 'dead_letter' needs "
                                     "'errors.dead_letter_topic'",
                                     key));
  }

  // [metrics]
  if (auto* metrics = table_of("metrics")) {
    check.only(*metrics, "metrics.", {"listen"});
    if (auto v = check.string(*metrics, "listen", "metrics.")) {
      if (auto why = check_listen_address(*v); !why.empty())
        check.fail_key("metrics.listen", metrics->get("listen")->source(),
                       fmt::format("'metrics.listen' = '{}' {}", *v, why));
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
        check.fail_key(
            "log.level", log->get("level")->source(),
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
  // Topics read, with where they are named.
  std::map<std::string, const toml::table*> source_topics;
  if (auto* sources = array_of("sources")) {
    std::set<std::string> names;
    for (auto& node : *sources) {
      auto& t = *node.as_table();
      check.only(t, "sources.", {"name", "topic", "start"});
      dags::source_spec spec;
      spec.name = check.string(t, "name", "sources.").value_or("");
      spec.topic = check.topic(t, "topic", "sources.").value_or("");
      if (spec.name.empty() || spec.topic.empty())
        check.fail(t.source(), "each [[sources]] needs a name and a topic");
      else if (!names.insert(spec.name).second)
        check.fail(t.get("name")->source(),
                   fmt::format("source name '{}' is used twice", spec.name));
      else if (!source_topics.emplace(spec.topic, &t).second)
        check.fail(t.get("topic")->source(),
                   fmt::format("topic '{}' feeds two sources", spec.topic));
      auto start = check.string(t, "start", "sources.").value_or("latest");
      if (auto policy = start_policy::parse(start))
        spec.start = *policy;
      else
        check.fail(t.get("start")->source(), message_of(policy.error()));
      cfg.sources.push_back(std::move(spec));
    }
  }
  if (cfg.sources.empty())
    check.fail(top, "at least one [[sources]] is required");
  // A record written to a topic castor reads comes back as input: an endless
  // feedback loop.
  auto feedback = [](const std::string& topic, std::string_view what) {
    return feedback_message(what, topic);
  };
  if (auto* sinks = array_of("sinks")) {
    std::set<std::string> names;
    for (auto& node : *sinks) {
      auto& t = *node.as_table();
      check.only(t, "sinks.", {"name", "topic"});
      dags::sink_spec spec;
      spec.name = check.string(t, "name", "sinks.").value_or("");
      spec.topic = check.topic(t, "topic", "sinks.").value_or("");
      if (spec.name.empty() || spec.topic.empty())
        check.fail(t.source(), "each [[sinks]] needs a name and a topic");
      else if (!names.insert(spec.name).second)
        check.fail(t.get("name")->source(),
                   fmt::format("sink name '{}' is used twice", spec.name));
      else if (source_topics.contains(spec.topic))
        check.fail(t.get("topic")->source(), feedback(spec.topic, "sink topic"));
      cfg.sinks.push_back(std::move(spec));
    }
  }
  if (dead_letter_node != nullptr &&
      source_topics.contains(cfg.pipeline.dead_letter_topic))
    check.fail_key("errors.dead_letter_topic", dead_letter_node->source(),
                   feedback(cfg.pipeline.dead_letter_topic, "dead_letter_topic") +
                       " (dead letters of dead letters)");

  // [embedded]
  if (auto* embedded = table_of("embedded")) {
    check.only(*embedded, "embedded.", {"topics"});
    if (auto* node = embedded->get("topics")) {
      auto* list = node->as_array();
      if (list == nullptr) {
        check.fail(node->source(),
                   "'embedded.topics' must be an array of \"name:partitions\"");
      } else {
        std::set<std::string> names;
        for (auto& item : *list) {
          auto* s = item.as_string();
          auto spec = kafka::parse_topic_spec(s != nullptr ? s->get() : std::string{});
          if (!spec)
            check.fail(item.source(), fmt::format("'embedded.topics' entry {}",
                                                  message_of(spec.error())));
          else if (!names.insert(spec->name).second)
            check.fail(
                item.source(),
                fmt::format("'embedded.topics' lists topic '{}' twice", spec->name));
          else
            cfg.embedded_topics.push_back(std::move(*spec));
        }
      }
    }
  }
  if (auto err = check.error())
    return err;
  // The DAG must accept the sources and sinks as configured.
  auto def = dags.make(cfg.dag, dag_config_of(cfg));
  if (!def)
    return make_error(ec::invalid_config,
                      fmt::format("{}: {}", path, message_of(def.error())));
  if (auto err = (*def)->validate())
    return make_error(ec::invalid_config, fmt::format("{}: {}", path, message_of(err)));
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
  auto period = [&](duration d) { return quote(format_duration(d)); };
  std::string out;
  out += fmt::format("[kafka]\nbootstrap_servers = {}\n", quote(cfg.bootstrap_servers));
  if (!cfg.group_id.empty())
    out += fmt::format("group_id = {}\n", quote(cfg.group_id));
  out += "\n[kafka.consumer]\n" + props(cfg.pipeline.consumer);
  out += "\n[kafka.producer]\n" + props(cfg.pipeline.producer);
  out += fmt::format(
      "\n[engine]\ndag = {}\nbatch_size = {}\nidle_timeout = {}\n"
      "startup_timeout = {}\nflush_timeout = {}\nprogress_interval = {}\n"
      "commit_interval = {}\ntimer_catch_up = {}\ncycles = {}\nstop = {}\n"
      "replay_speed = {}\nassignment = {}\nmemory_budget = {}\nthreads = {}\n",
      quote(cfg.dag), cfg.pipeline.batch_size, period(cfg.pipeline.idle_timeout),
      period(cfg.pipeline.startup_timeout), period(cfg.pipeline.flush_timeout),
      period(cfg.pipeline.progress_interval), period(cfg.pipeline.commit_interval),
      cfg.pipeline.timer_catch_up, quote(cfg.pipeline.cycles.to_string()),
      quote(cfg.pipeline.stop.to_string()),
      quote(replay_speed_to_string(cfg.pipeline.replay_speed)),
      quote(to_string(cfg.pipeline.assignment)),
      quote(memory_budget_to_string(cfg.pipeline.memory_budget)),
      cfg.threads == 0 ? quote("auto") : threads_to_string(cfg.threads));
  if (!cfg.plugins.empty()) {
    std::string list;
    for (auto& plugin : cfg.plugins)
      list += (list.empty() ? "" : ", ") + quote(plugin);
    out += fmt::format("plugins = [{}]\n", list);
  }
  if (!cfg.params.empty()) {
    out += "\n[engine.params]\n";
    for (auto& [key, value] : cfg.params.entries())
      out += fmt::format("{} = {}\n", key,
                         kafka::is_secret(key) ? quote("***") : value.to_string());
  }
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
