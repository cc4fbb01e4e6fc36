// SPDX-License-Identifier: Apache-2.0
#include "castor/metrics_endpoint.hpp"

#include "castor/error.hpp"
#include "castor/logger.hpp"

#include <caf/scoped_actor.hpp>
#include <fmt/format.h>

#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <prometheus/exposer.h>
#include <set>

namespace castor {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

struct families {
  // A deque: references to families stay valid as more are added.
  std::deque<MetricFamily> all;

  MetricFamily& add(std::string name, std::string help, MetricType type) {
    all.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
    return all.back();
  }

  void scalar(std::string name, std::string help, MetricType type, double value) {
    add(std::move(name), std::move(help), type).metric.push_back(sample(type, value, {}));
  }

  static ClientMetric sample(MetricType type, double value,
                             std::vector<ClientMetric::Label> labels) {
    ClientMetric m;
    m.label = std::move(labels);
    if (type == MetricType::Counter)
      m.counter.value = value;
    else
      m.gauge.value = value;
    return m;
  }
};

double seconds_of(int64_t ms) {
  return static_cast<double>(ms) / 1000.0;
}

} // namespace

std::vector<MetricFamily> to_metric_families(const pipeline_stats& s, timestamp now) {
  families f;
  auto counter = MetricType::Counter;
  auto gauge = MetricType::Gauge;

  // Per topic: sources by what was read, sinks by what was written.
  std::set<std::string> sources;
  for (auto& p : s.partitions)
    sources.insert(p.topic);
  auto& consumed = f.add("castor_consumed_messages_total",
                         "Messages read from a source topic", counter);
  auto& released = f.add("castor_released_messages_total",
                         "Messages of a source topic released to the DAG", counter);
  auto& produced = f.add("castor_produced_records_total",
                         "Records handed to the producer, by topic", counter);
  auto& delivered = f.add("castor_delivered_records_total",
                          "Records the brokers acknowledged, by topic", counter);
  auto& errors =
      f.add("castor_delivery_errors_total",
            "Records that failed after librdkafka's retries, by topic", counter);
  for (auto& t : s.topics) {
    std::vector<ClientMetric::Label> labels{{"topic", t.topic}};
    if (sources.count(t.topic) > 0) {
      consumed.metric.push_back(families::sample(counter, double(t.consumed), labels));
      released.metric.push_back(families::sample(counter, double(t.released), labels));
    }
    if (sources.count(t.topic) == 0 || t.produced > 0 || t.delivered > 0 ||
        t.delivery_errors > 0) {
      produced.metric.push_back(families::sample(counter, double(t.produced), labels));
      delivered.metric.push_back(families::sample(counter, double(t.delivered), labels));
      errors.metric.push_back(
          families::sample(counter, double(t.delivery_errors), labels));
    }
  }

  f.scalar("castor_held_messages", "Messages held by the orchestrator", gauge,
           double(s.held));
  f.scalar("castor_held_messages_peak", "The most messages held at once", gauge,
           double(s.held_peak));
  f.scalar("castor_held_bytes",
           "Keys and values of the messages held by the orchestrator (bytes)", gauge,
           double(s.held_bytes));
  f.scalar("castor_held_bytes_peak", "The most bytes held at once", gauge,
           double(s.held_bytes_peak));
  f.scalar("castor_waiting_messages",
           "Messages released whose cycle waits for the rest of its timestamp or bucket",
           gauge, double(s.waiting));
  f.scalar("castor_paused_partitions", "Partitions paused now", gauge,
           double(s.paused_partitions));
  f.scalar("castor_pauses_total", "Times a partition was paused", counter,
           double(s.pauses));
  f.scalar("castor_late_messages_total", "Messages that arrived behind the watermark",
           counter, double(s.late));
  if (s.watermark_ms != INT64_MIN) {
    f.scalar("castor_watermark_seconds", "The low watermark (seconds since the epoch)",
             gauge, seconds_of(s.watermark_ms));
  }
  (void)now;
  if (!std::isnan(s.lag_seconds))
    f.scalar("castor_watermark_lag_seconds",
             "How far castor is behind its input: in replay the wall clock minus the "
             "watermark, when live the age of the oldest message held (0 when none)",
             gauge, s.lag_seconds);

  auto& lag = f.add("castor_partition_lag_messages",
                    "Messages between a partition's position and its end offset", gauge);
  auto& progress = f.add("castor_partition_replay_progress_ratio",
                         "Share of a partition's replay done (0..1)", gauge);
  auto& position = f.add("castor_partition_position",
                         "Next offset to read of a source partition", gauge);
  auto& assigned = f.add("castor_partition_assigned",
                         "1 while this instance reads the source partition", gauge);
  auto& skipped = f.add("castor_partition_skipped_offsets_total",
                        "Offsets of a partition skipped by offset resets (removed by "
                        "retention before castor read them)",
                        counter);
  for (auto& p : s.partitions) {
    std::vector<ClientMetric::Label> labels{{"topic", p.topic},
                                            {"partition", std::to_string(p.partition)}};
    lag.metric.push_back(families::sample(gauge, double(p.lag()), labels));
    progress.metric.push_back(families::sample(gauge, p.progress(), labels));
    position.metric.push_back(families::sample(gauge, double(p.position), labels));
    skipped.metric.push_back(families::sample(counter, double(p.skipped), labels));
    assigned.metric.push_back(families::sample(gauge, p.assigned ? 1.0 : 0.0, labels));
  }
  f.scalar("castor_offset_resets_total",
           "Partition positions found out of range and reset (auto.offset.reset)",
           counter, double(s.offset_resets));
  f.scalar("castor_skipped_offsets_total", "Offsets skipped by offset resets", counter,
           double(s.skipped_offsets));
  f.scalar("castor_idle_partitions_total",
           "Times a partition went idle (silent while the broker answered) and stopped "
           "holding the watermark back",
           counter, double(s.idled));
  f.scalar("castor_timer_skips_total",
           "Gaps across which timers stopped catching up (engine.timer_catch_up)",
           counter, double(s.timer_skips));
  f.scalar("castor_oversized_records_total",
           "Records larger than the producer's message.max.bytes", counter,
           double(s.oversized));
  f.scalar("castor_fetcher_wakeups_total",
           "Rounds in which the consumer, having read nothing for a while, asked "
           "librdkafka's fetcher to look again (the broker held more than it had read)",
           counter, double(s.fetcher_wakeups));

  f.scalar("castor_cycles_total", "DAG cycles run", counter, double(s.cycles));
  f.scalar("castor_failed_cycles_total", "Cycles in which a node or a sink threw",
           counter, double(s.failed_cycles));
  if (!s.cycle_buckets.empty()) {
    auto& hist = f.add("castor_cycle_duration_seconds", "Time a DAG cycle took",
                       MetricType::Histogram);
    ClientMetric m;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < s.cycle_buckets.size(); ++i) {
      cumulative += s.cycle_buckets[i];
      ClientMetric::Bucket b;
      b.cumulative_count = cumulative;
      b.upper_bound = i < cycle_duration_bounds.size()
                          ? cycle_duration_bounds[i]
                          : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(b);
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = s.cycle_seconds;
    hist.metric.push_back(std::move(m));
  }

  auto& runs = f.add("castor_node_runs_total", "Times a DAG node ran", counter);
  auto& node_time =
      f.add("castor_node_seconds_total", "Time spent in a DAG node", counter);
  std::map<std::string, int> seen;
  for (auto& n : s.nodes) {
    // Node names need not be unique: later ones get a #k suffix.
    auto k = seen[n.name]++;
    auto name = k == 0 ? n.name : fmt::format("{}#{}", n.name, k);
    std::vector<ClientMetric::Label> labels{{"node", name}};
    runs.metric.push_back(families::sample(counter, double(n.runs), labels));
    node_time.metric.push_back(
        families::sample(counter, static_cast<double>(n.time_ns) / 1e9, labels));
  }

  if (s.eta_seconds >= 0)
    f.scalar("castor_replay_eta_seconds", "Estimated seconds until caught up (0: live)",
             gauge, s.eta_seconds);
  f.scalar("castor_replay_rate_messages_per_second",
           "Messages read per second since the start", gauge, s.rate);
  f.scalar("castor_live", "1 once every partition is caught up (live), 0 in replay",
           gauge, s.live ? 1.0 : 0.0);
  f.scalar("castor_dead_lettered_total", "Messages sent to the dead-letter topic",
           counter, double(s.dead_lettered));
  f.scalar("castor_commits_total", "Offset commits the brokers accepted", counter,
           double(s.commits));
  f.scalar("castor_assigned_partitions",
           "Source partitions this instance reads (all of them unless a consumer group "
           "assigns them)",
           gauge, double(s.assigned_partitions));
  f.scalar("castor_rebalances_total",
           "Consumer group rebalances that assigned or revoked partitions", counter,
           double(s.rebalances));
  f.scalar("castor_revoked_dropped_messages_total",
           "Messages of revoked partitions dropped before they ran (their next owner "
           "reads them)",
           counter, double(s.revoked_dropped));
  return {std::make_move_iterator(f.all.begin()), std::make_move_iterator(f.all.end())};
}

