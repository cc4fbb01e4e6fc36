// SPDX-License-Identifier: Apache-2.0
#include "castor/kafka/consumer_client.hpp"

#include "castor/defaults.hpp"
#include "castor/kafka/handles.hpp"
#include "castor/logger.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <unistd.h>

namespace castor::kafka {

namespace {

// The broker queries of start-up, through the consumer's client. Reads
// timestamps for the bisection fallback with a separate consumer it creates
// on first use.
class broker_queries final : public partition_queries {
public:
  broker_queries(rd_kafka_t* rk, properties props, std::chrono::milliseconds timeout,
                 cancel_flag cancel)
      : rk_(rk), props_(std::move(props)), timeout_(timeout), cancel_(std::move(cancel)) {
  }

  result<std::pair<int64_t, int64_t>> watermarks(const topic_partition& tp) override;
  result<int64_t> offset_for_time(const topic_partition& tp, timestamp t) override;
  result<std::optional<int64_t>> committed(const topic_partition& tp) override;
  result<std::optional<timestamp>> timestamp_at(const topic_partition& tp,
                                                int64_t offset) override;

private:
  rd_kafka_t* rk_;
  properties props_;
  std::chrono::milliseconds timeout_;
  cancel_flag cancel_;
  handle_ptr probe_;
};

bool is_fatal(rd_kafka_resp_err_t err) {
  switch (err) {
  case RD_KAFKA_RESP_ERR__FATAL:
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR__AUTHENTICATION:
  case RD_KAFKA_RESP_ERR__SSL:
    return true;
  default:
    return false;
  }
}

std::string private_group_id() {
  std::random_device rd;
  return fmt::format("castor-private-{}-{:08x}", getpid(), rd());
}

} // namespace

struct consumer_client::impl {
  handle_ptr client;
  properties props;
  offset_reset reset = offset_reset::earliest;
  bool has_group = false;
  std::string group;
  /// The consumer queue: errors that concern no partition.
  queue_ptr queue;
  /// Where commit results arrive.
  queue_ptr commit_queue;
  std::vector<assignment_entry> parts;
  /// Each partition's own queue, by pid.
  std::vector<queue_ptr> queues;
  /// first pid of each topic (partitions of a topic are consecutive pids).
  std::map<std::string, uint32_t, std::less<>> first_pid;
  std::vector<rd_kafka_message_t*> buffer;
  std::function<void()> wake;
  /// Results of commits that came through the callback.
  std::vector<commit_result> results;
  /// Group assignment: rebalances not yet taken, the partitions read, and
  /// whether the client closes (rebalances then complete at once).
  std::vector<rebalance> rebalances;
  std::vector<uint32_t> owned;
  bool closing = false;
  /// Group assignment: see consumer_client::joining.
  bool group_mode = false;
  /// librdkafka's callbacks find the client through the handle's opaque:
  /// this, which outlives the client when librdkafka's destruction runs
  /// late (`owner` is then cleared and the hooks are left to it).
  struct hooks {
    std::atomic<impl*> owner{nullptr};
    std::atomic<bool> join_sent{false};
    /// castor enabled librdkafka's debug lines (cgrp) only to see joins:
    /// they stay out of the log.
    bool hide_debug = false;
  };
  std::unique_ptr<hooks> hook = std::make_unique<hooks>();

  /// Wakes librdkafka's fetcher (see consumer_client::wake_fetcher): a
  /// thread of its own sends the requests, whose answers do not matter, so
  /// that no reader waits for a broker. Shared with that thread: when the
  /// client closes while a request still waits for a broker that does not
  /// answer, the thread destroys the client once it returns.
  struct waker {
    std::mutex mutex;
    std::condition_variable cv;
    /// Partitions to query, one per broker to wake.
    std::vector<std::pair<std::string, int32_t>> jobs;
    bool busy = false;
    bool stop = false;
    /// Left to the thread by a close that could not wait for it.
    rd_kafka_t* adopted = nullptr;
    std::unique_ptr<hooks> adopted_hooks;
    std::thread thread;
  };
  std::shared_ptr<waker> fetch_waker;

