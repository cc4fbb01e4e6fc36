// SPDX-License-Identifier: Apache-2.0
#include "castor/kafka.hpp"

#include "castor/logger.hpp"

#include <fmt/format.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace castor::kafka {

caf::error to_error(rd_kafka_resp_err_t err, const std::string& context) {
  auto text =
      fmt::format("{}: {} ({})", context, rd_kafka_err2str(err), rd_kafka_err2name(err));
  switch (err) {
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    return make_error(ec::unknown_topic, std::move(text));
  case RD_KAFKA_RESP_ERR__TIMED_OUT:
  case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    return make_error(ec::broker_timeout, std::move(text));
  case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
  case RD_KAFKA_RESP_ERR__TRANSPORT:
  case RD_KAFKA_RESP_ERR__RESOLVE:
    return make_error(ec::broker_unreachable, std::move(text));
  case RD_KAFKA_RESP_ERR__FATAL:
    return make_error(ec::fatal_kafka_error, std::move(text));
  default:
    return make_error(ec::kafka_error, std::move(text));
  }
}

bool is_secret(const std::string& key) {
  for (auto word : {"password", "secret", "key", "token", "credentials"})
    if (key.find(word) != std::string::npos)
      return true;
  return false;
}

bool valid_topic_name(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..")
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
           c == '-';
  });
}

caf::expected<topic_spec> parse_topic_spec(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return make_error(ec::invalid_config,
                      fmt::format("'{}' is not NAME:PARTITIONS: {}", text, why));
  };
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return bad("no ':PARTITIONS'");
  auto name = text.substr(0, colon);
  auto count = text.substr(colon + 1);
  if (!valid_topic_name(name))
    return bad(
        fmt::format("'{}' is not a topic name (1-249 of a-z A-Z 0-9 . _ -)", name));
  int partitions = 0;
  auto [end, err] =
      std::from_chars(count.data(), count.data() + count.size(), partitions);
  if (count.empty() || err != std::errc{} || end != count.data() + count.size() ||
      partitions < 1 || partitions > max_topic_partitions)
    return bad(fmt::format("the partition count must be a number from 1 to {}",
                           max_topic_partitions));
  return topic_spec{std::string{name}, partitions};
}

caf::error set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
               const std::string& what) {
  std::array<char, 512> reason{};
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), reason.data(), reason.size()) !=
      RD_KAFKA_CONF_OK) {
    return make_error(ec::kafka_config,
                      fmt::format("{} property '{}' = '{}': {}", what, key,
                                  is_secret(key) ? "***" : value, reason.data()));
  }
  return {};
}

namespace {

// librdkafka's log lines go to castor's logger (from librdkafka's threads;
// spdlog's loggers are thread-safe). Its errors are warnings here: castor
// itself decides what is fatal and says so.
void log_line(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  auto lvl = level <= 4   ? spdlog::level::warn
             : level <= 6 ? spdlog::level::info
                          : spdlog::level::debug;
  logger()->log(lvl, "kafka: {}: {}: {}",
                rk != nullptr ? rd_kafka_name(rk) : "librdkafka", facility, text);
}

} // namespace

caf::expected<conf_ptr> make_conf(const properties& props, const std::string& what) {
  conf_ptr conf{rd_kafka_conf_new()};
  rd_kafka_conf_set_log_cb(conf.get(), &log_line);
  for (auto& [key, value] : props)
    if (auto err = set(conf.get(), key, value, what))
      return err;
  return conf;
}

caf::expected<handle_ptr> make_client(rd_kafka_type_t type, conf_ptr conf) {
  std::array<char, 512> reason{};
  // rd_kafka_new takes over the configuration only on success.
  auto* rk = rd_kafka_new(type, conf.get(), reason.data(), reason.size());
  if (rk == nullptr)
    return make_error(ec::kafka_config,
                      fmt::format("cannot create the Kafka {}: {}",
                                  type == RD_KAFKA_CONSUMER ? "consumer" : "producer",
                                  reason.data()));
  (void)conf.release();
  return handle_ptr{rk};
}

