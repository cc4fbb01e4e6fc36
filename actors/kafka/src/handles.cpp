// SPDX-License-Identifier: Apache-2.0
#include "castor/kafka/handles.hpp"

#include "castor/logger.hpp"

#include <fmt/format.h>

#include <array>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace castor::kafka {

failure to_failure(rd_kafka_resp_err_t err, const std::string& context) {
  auto text =
      fmt::format("{}: {} ({})", context, rd_kafka_err2str(err), rd_kafka_err2name(err));
  switch (err) {
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    return failure(ec::unknown_topic, std::move(text));
  case RD_KAFKA_RESP_ERR__TIMED_OUT:
  case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    return failure(ec::broker_timeout, std::move(text));
  case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
  case RD_KAFKA_RESP_ERR__TRANSPORT:
  case RD_KAFKA_RESP_ERR__RESOLVE:
    return failure(ec::broker_unreachable, std::move(text));
  case RD_KAFKA_RESP_ERR__FATAL:
    return failure(ec::fatal_kafka_error, std::move(text));
  default:
    return failure(ec::kafka_error, std::move(text));
  }
}

failure set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
            const std::string& what) {
  std::array<char, 512> reason{};
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), reason.data(), reason.size()) !=
      RD_KAFKA_CONF_OK) {
    return failure(ec::kafka_config,
                   fmt::format("{} property '{}' = '{}': {}", what, key,
                               is_secret(key) ? "***" : value, reason.data()));
  }
  return {};
}

const char* librdkafka_version() noexcept {
  return rd_kafka_version_str();
}

failure check_property(const std::string& key, const std::string& value,
                       const std::string& what) {
  conf_ptr probe{rd_kafka_conf_new()};
  return set(probe.get(), key, value, what);
}

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

result<conf_ptr> make_conf(const properties& props, const std::string& what) {
  conf_ptr conf{rd_kafka_conf_new()};
  rd_kafka_conf_set_log_cb(conf.get(), &log_line);
  for (auto& [key, value] : props)
    if (auto err = set(conf.get(), key, value, what))
      return err;
  return conf;
}

result<handle_ptr> make_client(rd_kafka_type_t type, conf_ptr conf) {
  std::array<char, 512> reason{};
  // rd_kafka_new takes over the configuration only on success.
  auto* rk = rd_kafka_new(type, conf.get(), reason.data(), reason.size());
  if (rk == nullptr)
    return failure(ec::kafka_config,
                   fmt::format("cannot create the Kafka {}: {}",
                               type == RD_KAFKA_CONSUMER ? "consumer" : "producer",
                               reason.data()));
  (void)conf.release();
  return handle_ptr{rk};
}

namespace {

// Clients still closing on a thread of their own.
std::mutex closing_mutex;
std::condition_variable closing_done;
size_t closing = 0;

} // namespace

bool finish_closing(std::chrono::milliseconds timeout) {
  std::unique_lock lock{closing_mutex};
  return closing_done.wait_for(lock, timeout, [] { return closing == 0; });
}

void begin_closing() {
  std::lock_guard guard{closing_mutex};
  ++closing;
}

void end_closing() {
  std::lock_guard guard{closing_mutex};
  --closing;
  closing_done.notify_all();
}

bool destroy_within(handle_ptr client, std::chrono::milliseconds timeout, int flags) {
  if (!client)
    return true;
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  {
    std::lock_guard guard{closing_mutex};
    ++closing;
  }
  std::thread destroyer{[rk = client.release(), flags, done] {
    rd_kafka_destroy_flags(rk, flags);
    done->set_value();
    std::lock_guard guard{closing_mutex};
    --closing;
    closing_done.notify_all();
  }};
  if (finished.wait_for(timeout) == std::future_status::ready) {
    destroyer.join();
    return true;
  }
  destroyer.detach();
  return false;
}

namespace detail {

// A stop during start-up is seen within a slice, not after the whole
// timeout.
rd_kafka_resp_err_t in_slices(std::chrono::milliseconds timeout,
                              const cancel_flag& cancel,
                              const std::function<rd_kafka_resp_err_t(int)>& query) {
  using namespace std::chrono;
  auto deadline = steady_clock::now() + timeout;
  // Each call is a new request (librdkafka drops the answer of one that
  // timed out), so the slices grow: a broker that takes a while to answer
  // still gets long enough, and a stop is seen within the current slice.
  auto slice = milliseconds{200};
  while (true) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0)
      return RD_KAFKA_RESP_ERR__TIMED_OUT;
    auto wait = std::min(left, slice);
    auto err = query(static_cast<int>(wait.count()));
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT && err != RD_KAFKA_RESP_ERR__TRANSPORT)
      return err;
    if (cancel && cancel->load())
      return RD_KAFKA_RESP_ERR__DESTROY;
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
      std::this_thread::sleep_for(std::min(left, milliseconds{50}));
    slice = std::min(slice * 2, milliseconds{3200});
  }
}

failure cancelled(const std::string& what) {
  return failure(ec::stopped, fmt::format("the pipeline stopped while {}", what));
}

} // namespace detail

result<std::vector<int32_t>> partition_leaders(rd_kafka_t* rk, const std::string& topic,
                                               std::chrono::milliseconds timeout,
                                               const cancel_flag& cancel) {
  topic_ptr rkt{rd_kafka_topic_new(rk, topic.c_str(), nullptr)};
  if (!rkt)
    return to_failure(rd_kafka_last_error(), fmt::format("topic '{}'", topic));
  const rd_kafka_metadata_t* md = nullptr;
  auto err = detail::in_slices(timeout, cancel, [&](int ms) {
    return rd_kafka_metadata(rk, 0, rkt.get(), &md, ms);
  });
  if (err == RD_KAFKA_RESP_ERR__DESTROY)
    return detail::cancelled(fmt::format("looking up topic '{}'", topic));
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT)
    return failure(ec::broker_unreachable,
                   fmt::format("no answer from the Kafka cluster within {} ms while "
                               "looking up topic '{}' (check bootstrap.servers)",
                               timeout.count(), topic));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_failure(err, fmt::format("metadata of topic '{}'", topic));
  std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> guard{
      md, &rd_kafka_metadata_destroy};
  if (md->topic_cnt != 1)
    return failure(ec::unknown_topic, fmt::format("topic '{}' is not in the cluster's "
                                                  "metadata",
                                                  topic));
  auto& t = md->topics[0];
  if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    return failure(ec::unknown_topic, fmt::format("topic '{}' does not exist", topic));
  if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_failure(t.err, fmt::format("metadata of topic '{}'", topic));
  if (t.partition_cnt <= 0)
    return failure(ec::no_partitions, fmt::format("topic '{}' has no partitions", topic));
  std::vector<int32_t> leaders(static_cast<size_t>(t.partition_cnt), -1);
  for (int i = 0; i < t.partition_cnt; ++i) {
    auto& p = t.partitions[i];
    if (p.id >= 0 && p.id < t.partition_cnt)
      leaders[static_cast<size_t>(p.id)] = p.leader;
  }
  return leaders;
}

result<int32_t> partition_count(rd_kafka_t* rk, const std::string& topic,
                                std::chrono::milliseconds timeout,
                                const cancel_flag& cancel) {
  auto leaders = partition_leaders(rk, topic, timeout, cancel);
  if (!leaders)
    return leaders.error();
  return static_cast<int32_t>(leaders->size());
}

} // namespace castor::kafka