  bool wake_fetcher(std::vector<std::pair<std::string, int32_t>> parts) {
    if (!fetch_waker) {
      fetch_waker = std::make_shared<waker>();
      fetch_waker->thread = std::thread{[w = fetch_waker, rk = client.get()] {
        std::unique_lock lock{w->mutex};
        while (true) {
          w->cv.wait(lock, [&] { return w->stop || !w->jobs.empty(); });
          if (w->stop)
            break;
          auto jobs = std::exchange(w->jobs, {});
          w->busy = true;
          lock.unlock();
          for (auto& [topic, partition] : jobs) {
            int64_t low = 0;
            int64_t high = 0;
            rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high,
                                             1000);
          }
          lock.lock();
          w->busy = false;
          w->cv.notify_all();
        }
        if (w->adopted != nullptr) {
          lock.unlock();
          rd_kafka_destroy_flags(w->adopted, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
          end_closing();
        }
      }};
    }
    std::lock_guard lock{fetch_waker->mutex};
    if (fetch_waker->busy || !fetch_waker->jobs.empty())
      return false; // one round at a time
    fetch_waker->jobs = std::move(parts);
    fetch_waker->cv.notify_all();
    return true;
  }

  /// Stops the waker within `timeout`. When a request of its own still
  /// waits for a broker, the waker destroys the client (and drops its
  /// hooks) once it returns: returns false, and the client is gone from
  /// here.
  bool stop_waker(std::chrono::milliseconds timeout) {
    if (!fetch_waker)
      return true;
    auto w = std::exchange(fetch_waker, nullptr);
    std::unique_lock lock{w->mutex};
    w->stop = true;
    w->cv.notify_all();
    if (!w->cv.wait_for(lock, timeout, [&] { return !w->busy; })) {
      begin_closing(); // finish_closing waits for it
      w->adopted = client.release();
      w->adopted_hooks = std::move(hook);
      lock.unlock();
      w->thread.detach();
      return false;
    }
    lock.unlock();
    w->thread.join();
    return true;
  }

  static hooks* hooks_of(const rd_kafka_t* rk) {
    return rk != nullptr ? static_cast<hooks*>(rd_kafka_opaque(rk)) : nullptr;
  }

  static impl* owner_of(const rd_kafka_t* rk) {
    auto* h = hooks_of(rk);
    return h != nullptr ? h->owner.load() : nullptr;
  }

  // The log callback of a group's consumer: librdkafka logs "Joining group"
  // (facility JOIN, cgrp debug) on its main thread right before it sends a
  // JoinGroup.
  static void on_log(const rd_kafka_t* rk, int level, const char* facility,
                     const char* text) {
    if (auto* h = hooks_of(rk)) {
      // ... and "SyncGroup response: Success" once it has the new generation.
      std::string_view f{facility};
      std::string_view t{text};
      // (The text starts with the thread's and the broker's names.)
      if (f == "JOIN" && t.find("Joining group") != std::string_view::npos)
        h->join_sent = true;
      else if (f == "SYNCGROUP" &&
               t.find("SyncGroup response: Success") != std::string_view::npos)
        h->join_sent = false;
      if (level >= 7 && h->hide_debug)
        return;
    }
    log_line(rk, level, facility, text);
  }

  bool cooperative() const {
    return std::string_view{rd_kafka_rebalance_protocol(client.get())} == "COOPERATIVE";
  }

  // librdkafka's rebalance callback (on the thread that reads the consumer
  // queue, or polls the close queue).
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void*) {
    if (auto* self = owner_of(rk))
      self->handle_rebalance(err, parts);
  }

