// SPDX-License-Identifier: Apache-2.0
#include "castor/testing/io.hpp"

#include "castor/kafka/handles.hpp"

#include <fmt/format.h>

namespace castor::testing {

std::optional<std::string> header_of(const record& r, const std::string& name) {
  for (auto& h : r.headers)
    if (h.name == name)
      return h.value;
  return std::nullopt;
}

struct writer::impl {
  kafka::handle_ptr client;
};

writer::writer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

writer::~writer() = default;

result<std::unique_ptr<writer>> writer::make(const std::string& bootstrap,
                                             const kafka::properties& extra) {
  kafka::properties props{{"bootstrap.servers", bootstrap}, {"linger.ms", "5"}};
  for (auto& [k, v] : extra)
    props[k] = v;
  auto conf = kafka::make_conf(props, "test producer");
  if (!conf)
    return conf.error();
  auto client = kafka::make_client(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!client)
    return client.error();
  auto p = std::make_unique<impl>();
  p->client = std::move(*client);
  return std::unique_ptr<writer>{new writer(std::move(p))};
}

failure writer::write(const record& r) {
  auto* rk = impl_->client.get();
  const void* key = r.key ? r.key->data() : nullptr;
  size_t key_size = r.key ? r.key->size() : 0;
  void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr;
  size_t value_size = r.value ? r.value->size() : 0;
  int32_t partition = r.partition < 0 ? RD_KAFKA_PARTITION_UA : r.partition;
  int64_t time_ms = r.time_ms;
  while (true) {
    rd_kafka_headers_t* headers = nullptr;
    if (!r.headers.empty()) {
      headers = rd_kafka_headers_new(r.headers.size());
      for (auto& h : r.headers)
        rd_kafka_header_add(headers, h.name.c_str(), -1,
                            h.value ? h.value->data() : nullptr,
                            h.value ? static_cast<ssize_t>(h.value->size()) : 0);
    }
    auto err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(r.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_size),
        RD_KAFKA_V_VALUE(value, value_size), RD_KAFKA_V_TIMESTAMP(time_ms),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
      return {};
    if (headers != nullptr)
      rd_kafka_headers_destroy(headers);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      return kafka::to_failure(err, fmt::format("writing to {}", r.topic));
    rd_kafka_poll(rk, 10);
  }
}

failure writer::flush(std::chrono::milliseconds timeout) {
  auto err = rd_kafka_flush(impl_->client.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::to_failure(err, "flushing the test producer");
  return {};
}

failure produce(const std::string& bootstrap, const std::vector<record>& records,
                const kafka::properties& extra) {
  auto w = writer::make(bootstrap, extra);
  if (!w)
    return w.error();
  for (auto& r : records)
    if (auto err = (*w)->write(r))
      return err;
  return (*w)->flush();
}

namespace {

result<kafka::handle_ptr> reader_client(const std::string& bootstrap,
                                        const std::string& group) {
  auto conf = kafka::make_conf({{"bootstrap.servers", bootstrap},
                                {"group.id", group},
                                {"enable.auto.commit", "false"},
                                {"fetch.wait.max.ms", "10"}},
                               "test consumer");
  if (!conf)
    return conf.error();
  return kafka::make_client(RD_KAFKA_CONSUMER, std::move(*conf));
}

} // namespace

result<std::vector<record>> read(const std::string& bootstrap, const std::string& topic,
                                 size_t count, std::chrono::milliseconds timeout) {
  auto made = reader_client(bootstrap, "castor-test-reader");
  if (!made)
    return made.error();
  auto* rk = made->get();
  rd_kafka_poll_set_consumer(rk);
  auto partitions = kafka::partition_count(rk, topic, std::chrono::seconds{10});
  if (!partitions)
    return partitions.error();
  kafka::partition_list_ptr list{rd_kafka_topic_partition_list_new(*partitions)};
  for (int32_t p = 0; p < *partitions; ++p)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  if (auto err = rd_kafka_assign(rk, list.get()))
    return kafka::to_failure(err, fmt::format("assigning {}", topic));
  std::vector<record> result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (result.size() < count && std::chrono::steady_clock::now() < deadline) {
    kafka::message_ptr m{rd_kafka_consumer_poll(rk, 50)};
    if (!m || m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
      continue;
    record r;
    r.topic = topic;
    r.partition = m->partition;
    r.offset = m->offset;
    if (m->key != nullptr)
      r.key = std::string{static_cast<const char*>(m->key), m->key_len};
    if (m->payload != nullptr)
      r.value = std::string{static_cast<const char*>(m->payload), m->len};
    r.time_ms = rd_kafka_message_timestamp(m.get(), nullptr);
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m.get(), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* val = nullptr;
      size_t size = 0;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) ==
                         RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i)
        r.headers.push_back(header{name, val != nullptr
                                             ? std::optional<std::string>{std::string{
                                                   static_cast<const char*>(val), size}}
                                             : std::nullopt});
    }
    result.push_back(std::move(r));
  }
  rd_kafka_consumer_close(rk);
  return result;
}

result<std::vector<record>> read_all(const std::string& bootstrap,
                                     const std::string& topic,
                                     std::chrono::milliseconds timeout) {
  auto made = reader_client(bootstrap, "castor-test-reader");
  if (!made)
    return made.error();
  auto partitions = kafka::partition_count(made->get(), topic, std::chrono::seconds{10});
  if (!partitions)
    return partitions.error();
  auto marks = watermarks(bootstrap, topic, *partitions);
  if (!marks)
    return marks.error();
  size_t count = 0;
  for (auto [low, high] : *marks)
    count += static_cast<size_t>(high - low);
  return read(bootstrap, topic, count, timeout);
}

result<std::vector<std::pair<int64_t, int64_t>>>
watermarks(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto made = reader_client(bootstrap, "castor-test-watermarks");
  if (!made)
    return made.error();
  std::vector<std::pair<int64_t, int64_t>> result;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    if (auto err = rd_kafka_query_watermark_offsets(made->get(), topic.c_str(), p, &low,
                                                    &high, 10'000))
      return kafka::to_failure(err, fmt::format("watermarks of {}[{}]", topic, p));
    result.emplace_back(low, high);
  }
  return result;
}

result<std::vector<int64_t>> committed(const std::string& bootstrap,
                                       const std::string& group, const std::string& topic,
                                       int partitions) {
  auto made = reader_client(bootstrap, group);
  if (!made)
    return made.error();
  kafka::partition_list_ptr list{rd_kafka_topic_partition_list_new(partitions)};
  for (int32_t p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  if (auto err = rd_kafka_committed(made->get(), list.get(), 10000))
    return kafka::to_failure(err, fmt::format("committed offsets of {}", group));
  std::vector<int64_t> result;
  for (int i = 0; i < list->cnt; ++i)
    result.push_back(list->elems[i].offset);
  rd_kafka_consumer_close(made->get());
  return result;
}

} // namespace castor::testing
