// SPDX-License-Identifier: Apache-2.0
#pragma once

// castor's built-in DAGs, bound to the sources and sinks a configuration
// names: `wordcount` (beavers' example) and `merge` (ordered copy of every
// source into one topic, the tool for checking ordered replay from outside).

#include "castor/pipeline.hpp"
#include "castor/registry.hpp"

#include <caf/expected.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace castor::dags {

using castor::sink_spec;
using castor::source_spec;

using factory = std::function<caf::expected<pipeline_definition_ptr>(
    const std::vector<source_spec>&, const std::vector<sink_spec>&)>;

/// Word count: one or more sources (values split on whitespace into words; the
/// words of every source count together), one sink
/// (key = word, value = the word's latest count, for every word seen in the
/// cycle).
caf::expected<pipeline_definition_ptr> wordcount(const std::vector<source_spec>& sources,
                                                 const std::vector<sink_spec>& sinks);

/// Merge: every message of every source, in release order, into the one
/// sink's topic: same key, value and headers, plus headers `castor.topic`,
/// `castor.partition`, `castor.offset` and `castor.timestamp` (ms), with the
/// source timestamp as the output timestamp.
caf::expected<pipeline_definition_ptr> merge(const std::vector<source_spec>& sources,
                                             const std::vector<sink_spec>& sinks);

/// Copy: like merge without the coordinate headers (key, value, headers and
/// timestamp of every message, in release order).
caf::expected<pipeline_definition_ptr> copy(const std::vector<source_spec>& sources,
                                            const std::vector<sink_spec>& sinks);

/// Positions: sources trades (JSON {"symbol", "quantity", "price"}, quantity
/// signed) and prices (JSON {"symbol", "price"}); sinks positions (the
/// symbols traded in a cycle: key symbol, JSON {"symbol", "position",
/// "cost"}) and marks (every minute of cycle time, each position marked to
/// market with the last price: JSON {"symbol", "time", "position", "price",
/// "value", "pnl"}).
caf::expected<pipeline_definition_ptr>
positions_dag(const std::vector<source_spec>& sources,
              const std::vector<sink_spec>& sinks);

/// Adds the built-in DAGs to `r` (a default-constructed registry has them).
void add_builtins(registry& r);

/// Builds the built-in DAG `name` for these sources and sinks; a DAG that
/// rejects them (wrong shape, a name used twice) is `ec::invalid_config`
/// saying why, never an exception.
caf::expected<pipeline_definition_ptr> make(const std::string& name,
                                            const std::vector<source_spec>& sources,
                                            const std::vector<sink_spec>& sinks);

} // namespace castor::dags