  void handle_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    auto* rk = client.get();
    bool assigning = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (closing || (!assigning && err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)) {
      // Closing (everything was committed before), or a rebalance error:
      // complete at once, reading nothing.
      if (!closing)
        logger()->warn("consumer: rebalance error: {}", rd_kafka_err2str(err));
      rd_kafka_error_t* error = nullptr;
      if (assigning)
        error = cooperative() ? rd_kafka_incremental_assign(rk, parts)
                              : (rd_kafka_assign(rk, parts), nullptr);
      else if (cooperative() && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        error = rd_kafka_incremental_unassign(rk, parts);
      else
        rd_kafka_assign(rk, nullptr);
      if (error)
        rd_kafka_error_destroy(error);
      return;
    }
    rebalance r;
    r.assigned = assigning;
    r.lost = !assigning && rd_kafka_assignment_lost(rk) != 0;
    for (int k = 0; parts != nullptr && k < parts->cnt; ++k) {
      auto& elem = parts->elems[k];
      if (auto pid = pid_of(elem.topic, elem.partition))
        r.pids.push_back(*pid);
      else
        r.unknown.emplace_back(elem.topic, elem.partition);
    }
    rebalances.push_back(std::move(r));
  }

  // The consumer queue (errors, rebalances) and the commit queue.
  void open_queues() {
    auto* rk = client.get();
    queue.reset(rd_kafka_queue_get_consumer(rk));
    if (wake)
      rd_kafka_queue_cb_event_enable(queue.get(), &impl::on_event, this);
    if (has_group) {
      commit_queue.reset(rd_kafka_queue_new(rk));
      if (wake)
        rd_kafka_queue_cb_event_enable(commit_queue.get(), &impl::on_event, this);
    }
  }

  // Partition `pid` is read from its own queue: set up before each
  // assignment (a fetch stop clears the queue's forwarding, and a fetch
  // start forwards it into the consumer queue unless the application did).
  failure open_partition_queue(uint32_t pid) {
    auto& e = parts[pid];
    queue_ptr q{rd_kafka_queue_get_partition(client.get(), e.topic.c_str(), e.partition)};
    if (!q)
      return failure(ec::kafka_error,
                     fmt::format("no queue for {}[{}]", e.topic, e.partition));
    rd_kafka_queue_forward(q.get(), nullptr);
    if (wake)
      rd_kafka_queue_cb_event_enable(q.get(), &impl::on_event, this);
    if (queues.size() <= pid)
      queues.resize(pid + 1);
    queues[pid] = std::move(q);
    return {};
  }

  void index_partitions() {
    first_pid.clear();
    for (uint32_t pid = 0; pid < parts.size(); ++pid)
      first_pid.emplace(parts[pid].topic,
                        pid - static_cast<uint32_t>(parts[pid].partition));
  }

  ~impl() {
    close(std::chrono::duration_cast<std::chrono::milliseconds>(defaults::close_timeout));
  }

  // librdkafka's queue event callback (on its threads).
  static void on_event(rd_kafka_t*, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (self->wake)
      self->wake();
  }

  std::optional<uint32_t> pid_of(const char* topic, int32_t partition) const {
    auto i = first_pid.find(std::string_view{topic});
    if (i == first_pid.end())
      return std::nullopt;
    auto pid = i->second + static_cast<uint32_t>(partition);
    if (pid >= parts.size() || parts[pid].partition != partition ||
        parts[pid].topic != topic)
      return std::nullopt;
    return pid;
  }

  commit_result to_result(rd_kafka_resp_err_t err,
                          const rd_kafka_topic_partition_list_t* offsets) const {
    commit_result r;
    // (ILLEGAL_GENERATION is not: librdkafka 2.0.2 takes it for a lost
    // assignment, which follows.)
    auto rebalancing = [](rd_kafka_resp_err_t e) {
      return e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
    };
    r.rebalancing = rebalancing(err);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      r.error = to_failure(err, "committing offsets");
    for (int k = 0; offsets != nullptr && k < offsets->cnt; ++k) {
      auto& elem = offsets->elems[k];
      if (elem.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        r.rebalancing = r.rebalancing || rebalancing(elem.err);
        if (!r.error)
          r.error =
              to_failure(elem.err, fmt::format("committing offset {} of {}[{}]",
                                               elem.offset, elem.topic, elem.partition));
        continue;
      }
      if (auto pid = pid_of(elem.topic, elem.partition))
        r.committed.emplace_back(*pid, elem.offset);
    }
    if (r.error)
      r.committed.clear();
    return r;
  }

