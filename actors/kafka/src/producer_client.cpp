// SPDX-License-Identifier: Apache-2.0
#include "castor/kafka/producer_client.hpp"

#include "castor/defaults.hpp"
#include "castor/kafka/handles.hpp"
#include "castor/logger.hpp"

#include <fmt/format.h>

namespace castor::kafka {

struct producer_client::impl {
  handle_ptr client;
  queue_ptr main_queue;
  /// Handles of the topics known in advance (kept for the client's life): a
  /// record for one of them is produced through its handle (by name,
  /// librdkafka looks the topic up under its client lock for every record).
  std::vector<topic_ptr> known_topics;

  rd_kafka_topic_t* known(const std::string& name) const noexcept {
    for (auto& t : known_topics)
      if (name == rd_kafka_topic_name(t.get()))
        return t.get();
    return nullptr;
  }
  std::function<void(const delivery&)> on_delivery;
  std::function<void()> wake;

  ~impl() {
    close(std::chrono::duration_cast<std::chrono::milliseconds>(defaults::close_timeout));
  }

  static void on_event(rd_kafka_t*, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (self->wake)
      self->wake();
  }

  // librdkafka's delivery report callback (runs inside rd_kafka_poll).
  static void on_report(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    delivery d;
    d.tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(msg->_private));
    d.topic = rd_kafka_topic_name(msg->rkt);
    d.partition = msg->partition;
    if (msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
      d.purged = true;
      d.error = failure(ec::produce_failed, "purged at a stop");
    } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      d.error = failure(ec::produce_failed,
                        fmt::format("delivery to {}[{}] failed: {}", d.topic, d.partition,
                                    rd_kafka_err2str(msg->err)));
    }
    if (self->on_delivery)
      self->on_delivery(d);
  }

  bool close(std::chrono::milliseconds timeout) {
    if (!client)
      return true;
    if (main_queue) {
      rd_kafka_queue_cb_event_enable(main_queue.get(), nullptr, nullptr);
      main_queue.reset();
    }
    known_topics.clear();
    // Whatever is still queued was reported by the flush; do not block here.
    rd_kafka_purge(client.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    on_delivery = nullptr;
    if (destroy_within(std::move(client), timeout))
      return true;
    logger()->warn("producer: librdkafka still closes its client (requests to a broker "
                   "that does not answer); castor goes on without it");
    return false;
  }
};

producer_client::producer_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

producer_client::~producer_client() = default;

result<std::unique_ptr<producer_client>> producer_client::make(
    const properties& given, const std::vector<std::string>& known_topics,
    std::function<void(const delivery&)> on_delivery, std::function<void()> wake) {
  auto p = std::make_unique<impl>();
  p->on_delivery = std::move(on_delivery);
  p->wake = std::move(wake);
  auto props = given;
  // Retries must not reorder or duplicate: idempotence, unless the user
  // chose the delivery settings themselves.
  if (!props.contains("enable.idempotence") && !props.contains("acks") &&
      !props.contains("request.required.acks") &&
      !props.contains("max.in.flight.requests.per.connection") &&
      !props.contains("max.in.flight"))
    props["enable.idempotence"] = "true";
  // A missing sink topic is an error naming it (checked at start-up with
  // the sources), not a topic the broker creates on the first record.
  if (!props.contains("allow.auto.create.topics"))
    props["allow.auto.create.topics"] = "false";
  auto conf = make_conf(props, "producer");
  if (!conf)
    return conf.error();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &impl::on_report);
  rd_kafka_conf_set_opaque(conf->get(), p.get());
  auto made = make_client(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!made)
    return made.error();
  p->client = std::move(*made);
  for (auto& t : known_topics)
    if (auto* rkt = rd_kafka_topic_new(p->client.get(), t.c_str(), nullptr))
      p->known_topics.emplace_back(rkt);
  p->main_queue.reset(rd_kafka_queue_get_main(p->client.get()));
  if (p->wake)
    rd_kafka_queue_cb_event_enable(p->main_queue.get(), &impl::on_event, p.get());
  return std::unique_ptr<producer_client>{new producer_client(std::move(p))};
}

produce_status producer_client::produce(const producer_record& r, uint64_t tag,
                                        failure& why) {
  auto* rk = impl_->client.get();
  rd_kafka_headers_t* headers = nullptr;
  if (!r.headers.empty() || r.origin) {
    headers = rd_kafka_headers_new(r.headers.size() + (r.origin ? 4 : 0));
    for (auto& h : r.headers)
      rd_kafka_header_add(headers, h.name.data(), static_cast<ssize_t>(h.name.size()),
                          h.value ? h.value->data() : nullptr,
                          h.value ? static_cast<ssize_t>(h.value->size()) : 0);
    if (r.origin)
      for_each_origin_header(*r.origin, [&](std::string_view name, std::string_view value) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()),
                            value.data(), static_cast<ssize_t>(value.size()));
      });
  }
  // librdkafka's macros cast their arguments: compute them first.
  int32_t partition = r.partition ? *r.partition : RD_KAFKA_PARTITION_UA;
  const void* key = r.key ? r.key->data() : nullptr;
  size_t key_size = r.key ? r.key->size() : 0;
  void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr;
  size_t value_size = r.value ? r.value->size() : 0;
  int64_t time_ms = r.time ? to_millis(*r.time) : 0;
  // The delivery report carries the tag back.
  void* opaque = reinterpret_cast<void*>(static_cast<uintptr_t>(tag));
  // Another topic gets a handle for this record (what producev does with
  // a topic name).
  topic_ptr other;
  auto* rkt = impl_->known(r.topic);
  if (rkt == nullptr) {
    other.reset(rd_kafka_topic_new(rk, r.topic.c_str(), nullptr));
    rkt = other.get();
  }
  auto err =
      rkt == nullptr
          ? rd_kafka_last_error()
          : rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_size),
                RD_KAFKA_V_VALUE(value, value_size), RD_KAFKA_V_TIMESTAMP(time_ms),
                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    return produce_status::queued; // librdkafka owns the headers now
  if (headers != nullptr)
    rd_kafka_headers_destroy(headers);
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
    return produce_status::queue_full;
  why = failure(ec::produce_failed,
                fmt::format("cannot produce a record ({} bytes of key, {} of value, {} "
                            "in all) to {}: {}",
                            key_size, value_size, record_wire_size(r), r.topic,
                            rd_kafka_err2str(err)));
  return produce_status::refused;
}

void producer_client::poll() {
  if (impl_->client)
    rd_kafka_poll(impl_->client.get(), 0);
}

uint64_t producer_client::outstanding() const {
  return impl_->client ? static_cast<uint64_t>(rd_kafka_outq_len(impl_->client.get()))
                       : 0;
}

bool producer_client::close(std::chrono::milliseconds timeout) {
  return impl_->close(timeout);
}

} // namespace castor::kafka
