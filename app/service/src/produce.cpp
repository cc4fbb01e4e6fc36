// SPDX-License-Identifier: Apache-2.0
// `castor produce`: timestamped records from lines, for backtest data (kcat
// cannot set message timestamps).

#include "castor/start_policy.hpp"
#include "castor/testing/io.hpp"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <iostream>

#include "commands.hpp"

namespace castor::service {

namespace {

// Milliseconds since the epoch, or an ISO 8601 time.
std::optional<int64_t> parse_time(std::string_view text) {
  int64_t ms = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (err == std::errc{} && end == text.data() + text.size())
    return ms;
  auto policy = start_policy::parse("absolute:" + std::string{text});
  if (!policy)
    return std::nullopt;
  return to_millis(policy->absolute);
}

} // namespace

int produce(const produce_options& options) {
  std::ifstream file;
  std::istream* in = &std::cin;
  std::string source = "standard input";
  if (!options.file.empty() && options.file != "-") {
    file.open(options.file);
    if (!file)
      return fail(
          make_error(ec::invalid_config, fmt::format("cannot read {}", options.file)));
    in = &file;
    source = options.file;
  }
  auto w = testing::writer::make(options.bootstrap, options.properties);
  if (!w)
    return fail(to_error(w.error()));
  size_t line_no = 0;
  size_t count = 0;
  std::string line;
  int code = exit_ok;
  caf::error error;
  while (std::getline(*in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty())
      continue;
    // TIMESTAMP<TAB>[PARTITION<TAB>]KEY<TAB>VALUE: the value is the rest of
    // the line (tabs included); an empty key is none.
    std::vector<std::string_view> fields;
    std::string_view rest{line};
    size_t wanted = options.partition_column ? 4 : 3;
    while (fields.size() + 1 < wanted) {
      auto tab = rest.find('\t');
      if (tab == std::string_view::npos)
        break;
      fields.push_back(rest.substr(0, tab));
      rest.remove_prefix(tab + 1);
    }
    fields.push_back(rest);
    auto where = fmt::format("{}:{}", source, line_no);
    if (fields.size() != wanted) {
      error = make_error(
          ec::deserialize_failed,
          fmt::format("{}: expected {} tab-separated fields ({}), found {}", where,
                      wanted,
                      options.partition_column ? "TIMESTAMP, PARTITION, KEY, VALUE"
                                               : "TIMESTAMP, KEY, VALUE",
                      fields.size()));
      break;
    }
    testing::record r;
    r.topic = options.topic;
    r.partition = -1;
    auto ts = parse_time(fields[0]);
    if (!ts || *ts <= 0) {
      error =
          make_error(ec::deserialize_failed,
                     fmt::format("{}: '{}' is not a timestamp (milliseconds since the "
                                 "epoch, above 0, or ISO 8601 such as "
                                 "2026-01-05T09:30:00.250Z)",
                                 where, fields[0]));
      break;
    }
    r.time_ms = *ts;
    size_t k = 1;
    if (options.partition_column) {
      auto p = fields[k++];
      int32_t partition = -1;
      auto [end, err] = std::from_chars(p.data(), p.data() + p.size(), partition);
      if (err != std::errc{} || end != p.data() + p.size() || partition < 0) {
        error = make_error(ec::deserialize_failed,
                           fmt::format("{}: '{}' is not a partition number", where, p));
        break;
      }
      r.partition = partition;
    }
    if (!fields[k].empty())
      r.key = std::string{fields[k]};
    r.value = std::string{fields[k + 1]};
    if (auto err = (*w)->write(r)) {
      error = to_error(err);
      break;
    }
    ++count;
  }
  // What was written before a bad line is delivered (and said).
  if (auto err = (*w)->flush(); err && !error)
    error = to_error(err);
  std::cerr << fmt::format(
      "castor: produced {} record(s) to '{}'{}\n", count, options.topic,
      error ? fmt::format(" (then stopped at line {})", line_no) : "");
  if (error)
    code = fail(error);
  return code;
}

} // namespace castor::service