  static void on_commit(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* offsets, void*) {
    if (auto* self = owner_of(rk))
      self->results.push_back(self->to_result(err, offsets));
  }

  // Turns an error message into a count or the fatal error.
  void classify(rd_kafka_message_t* m, read_errors& errors) const {
    auto where = m->rkt != nullptr
                     ? fmt::format("{}[{}]", rd_kafka_topic_name(m->rkt), m->partition)
                     : std::string{"the cluster"};
    auto text =
        fmt::format("consumer error on {}: {}", where, rd_kafka_message_errstr(m));
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
      // auto.offset.reset = error: the position is out of range.
      if (!errors.fatal)
        errors.fatal = failure(
            ec::offset_out_of_range,
            fmt::format("{}: offset {} is out of range on the broker and "
                        "auto.offset.reset is error ({}); with earliest, castor would go "
                        "on from the oldest offset it holds",
                        where, m->offset, rd_kafka_message_errstr(m)));
    } else if (is_fatal(m->err)) {
      if (!errors.fatal)
        errors.fatal = to_failure(m->err, text);
    } else {
      logger()->warn("consumer: {} ({}); retrying", text, rd_kafka_err2name(m->err));
      ++errors.transient;
    }
  }

  bool close(std::chrono::milliseconds timeout) {
    if (!client)
      return true;
    closing = true;
    for (auto& q : queues)
      if (q)
        rd_kafka_queue_cb_event_enable(q.get(), nullptr, nullptr);
    queues.clear();
    for (auto* q : {&commit_queue, &queue})
      if (*q) {
        rd_kafka_queue_cb_event_enable(q->get(), nullptr, nullptr);
        q->reset();
      }
    // librdkafka's own close waits for requests in flight (a commit to a
    // broker that is gone waits for socket.timeout.ms): close through a
    // queue for at most `timeout`, then destroy without a second close.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    queue_ptr closing_queue{rd_kafka_queue_new(client.get())};
    if (auto* error = rd_kafka_consumer_close_queue(client.get(), closing_queue.get())) {
      logger()->debug("consumer: close: {}", rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    } else {
      while (!rd_kafka_consumer_closed(client.get()) &&
             std::chrono::steady_clock::now() < deadline)
        if (auto* ev = rd_kafka_queue_poll(closing_queue.get(), 50)) {
          // Leaving a group revokes everything: done at once.
          if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            handle_rebalance(rd_kafka_event_error(ev),
                             rd_kafka_event_topic_partition_list(ev));
          rd_kafka_event_destroy(ev);
        }
    }
    closing_queue.reset();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    left = std::max(left, std::chrono::milliseconds{100});
    hook->owner = nullptr;
    if (!stop_waker(left)) {
      logger()->warn("consumer: a query to a broker that does not answer is still "
                     "open: librdkafka's client is destroyed once it returns; castor "
                     "goes on without it");
      return false;
    }
    left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()),
                    std::chrono::milliseconds{100});
    if (destroy_within(std::move(client), left, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
      return true;
    // librdkafka's threads may still call back: the hooks stay theirs.
    (void)hook.release();
    logger()->warn("consumer: librdkafka still closes its client (requests to a broker "
                   "that does not answer); castor goes on without it");
    return false;
  }
};

consumer_client::consumer_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

consumer_client::~consumer_client() = default;