namespace {

// Bytes of a zig-zag varint (as librdkafka encodes lengths in v2 records).
size_t varint_size(int64_t n) {
  auto z = static_cast<uint64_t>((n << 1) ^ (n >> 63));
  size_t bytes = 1;
  while (z >= 0x80) {
    z >>= 7;
    ++bytes;
  }
  return bytes;
}

} // namespace

size_t record_wire_size(const producer_record& r) {
  // librdkafka's RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: length, attributes,
  // timestamp and offset deltas, key and value lengths, header count.
  constexpr size_t overhead = 5 + 1 + 10 + 5 + 5 + 5 + 5;
  size_t size = overhead + (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  for (auto& h : r.headers) {
    auto value = h.value ? h.value->size() : 0;
    size += h.name.size() + value + varint_size(static_cast<int64_t>(h.name.size())) +
            varint_size(static_cast<int64_t>(value));
  }
  return size;
}

size_t max_message_bytes(const properties& props) {
  if (auto i = props.find("message.max.bytes"); i != props.end()) {
    size_t value = 0;
    auto [end, err] =
        std::from_chars(i->second.data(), i->second.data() + i->second.size(), value);
    if (err == std::errc{} && end == i->second.data() + i->second.size())
      return value;
  }
  return 1'000'000;
}

bool destroy_within(handle_ptr client, std::chrono::milliseconds timeout, int flags) {
  if (!client)
    return true;
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  std::thread destroyer{[rk = client.release(), flags, done] {
    rd_kafka_destroy_flags(rk, flags);
    done->set_value();
  }};
  if (finished.wait_for(timeout) == std::future_status::ready) {
    destroyer.join();
    return true;
  }
  destroyer.detach();
  return false;
}

namespace {

// Calls `query(ms)` in slices of at most 200 ms until it answers something
// other than "no answer yet", `timeout` passes, or `cancel` is set (then it
// gives RD_KAFKA_RESP_ERR__DESTROY): a stop during start-up is seen within
// a slice, not after the whole timeout.
template <class Query>
rd_kafka_resp_err_t in_slices(std::chrono::milliseconds timeout,
                              const cancel_flag& cancel, Query query) {
  using namespace std::chrono;
  auto deadline = steady_clock::now() + timeout;
  while (true) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0)
      return RD_KAFKA_RESP_ERR__TIMED_OUT;
    auto err = query(static_cast<int>(std::min(left, milliseconds{200}).count()));
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT && err != RD_KAFKA_RESP_ERR__TRANSPORT)
      return err;
    if (cancel && cancel->load())
      return RD_KAFKA_RESP_ERR__DESTROY;
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
      std::this_thread::sleep_for(std::min(left, milliseconds{50}));
  }
}

caf::error cancelled(const std::string& what) {
  return make_error(ec::stopped, fmt::format("the pipeline stopped while {}", what));
}

} // namespace

caf::expected<int32_t> partition_count(rd_kafka_t* rk, const std::string& topic,
                                       std::chrono::milliseconds timeout,
                                       const cancel_flag& cancel) {
  topic_ptr rkt{rd_kafka_topic_new(rk, topic.c_str(), nullptr)};
  if (!rkt)
    return to_error(rd_kafka_last_error(), fmt::format("topic '{}'", topic));
  const rd_kafka_metadata_t* md = nullptr;
  auto err = in_slices(timeout, cancel, [&](int ms) {
    return rd_kafka_metadata(rk, 0, rkt.get(), &md, ms);
  });
  if (err == RD_KAFKA_RESP_ERR__DESTROY)
    return cancelled(fmt::format("looking up topic '{}'", topic));
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT)
    return make_error(ec::broker_unreachable,
                      fmt::format("no answer from the Kafka cluster within {} ms while "
                                  "looking up topic '{}' (check bootstrap.servers)",
                                  timeout.count(), topic));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_error(err, fmt::format("metadata of topic '{}'", topic));
  std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> guard{
      md, &rd_kafka_metadata_destroy};
  if (md->topic_cnt != 1)
    return make_error(ec::unknown_topic, fmt::format("topic '{}' is not in the cluster's "
                                                     "metadata",
                                                     topic));
  auto& t = md->topics[0];
  if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    return make_error(ec::unknown_topic, fmt::format("topic '{}' does not exist", topic));
  if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_error(t.err, fmt::format("metadata of topic '{}'", topic));
  if (t.partition_cnt <= 0)
    return make_error(ec::no_partitions,
                      fmt::format("topic '{}' has no partitions", topic));
  return t.partition_cnt;
}

