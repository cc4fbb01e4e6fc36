// SPDX-License-Identifier: Apache-2.0
// Ordered replay throughput: castor's `merge` DAG (2 topics x 4 partitions,
// replayed from earliest in timestamp order into one output topic) against a
// raw librdkafka consume->produce loop over the same data, on the same mock
// cluster, in one run. Usage: castor_bench_pipeline [messages] [value bytes]

#include "castor/kafka.hpp"
#include "castor/logger.hpp"
#include "castor/pipeline.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "builtin_dags.hpp"

namespace {

using steady = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "castor_bench_pipeline: {}\n", what);
  std::exit(1);
}

template <class T>
T need(caf::expected<T> x, const char* what) {
  if (!x)
    die(fmt::format("{}: {}", what, castor::render(x.error())));
  return std::move(*x);
}

// Writes `count` messages round-robin over the topics' partitions with
// increasing timestamps, interleaving the topics.
void fill(const std::string& bootstrap, const std::vector<std::string>& topics,
          int partitions, size_t count, size_t value_size) {
  auto conf = need(castor::kafka::make_conf({{"bootstrap.servers", bootstrap},
                                             {"linger.ms", "20"},
                                             {"compression.type", "lz4"},
                                             {"batch.num.messages", "10000"},
                                             {"queue.buffering.max.messages", "1000000"}},
                                            "bench producer"),
                   "producer config");
  auto rk =
      need(castor::kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf)), "producer");
  std::string value(value_size, 'x');
  int64_t t0 = 1'767'225'600'000;
  for (size_t i = 0; i < count; ++i) {
    auto& topic = topics[i % topics.size()];
    auto partition = static_cast<int32_t>((i / topics.size()) % partitions);
    int64_t ts = t0 + static_cast<int64_t>(i);
    while (true) {
      auto err = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                   RD_KAFKA_V_PARTITION(partition),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_VALUE(value.data(), value.size()),
                                   RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        die(rd_kafka_err2str(err));
      rd_kafka_poll(rk.get(), 5);
    }
  }
  if (rd_kafka_flush(rk.get(), 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    die("flush of the input timed out");
}

// Consumes every partition of `topics` from the beginning and produces each
// message's key and value to `out`, until `count` are delivered.
double raw_loop(const std::string& bootstrap, const std::vector<std::string>& topics,
                int partitions, size_t count, const std::string& out) {
  auto start = steady::now();
  auto cconf = need(castor::kafka::make_conf({{"bootstrap.servers", bootstrap},
                                              {"group.id", "raw-bench"},
                                              {"enable.auto.commit", "false"},
                                              {"fetch.wait.max.ms", "10"},
                                              {"queued.min.messages", "1000000"}},
                                             "raw consumer"),
                    "consumer config");
  auto consumer =
      need(castor::kafka::make_client(RD_KAFKA_CONSUMER, std::move(cconf)), "consumer");
  auto pconf = need(castor::kafka::make_conf({{"bootstrap.servers", bootstrap},
                                              {"linger.ms", "5"},
                                              {"compression.type", "lz4"}},
                                             "raw producer"),
                    "producer config");
  auto producer =
      need(castor::kafka::make_client(RD_KAFKA_PRODUCER, std::move(pconf)), "producer");
  rd_kafka_poll_set_consumer(consumer.get());
  castor::kafka::partition_list_ptr list{rd_kafka_topic_partition_list_new(8)};
  for (auto& t : topics)
    for (int p = 0; p < partitions; ++p)
      rd_kafka_topic_partition_list_add(list.get(), t.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(consumer.get(), list.get());
  castor::kafka::queue_ptr queue{rd_kafka_queue_get_consumer(consumer.get())};
  std::vector<rd_kafka_message_t*> buffer(5000);
  size_t done = 0;
  while (done < count) {
    // Block for the first message, then drain without waiting.
    auto* first = rd_kafka_consume_queue(queue.get(), 100);
    if (first == nullptr)
      continue;
    buffer[0] = first;
    auto n = 1 + rd_kafka_consume_batch_queue(queue.get(), 0, buffer.data() + 1,
                                              buffer.size() - 1);
    for (ssize_t i = 0; i < n; ++i) {
      auto* m = buffer[static_cast<size_t>(i)];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        while (rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(out.c_str()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_KEY(m->key, m->key_len),
                                 RD_KAFKA_V_VALUE(m->payload, m->len),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
          rd_kafka_poll(producer.get(), 1);
        ++done;
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(producer.get(), 0);
  }
  rd_kafka_flush(producer.get(), 120'000);
  rd_kafka_consumer_close(consumer.get());
  return std::chrono::duration<double>(steady::now() - start).count();
}

double castor_run(const castor::dags::factory& make, const std::string& bootstrap,
                  const std::vector<std::string>& topics, size_t count, size_t batch_size,
                  const std::string& out, castor::pipeline_stats& final_stats) {
  caf::actor_system_config cfg;
  castor::add_message_types(cfg);
  caf::actor_system sys{cfg};
  std::vector<castor::dags::source_spec> sources;
  for (auto& t : topics)
    sources.push_back({t, t, castor::start_policy::earliest()});
  auto def = need(make(sources, {{"out", out}}), "dag");
  castor::pipeline_config pc;
  pc.consumer = {{"bootstrap.servers", bootstrap}, {"fetch.wait.max.ms", "10"}};
  pc.producer = {
      {"bootstrap.servers", bootstrap}, {"linger.ms", "5"}, {"compression.type", "lz4"}};
  pc.batch_size = batch_size;
  auto start = steady::now();
  auto pipeline = castor::spawn_pipeline(sys, def, pc);
  caf::scoped_actor self{sys};
  while (true) {
    castor::pipeline_stats s;
    bool ok = false;
    self->request(pipeline, std::chrono::seconds{10}, castor::stats_atom::value)
        .receive(
            [&](castor::pipeline_stats& x) {
              s = x;
              ok = true;
            },
            [&](caf::error& err) { die("stats: " + castor::render(err)); });
    if (ok && s.delivered >= count) {
      final_stats = s;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  auto elapsed = std::chrono::duration<double>(steady::now() - start).count();
  caf::anon_send(pipeline, castor::stop_atom::value);
  if (auto err = castor::wait_for(sys, pipeline))
    die("stop: " + castor::render(err));
  return elapsed;
}

} // namespace

int main(int argc, char** argv) {
  size_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 400'000;
  size_t value_size = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20;
  castor::logger()->set_level(spdlog::level::warn);
  auto cluster = need(castor::kafka::mock_cluster::start(), "mock cluster");
  std::vector<std::string> topics{"bench-a", "bench-b"};
  const int partitions = 4;
  for (auto& t : topics)
    if (auto err = cluster->create_topic(t, partitions))
      die(castor::render(err));
  for (auto out : {"raw-out", "castor-copy-out", "castor-merge-out"})
    if (auto err = cluster->create_topic(out, 1))
      die(castor::render(err));
  auto& bootstrap = cluster->bootstrap_servers();
  fmt::print("filling {} messages of {} B into 2 topics x {} partitions...\n", count,
             value_size, partitions);
  fill(bootstrap, topics, partitions, count, value_size);

  size_t batch = 5000;
  if (auto* env = std::getenv("CASTOR_BENCH_BATCH"))
    batch = std::strtoull(env, nullptr, 10);
  auto raw = raw_loop(bootstrap, topics, partitions, count, "raw-out");
  castor::pipeline_stats copy_stats;
  auto copied = castor_run(castor::dags::copy, bootstrap, topics, count, batch,
                           "castor-copy-out", copy_stats);
  castor::pipeline_stats merge_stats;
  auto merged = castor_run(castor::dags::merge, bootstrap, topics, count, batch,
                           "castor-merge-out", merge_stats);
  for (auto* s : {&copy_stats, &merge_stats})
    if (s->released != count || s->delivered != count)
      die(fmt::format("castor counted {} released, {} delivered, expected {}",
                      s->released, s->delivered, count));

  fmt::print("\n{:<62} {:>9} {:>12} {:>8}\n", "case", "seconds", "messages/s", "vs raw");
  auto row = [&](const std::string& name, double seconds) {
    fmt::print("{:<62} {:>9.3f} {:>12.0f} {:>7.1f}%\n", name, seconds, count / seconds,
               100.0 * raw / seconds);
  };
  row("raw librdkafka consume->produce (unordered)", raw);
  row(fmt::format("castor copy: ordered replay, identity DAG (batch {})", batch), copied);
  row(fmt::format("castor merge: copy + 4 provenance headers (batch {})", batch), merged);
  fmt::print(
      "\ncopy: {} cycles, peak held {}, {} pauses; merge: {} cycles, peak held {}\n",
      copy_stats.cycles, copy_stats.held_peak, copy_stats.pauses, merge_stats.cycles,
      merge_stats.held_peak);
  return 0;
}