result<std::unique_ptr<consumer_client>> consumer_client::make(const properties& given,
                                                               bool group) {
  auto p = std::make_unique<impl>();
  p->group_mode = group;
  auto props = given;
  // A position out of range (retention removed it, or a topic was
  // truncated): librdkafka's default is to jump to the end, skipping what
  // the broker still holds. castor goes back to the oldest offset instead,
  // unless told otherwise, and reports what was skipped either way.
  if (auto i = props.find("auto.offset.reset"); i != props.end()) {
    auto parsed = parse_offset_reset(i->second);
    if (!parsed)
      return parsed.error();
    p->reset = *parsed;
  } else {
    props["auto.offset.reset"] = defaults::auto_offset_reset;
  }
  props["enable.partition.eof"] = "true";
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  p->has_group = props.contains("group.id");
  // Group assignment balances partitions incrementally unless told
  // otherwise (a rebalance then moves only the partitions that change hands).
  if (!props.contains("partition.assignment.strategy"))
    props["partition.assignment.strategy"] = "cooperative-sticky";
  if (!p->has_group)
    props["group.id"] = private_group_id();
  p->group = props["group.id"];
  // Each partition prefetches into its own queue, up to these limits.
  // librdkafka (before 2.2) stops fetching a partition whose queue is above
  // them and looks again only when its broker thread wakes, up to a second
  // later: a queue castor empties faster than that leaves the replay idle.
  // 20000 messages cost 3x the throughput of 50000 (measured, bench/,
  // before the consumer woke the fetcher: docs/pipeline.md, backpressure);
  // librdkafka's own default of 100000 is faster still but makes a paused
  // partition keep twice the memory. engine.memory_budget lowers both with
  // many partitions (kafka::budget_properties).
  if (!props.contains("queued.min.messages"))
    props["queued.min.messages"] = defaults::queued_min_messages;
  if (!props.contains("queued.max.messages.kbytes"))
    props["queued.max.messages.kbytes"] = defaults::queued_max_messages_kbytes;
  if (group) {
    // Joins are seen through librdkafka's cgrp debug lines (see `joining`),
    // kept out of the log unless the properties asked for debug lines.
    auto& debug = props["debug"];
    p->hook->hide_debug = debug.empty();
    if (debug.find("cgrp") == std::string::npos && debug.find("all") == std::string::npos)
      debug = debug.empty() ? std::string{"cgrp"} : debug + ",cgrp";
  }
  p->props = given;
  auto conf = make_conf(props, "consumer");
  if (!conf)
    return conf.error();
  if (group)
    rd_kafka_conf_set_log_cb(conf->get(), &impl::on_log);
  // The callbacks find the client through the handle's opaque.
  p->hook->owner = p.get();
  rd_kafka_conf_set_opaque(conf->get(), p->hook.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &impl::on_rebalance);
  auto made = make_client(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!made)
    return made.error();
  p->client = std::move(*made);
  rd_kafka_poll_set_consumer(p->client.get());
  return std::unique_ptr<consumer_client>{new consumer_client(std::move(p))};
}

offset_reset consumer_client::reset() const noexcept {
  return impl_->reset;
}

bool consumer_client::has_group() const noexcept {
  return impl_->has_group;
}

const std::string& consumer_client::group() const noexcept {
  return impl_->group;
}

result<std::vector<int32_t>>
consumer_client::partitions(const std::string& topic, std::chrono::milliseconds timeout,
                            const cancel_flag& cancel) {
  return kafka::partition_leaders(impl_->client.get(), topic, timeout, cancel);
}

std::unique_ptr<partition_queries>
consumer_client::queries(std::chrono::milliseconds timeout, cancel_flag cancel) {
  return std::make_unique<broker_queries>(impl_->client.get(), impl_->props, timeout,
                                          std::move(cancel));
}

failure consumer_client::assign(const std::vector<assignment_entry>& parts,
                                std::function<void()> wake) {
  auto& p = *impl_;
  p.parts = parts;
  p.wake = std::move(wake);
  auto* rk = p.client.get();
  p.index_partitions();
  // Each partition keeps its own queue (set up before the assignment, which
  // would otherwise forward them all into the consumer queue).
  for (uint32_t pid = 0; pid < parts.size(); ++pid) {
    if (auto err = p.open_partition_queue(pid))
      return err;
    p.owned.push_back(pid);
  }
  partition_list_ptr list{
      rd_kafka_topic_partition_list_new(static_cast<int>(parts.size()))};
  for (auto& e : parts)
    rd_kafka_topic_partition_list_add(list.get(), e.topic.c_str(), e.partition)->offset =
        e.offset;
  if (auto err = rd_kafka_assign(rk, list.get()))
    return to_failure(err, "assigning the source partitions");
  p.open_queues();
  return {};
}