// -- broker_queries -------------------------------------------------------------

broker_queries::broker_queries(rd_kafka_t* rk, properties props,
                               std::chrono::milliseconds timeout, cancel_flag cancel)
    : rk_(rk), props_(std::move(props)), timeout_(timeout), cancel_(std::move(cancel)) {}

broker_queries::~broker_queries() = default;

caf::expected<std::pair<int64_t, int64_t>>
broker_queries::watermarks(const topic_partition& tp) {
  int64_t low = 0;
  int64_t high = 0;
  auto err = in_slices(timeout_, cancel_, [&](int ms) {
    return rd_kafka_query_watermark_offsets(rk_, tp.topic.c_str(), tp.partition, &low,
                                            &high, ms);
  });
  if (err == RD_KAFKA_RESP_ERR__DESTROY)
    return cancelled(fmt::format("asking for the offsets of {}", to_string(tp)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_error(err, fmt::format("watermark offsets of {}", to_string(tp)));
  return std::pair{low, high};
}

caf::expected<int64_t> broker_queries::offset_for_time(const topic_partition& tp,
                                                       timestamp t) {
  partition_list_ptr list{rd_kafka_topic_partition_list_new(1)};
  auto* elem =
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  elem->offset = to_millis(t);
  auto err =
      rd_kafka_offsets_for_times(rk_, list.get(), static_cast<int>(timeout_.count()));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    err = elem->err;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_error(err,
                    fmt::format("offset for time {} in {}", to_string(t), to_string(tp)));
  return elem->offset < 0 ? int64_t{-1} : elem->offset;
}

caf::expected<std::optional<int64_t>>
broker_queries::committed(const topic_partition& tp) {
  if (!props_.contains("group.id"))
    return make_error(
        ec::invalid_config,
        fmt::format("start policy 'committed' for {} needs a consumer group "
                    "(group.id)",
                    to_string(tp)));
  partition_list_ptr list{rd_kafka_topic_partition_list_new(1)};
  auto* elem =
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  auto err = rd_kafka_committed(rk_, list.get(), static_cast<int>(timeout_.count()));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    err = elem->err;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_error(err, fmt::format("committed offset of {}", to_string(tp)));
  if (elem->offset < 0)
    return std::optional<int64_t>{};
  return std::optional<int64_t>{elem->offset};
}

caf::expected<std::optional<timestamp>>
broker_queries::timestamp_at(const topic_partition& tp, int64_t offset) {
  if (!probe_) {
    auto props = props_;
    props.erase("group.id");
    props["enable.auto.commit"] = "false";
    auto conf = make_conf(props, "consumer");
    if (!conf)
      return conf.error();
    auto client = make_client(RD_KAFKA_CONSUMER, std::move(*conf));
    if (!client)
      return client.error();
    probe_ = std::move(*client);
  }
  // The legacy per-partition API reads one message without a group.
  topic_ptr rkt{rd_kafka_topic_new(probe_.get(), tp.topic.c_str(), nullptr)};
  if (rd_kafka_consume_start(rkt.get(), tp.partition, offset) == -1)
    return to_error(rd_kafka_last_error(),
                    fmt::format("reading {} at offset {}", to_string(tp), offset));
  std::optional<timestamp> result;
  caf::error failure;
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      failure = make_error(ec::broker_timeout,
                           fmt::format("no message from {} at offset {} within {} ms",
                                       to_string(tp), offset, timeout_.count()));
      break;
    }
    message_ptr msg{
        rd_kafka_consume(rkt.get(), tp.partition, static_cast<int>(left.count()))};
    if (!msg)
      continue;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
      break; // nothing at or after offset
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failure = to_error(msg->err,
                         fmt::format("reading {} at offset {}", to_string(tp), offset));
      break;
    }
    rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    auto ms = rd_kafka_message_timestamp(msg.get(), &type);
    if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ms != -1)
      result = from_millis(ms);
    break;
  }
  rd_kafka_consume_stop(rkt.get(), tp.partition);
  if (failure)
    return failure;
  return result;
}

