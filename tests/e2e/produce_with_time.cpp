// SPDX-License-Identifier: Apache-2.0
// Test tool: produces lines "topic partition timestamp_ms key value" from
// stdin with the given timestamps (kcat cannot set them).
// Usage: castor_test_produce BOOTSTRAP

#include "castor/kafka.hpp"

#include <iostream>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: castor_test_produce BOOTSTRAP < lines\n";
    return 2;
  }
  auto conf = castor::kafka::make_conf(
      {{"bootstrap.servers", argv[1]}, {"linger.ms", "5"}}, "test producer");
  if (!conf)
    return 1;
  auto rk = castor::kafka::make_client(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk)
    return 1;
  std::string line;
  size_t count = 0;
  while (std::getline(std::cin, line)) {
    std::istringstream in{line};
    std::string topic, key, value;
    int32_t partition = 0;
    int64_t ts = 0;
    if (!(in >> topic >> partition >> ts >> key >> value))
      continue;
    while (true) {
      auto err = rd_kafka_producev(rk->get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                   RD_KAFKA_V_PARTITION(partition),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_KEY(key.data(), key.size()),
                                   RD_KAFKA_V_VALUE(value.data(), value.size()),
                                   RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::cerr << rd_kafka_err2str(err) << '\n';
        return 1;
      }
      rd_kafka_poll(rk->get(), 10);
    }
    ++count;
  }
  if (rd_kafka_flush(rk->get(), 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return 1;
  std::cerr << "produced " << count << '\n';
  return 0;
}