namespace {

failure from_error(rd_kafka_error_t* error, std::string_view what) {
  if (error == nullptr)
    return {};
  auto result =
      failure(ec::kafka_error, fmt::format("{}: {}", what, rd_kafka_error_string(error)));
  rd_kafka_error_destroy(error);
  return result;
}

} // namespace

failure consumer_client::subscribe(const std::vector<assignment_entry>& parts,
                                   std::function<void()> wake) {
  auto& p = *impl_;
  p.parts = parts;
  p.wake = std::move(wake);
  p.index_partitions();
  p.queues.clear();
  p.queues.resize(parts.size());
  partition_list_ptr topics{rd_kafka_topic_partition_list_new(1)};
  for (auto& [topic, first] : p.first_pid)
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  p.open_queues();
  if (auto err = rd_kafka_subscribe(p.client.get(), topics.get()))
    return to_failure(err, "subscribing to the source topics");
  return {};
}

std::vector<rebalance> consumer_client::take_rebalances() {
  return std::exchange(impl_->rebalances, {});
}

failure consumer_client::add(const std::vector<std::pair<uint32_t, int64_t>>& starts) {
  auto& p = *impl_;
  partition_list_ptr list{
      rd_kafka_topic_partition_list_new(static_cast<int>(starts.size()))};
  for (auto [pid, offset] : starts) {
    if (auto err = p.open_partition_queue(pid))
      return err;
    auto& e = p.parts[pid];
    rd_kafka_topic_partition_list_add(list.get(), e.topic.c_str(), e.partition)->offset =
        offset;
    p.owned.push_back(pid);
  }
  std::sort(p.owned.begin(), p.owned.end());
  p.owned.erase(std::unique(p.owned.begin(), p.owned.end()), p.owned.end());
  if (p.cooperative())
    return from_error(rd_kafka_incremental_assign(p.client.get(), list.get()),
                      "assigning partitions");
  // An eager assignor revoked everything before: this is the whole
  // assignment.
  if (auto err = rd_kafka_assign(p.client.get(), list.get()))
    return to_failure(err, "assigning partitions");
  return {};
}

failure consumer_client::remove(const std::vector<uint32_t>& pids) {
  auto& p = *impl_;
  failure result;
  if (p.cooperative()) {
    partition_list_ptr list{
        rd_kafka_topic_partition_list_new(static_cast<int>(pids.size()))};
    for (auto pid : pids)
      rd_kafka_topic_partition_list_add(list.get(), p.parts[pid].topic.c_str(),
                                        p.parts[pid].partition);
    result = from_error(rd_kafka_incremental_unassign(p.client.get(), list.get()),
                        "revoking partitions");
  } else if (auto err = rd_kafka_assign(p.client.get(), nullptr)) {
    result = to_failure(err, "revoking partitions");
  }
  for (auto pid : pids) {
    if (pid < p.queues.size() && p.queues[pid]) {
      rd_kafka_queue_cb_event_enable(p.queues[pid].get(), nullptr, nullptr);
      p.queues[pid].reset();
    }
    std::erase(p.owned, pid);
  }
  return result;
}

bool consumer_client::joining() const noexcept {
  return impl_->hook && impl_->hook->join_sent;
}

const std::vector<uint32_t>& consumer_client::owned() const noexcept {
  return impl_->owned;
}