// -- mock_cluster ---------------------------------------------------------------

caf::expected<std::unique_ptr<mock_cluster>> mock_cluster::start(int brokers) {
  auto conf = make_conf({{"log_level", "3"}}, "mock cluster owner");
  if (!conf)
    return conf.error();
  auto owner = make_client(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!owner)
    return owner.error();
  auto* cluster = rd_kafka_mock_cluster_new(owner->get(), brokers);
  if (cluster == nullptr)
    return make_error(ec::kafka_error, "cannot start librdkafka's mock cluster");
  // Metadata v4 lets clients ask for no auto-creation (consumers do by
  // default), as a real broker does; the mock's default version cannot.
  rd_kafka_mock_set_apiversion(cluster, 3 /* Metadata */, 0, 4);
  std::unique_ptr<mock_cluster> result{new mock_cluster};
  result->owner_ = std::move(*owner);
  result->cluster_ = cluster;
  result->bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster);
  return result;
}

struct mock_cluster::watcher {
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  std::thread thread;

  ~watcher() {
    {
      std::lock_guard guard{mutex};
      stop = true;
    }
    wake.notify_all();
    if (thread.joinable())
      thread.join();
  }
};

void mock_cluster::watch_retention(std::vector<topic_spec> topics) {
  if (watcher_ || topics.empty())
    return;
  auto conf = make_conf({{"bootstrap.servers", bootstrap_}, {"log_level", "3"}},
                        "retention watcher");
  if (!conf)
    return;
  auto client = make_client(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!client)
    return;
  watcher_ = std::make_unique<watcher>();
  auto* w = watcher_.get();
  w->thread = std::thread{[w, rk = std::move(*client), topics = std::move(topics)] {
    std::map<std::pair<std::string, int>, int64_t> low;
    std::unique_lock lock{w->mutex};
    while (!w->wake.wait_for(lock, std::chrono::seconds{2}, [w] { return w->stop; })) {
      lock.unlock();
      for (auto& t : topics)
        for (int p = 0; p < t.partitions; ++p) {
          int64_t lo = 0;
          int64_t hi = 0;
          if (rd_kafka_query_watermark_offsets(rk.get(), t.name.c_str(), p, &lo, &hi,
                                               1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
          auto& seen = low[{t.name, p}];
          if (lo > seen)
            logger()->warn("broker: {}[{}] dropped offsets [{}, {}): the development "
                           "broker keeps at most 5 MB per partition (its data now "
                           "starts at {}, ends at {})",
                           t.name, p, seen, lo, lo, hi);
          seen = std::max(seen, lo);
        }
      lock.lock();
    }
  }};
}

mock_cluster::~mock_cluster() {
  watcher_.reset();
  // The cluster first: its owning client must outlive it.
  if (cluster_ != nullptr)
    rd_kafka_mock_cluster_destroy(cluster_);
}

caf::error mock_cluster::create_topic(const std::string& name, int partitions) {
  auto err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_error(
        err, fmt::format("creating topic '{}' with {} partitions", name, partitions));
  return {};
}

} // namespace castor::kafka