namespace {

class pipeline_collectable : public prometheus::Collectable {
public:
  pipeline_collectable(caf::actor_system& sys, pipeline_actor pipeline)
      : sys_(sys), pipeline_(std::move(pipeline)) {}

  std::vector<MetricFamily> Collect() const override {
    // Runs on the HTTP server's thread: a blocking request is fine here.
    caf::scoped_actor self{sys_};
    std::vector<MetricFamily> result;
    self->request(pipeline_, std::chrono::seconds{5}, stats_atom::value)
        .receive(
            [&](pipeline_stats& s) {
              result = to_metric_families(
                  s, timestamp{std::chrono::duration_cast<duration>(
                         std::chrono::system_clock::now().time_since_epoch())});
            },
            [&](caf::error& err) {
              logger()->warn("metrics: the pipeline did not answer: {}", render(err));
            });
    return result;
  }

private:
  caf::actor_system& sys_;
  pipeline_actor pipeline_;
};

} // namespace

std::shared_ptr<prometheus::Collectable> make_collectable(caf::actor_system& sys,
                                                          pipeline_actor pipeline) {
  return std::make_shared<pipeline_collectable>(sys, std::move(pipeline));
}

struct metrics_endpoint::impl {
  std::shared_ptr<prometheus::Collectable> collectable;
  std::unique_ptr<prometheus::Exposer> exposer;
};

metrics_endpoint::metrics_endpoint(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

metrics_endpoint::~metrics_endpoint() = default;

caf::expected<std::unique_ptr<metrics_endpoint>>
metrics_endpoint::start(caf::actor_system& sys, pipeline_actor pipeline,
                        const std::string& listen) {
  auto p = std::make_unique<impl>();
  p->collectable = make_collectable(sys, std::move(pipeline));
  try {
    p->exposer = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return make_error(
        ec::invalid_config,
        fmt::format("metrics.listen '{}': cannot listen: {}", listen, e.what()));
  }
  p->exposer->RegisterCollectable(p->collectable);
  std::unique_ptr<metrics_endpoint> result{new metrics_endpoint(std::move(p))};
  auto host = listen.substr(0, listen.rfind(':'));
  logger()->info("metrics: Prometheus endpoint at http://{}:{}/metrics", host,
                 result->port());
  return result;
}

int metrics_endpoint::port() const {
  auto ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

} // namespace castor