bool consumer_client::read(uint32_t pid, size_t max, std::vector<consumed_message>& out,
                           read_errors& errors, bool* ends_at_end) {
  auto& p = *impl_;
  if (pid >= p.queues.size() || !p.queues[pid])
    return false; // not assigned
  if (p.buffer.size() < max)
    p.buffer.resize(max);
  ssize_t got = 0;
  if (p.group_mode) {
    // librdkafka 2.0.2 pauses every assigned partition when a rebalance
    // begins, from its own thread; a pause that lands in the middle of a
    // batch read purges the messages already taken while the fetch resumes
    // after them (a known issue of 2.0, fixed in 2.1): they would be lost.
    // One message per call is never purged.
    while (got < static_cast<ssize_t>(max)) {
      auto n =
          rd_kafka_consume_batch_queue(p.queues[pid].get(), 0, p.buffer.data() + got, 1);
      if (n <= 0)
        break;
      got += n;
    }
  } else {
    got = rd_kafka_consume_batch_queue(p.queues[pid].get(), 0, p.buffer.data(), max);
  }
  bool end = false;
  bool last_end = false;
  for (ssize_t i = 0; i < got; ++i) {
    auto* m = p.buffer[static_cast<size_t>(i)];
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && !errors.fatal) {
      out.emplace_back(m, pid); // takes ownership
      last_end = false;
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
      end = last_end = true;
    else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
      p.classify(m, errors);
    rd_kafka_message_destroy(m);
  }
  if (ends_at_end != nullptr && got > 0)
    *ends_at_end = last_end;
  return end;
}

void consumer_client::read_cluster_errors(read_errors& errors) {
  auto& p = *impl_;
  if (!p.queue)
    return;
  if (p.buffer.size() < 256)
    p.buffer.resize(256);
  auto n =
      rd_kafka_consume_batch_queue(p.queue.get(), 0, p.buffer.data(), p.buffer.size());
  for (ssize_t i = 0; i < n; ++i) {
    auto* m = p.buffer[static_cast<size_t>(i)];
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && !errors.fatal) {
      // A message that came here, not through its partition's queue, would
      // be out of castor's order: never dropped in silence.
      errors.fatal = failure(
          ec::kafka_error,
          fmt::format("a message of {}[{}] offset {} arrived on the consumer queue "
                      "instead of its partition's queue (librdkafka forwarded the "
                      "queue): castor stops rather than lose or misorder it",
                      m->rkt ? rd_kafka_topic_name(m->rkt) : "?", m->partition,
                      m->offset));
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
               m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      p.classify(m, errors);
    }
    rd_kafka_message_destroy(m);
  }
}

bool consumer_client::wake_fetcher(const std::vector<uint32_t>& pids) {
  if (!impl_->client)
    return false;
  std::vector<std::pair<std::string, int32_t>> parts;
  for (auto pid : pids)
    if (pid < impl_->parts.size())
      parts.emplace_back(impl_->parts[pid].topic, impl_->parts[pid].partition);
  return !parts.empty() && impl_->wake_fetcher(std::move(parts));
}
std::pair<int64_t, int64_t> consumer_client::cached_watermarks(uint32_t pid) const {
  auto& e = impl_->parts[pid];
  int64_t low = -1;
  int64_t high = -1;
  rd_kafka_get_watermark_offsets(impl_->client.get(), e.topic.c_str(), e.partition, &low,
                                 &high);
  return {low, high};
}

failure consumer_client::commit(const std::vector<committed_offset>& offsets) {
  auto& p = *impl_;
  if (!p.commit_queue)
    return failure(ec::kafka_error, "commit without a consumer group");
  partition_list_ptr list{
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()))};
  for (auto [pid, offset] : offsets) {
    auto& e = p.parts[pid];
    rd_kafka_topic_partition_list_add(list.get(), e.topic.c_str(), e.partition)->offset =
        offset;
  }
  auto err = rd_kafka_commit_queue(p.client.get(), list.get(), p.commit_queue.get(),
                                   &impl::on_commit, nullptr);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    p.results.push_back(p.to_result(err, list.get()));
  return {};
}

std::vector<commit_result> consumer_client::poll_commits() {
  auto& p = *impl_;
  if (p.commit_queue)
    while (auto* ev = rd_kafka_queue_poll(p.commit_queue.get(), 0)) {
      if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT)
        p.results.push_back(p.to_result(rd_kafka_event_error(ev),
                                        rd_kafka_event_topic_partition_list(ev)));
      rd_kafka_event_destroy(ev);
    }
  return std::exchange(p.results, {});
}

