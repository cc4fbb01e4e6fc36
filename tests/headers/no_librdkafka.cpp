// SPDX-License-Identifier: Apache-2.0
// What DAG authors and embedders include brings in neither librdkafka's
// headers nor the mock cluster's: the seam keeps them inside castor::kafka.
// (This file is compiled into castor_actor_tests; including rdkafka.h from
// any of these headers breaks the build.)

#include "castor/actors.hpp"
#include "castor/consumer.hpp"
#include "castor/dag.hpp"
#include "castor/executor.hpp"
#include "castor/json.hpp"
#include "castor/orchestrator.hpp"
#include "castor/pipeline.hpp"
#include "castor/producer.hpp"
#include "castor/protocol.hpp"
#include "castor/record.hpp"
#include "castor/scheduler.hpp"
#include "castor/serde.hpp"
#include "castor/supervisor.hpp"
#include "castor/test_bench.hpp"

#ifdef RD_KAFKA_VERSION
#error "a public header above castor::kafka includes librdkafka/rdkafka.h"
#endif