bool consumer_client::close(std::chrono::milliseconds timeout) {
  return impl_->close(timeout);
}

result<std::pair<int64_t, int64_t>>
broker_queries::watermarks(const topic_partition& tp) {
  int64_t low = 0;
  int64_t high = 0;
  auto err = detail::in_slices(timeout_, cancel_, [&](int ms) {
    return rd_kafka_query_watermark_offsets(rk_, tp.topic.c_str(), tp.partition, &low,
                                            &high, ms);
  });
  if (err == RD_KAFKA_RESP_ERR__DESTROY)
    return detail::cancelled(fmt::format("asking for the offsets of {}", to_string(tp)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_failure(err, fmt::format("watermark offsets of {}", to_string(tp)));
  return std::pair{low, high};
}

result<int64_t> broker_queries::offset_for_time(const topic_partition& tp, timestamp t) {
  partition_list_ptr list{rd_kafka_topic_partition_list_new(1)};
  auto* elem =
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  elem->offset = to_millis(t);
  auto err = detail::in_slices(timeout_, cancel_, [&](int ms) {
    elem->offset = to_millis(t);
    return rd_kafka_offsets_for_times(rk_, list.get(), ms);
  });
  if (err == RD_KAFKA_RESP_ERR__DESTROY)
    return detail::cancelled(
        fmt::format("looking up time {} in {}", to_string(t), to_string(tp)));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    err = elem->err;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_failure(
        err, fmt::format("offset for time {} in {}", to_string(t), to_string(tp)));
  return elem->offset < 0 ? int64_t{-1} : elem->offset;
}

result<std::optional<int64_t>> broker_queries::committed(const topic_partition& tp) {
  if (!props_.contains("group.id"))
    return failure(ec::invalid_config,
                   fmt::format("start policy 'committed' for {} needs a consumer group "
                               "(group.id)",
                               to_string(tp)));
  partition_list_ptr list{rd_kafka_topic_partition_list_new(1)};
  auto* elem =
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  auto err = detail::in_slices(
      timeout_, cancel_, [&](int ms) { return rd_kafka_committed(rk_, list.get(), ms); });
  if (err == RD_KAFKA_RESP_ERR__DESTROY)
    return detail::cancelled(
        fmt::format("asking for the committed offset of {}", to_string(tp)));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    err = elem->err;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return to_failure(err, fmt::format("committed offset of {}", to_string(tp)));
  if (elem->offset < 0)
    return std::optional<int64_t>{};
  return std::optional<int64_t>{elem->offset};
}

result<std::optional<timestamp>> broker_queries::timestamp_at(const topic_partition& tp,
                                                              int64_t offset) {
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
    return to_failure(rd_kafka_last_error(),
                      fmt::format("reading {} at offset {}", to_string(tp), offset));
  std::optional<timestamp> found;
  failure error;
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      error = failure(ec::broker_timeout,
                      fmt::format("no message from {} at offset {} within {} ms",
                                  to_string(tp), offset, timeout_.count()));
      break;
    }
    if (cancel_ && cancel_->load()) {
      error = detail::cancelled(
          fmt::format("reading {} at offset {}", to_string(tp), offset));
      break;
    }
    // A short wait at a time: a stop is seen within it (rd_kafka_consume
    // keeps fetching across calls).
    auto wait = std::min(left, std::chrono::milliseconds{200});
    message_ptr msg{
        rd_kafka_consume(rkt.get(), tp.partition, static_cast<int>(wait.count()))};
    if (!msg)
      continue;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
      break; // nothing at or after offset
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      error = to_failure(msg->err,
                         fmt::format("reading {} at offset {}", to_string(tp), offset));
      break;
    }
    rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    auto ms = rd_kafka_message_timestamp(msg.get(), &type);
    if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && valid_timestamp_ms(ms))
      found = from_millis(ms);
    break;
  }
  rd_kafka_consume_stop(rkt.get(), tp.partition);
  if (error)
    return error;
  return found;
}

} // namespace castor::kafka
