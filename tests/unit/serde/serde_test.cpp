// SPDX-License-Identifier: Apache-2.0
// Ready-made deserializers and serializers.

#include "castor/json.hpp"
#include "castor/kafka/consumed_message.hpp"
#include "castor/serde.hpp"

#include <catch2/catch.hpp>

#include <vector>

using castor::message_view;
using castor::producer_record;

namespace {

message_view view(std::optional<std::string_view> value, int64_t offset = 0,
                  std::optional<std::string_view> key = std::nullopt) {
  message_view m;
  m.topic = "in";
  m.partition = 2;
  m.offset = offset;
  m.key = key;
  m.value = value;
  return m;
}

} // namespace

TEST_CASE("strings and words deserializers read values and reject tombstones",
          "[serde]") {
  std::vector<message_view> ms{view("hello world"), view("  a\tb \n"), view("")};
  CHECK(castor::serde::strings()(ms) ==
        std::vector<std::string>{"hello world", "  a\tb \n", ""});
  CHECK(castor::serde::words()(ms) ==
        std::vector<std::string>{"hello", "world", "a", "b"});
  std::vector<message_view> bad{view("ok"), view(std::nullopt, 41)};
  try {
    castor::serde::strings()(bad);
    FAIL("no deserialize_error");
  } catch (const castor::deserialize_error& e) {
    CHECK(e.index() == 1);
    CHECK_THAT(e.what(), Catch::Contains("in[2] offset 41"));
  }
  CHECK_THROWS_AS(castor::serde::words()(bad), castor::deserialize_error);
  // word_views: the same words, pointing into the messages.
  auto views = castor::serde::word_views()(ms);
  CHECK(views == std::vector<std::string_view>{"hello", "world", "a", "b"});
  CHECK(views[0].data() == ms[0].value->data());
  CHECK_THROWS_AS(castor::serde::word_views()(bad), castor::deserialize_error);
}

TEST_CASE("words split like a character loop on any whitespace, any length and any "
          "byte",
          "[serde]") {
  // The splitter works 16 bytes at a time: words across chunk edges, runs
  // of whitespace, every C-locale whitespace, bytes >= 0x80 and NUL.
  const char alphabet[] = {'a',  'b',    ' ',    '\t', '\n',   '\r',   '\f',
                           '\v', '\x80', '\xff', '\0', '\x08', '\x0e', 'z'};
  auto reference = [](std::string_view text) {
    auto space = [](char c) {
      return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    };
    std::vector<std::string> out;
    std::string word;
    for (char c : text) {
      if (space(c)) {
        if (!word.empty())
          out.push_back(std::exchange(word, {}));
      } else {
        word += c;
      }
    }
    if (!word.empty())
      out.push_back(word);
    return out;
  };
  uint32_t seed = 7;
  auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  for (int round = 0; round < 3000; ++round) {
    std::string text(next() % 70, ' ');
    // Mostly letters, or mostly whitespace, or even.
    auto letters = next() % 3;
    for (auto& c : text)
      c = (next() % 3 < letters) ? "ab"[next() % 2] : alphabet[next() % sizeof(alphabet)];
    std::vector<message_view> ms{view(text)};
    INFO("text of " << text.size() << " bytes, round " << round);
    auto expected = reference(text);
    REQUIRE(castor::serde::words()(ms) == expected);
    auto views = castor::serde::word_views()(ms);
    REQUIRE(std::vector<std::string>(views.begin(), views.end()) == expected);
  }
}

TEST_CASE("records copy every message with its metadata, views copy nothing", "[serde]") {
  std::vector<castor::header> hs{{"h", "v"}, {"n", std::nullopt}};
  auto owned =
      castor::consumed_message::make(0, 7, castor::from_millis(1000), "k", "v", hs);
  std::vector<message_view> ms{owned.view("in", 3)};
  auto records = castor::serde::records()(ms);
  REQUIRE(records.size() == 1);
  CHECK(records[0].topic == "in");
  CHECK(records[0].partition == 3);
  CHECK(records[0].offset == 7);
  CHECK(records[0].time == castor::from_millis(1000));
  CHECK(records[0].key == "k");
  CHECK(records[0].value == "v");
  CHECK(records[0].headers == hs);
  auto views = castor::serde::views()(ms);
  REQUIRE(views.size() == 1);
  CHECK(views[0].value->data() == ms[0].value->data());
}

TEST_CASE("a message's headers copy in order, null values and repeated names kept, with "
          "room for more",
          "[serde]") {
  std::vector<castor::header> hs{{"a", "1"}, {"n", std::nullopt}, {"a", "2"}};
  auto owned = castor::consumed_message::make(0, 0, std::nullopt, "k", "v", hs);
  auto copied = owned.view("in", 0).headers.copy(4);
  CHECK(copied == hs);
  CHECK(copied.capacity() >= 7);
  CHECK(castor::consumed_message::make(0, 0, std::nullopt, "k", "v")
            .view("in", 0)
            .headers.copy()
            .empty());
}

TEST_CASE("a record's bytes borrow an input's without a copy; copies and changes own "
          "theirs, moves keep the borrow",
          "[serde]") {
  std::string input = "the bytes of an input message, longer than a short string";
  auto borrowed = castor::bytes::borrow(input);
  CHECK(borrowed.borrowed());
  CHECK(borrowed.data() == input.data());
  CHECK(borrowed == input);
  CHECK(borrowed.size() == input.size());
  castor::bytes copy = borrowed;
  CHECK_FALSE(copy.borrowed());
  CHECK(copy.data() != input.data());
  CHECK(copy == input);
  castor::bytes assigned;
  assigned = borrowed;
  CHECK_FALSE(assigned.borrowed());
  CHECK(assigned == borrowed);
  auto moved = std::move(borrowed);
  CHECK(moved.borrowed());
  CHECK(moved.data() == input.data());
  moved.resize(3);
  CHECK_FALSE(moved.borrowed());
  CHECK(moved == "the");
  CHECK(input.starts_with("the bytes")); // the input is never written
  castor::bytes owned = std::string{"own"};
  CHECK_FALSE(owned.borrowed());
  CHECK(owned == std::string_view{"own"});
  CHECK(owned.str() == "own");
  CHECK(castor::bytes{}.empty());
  // An empty view borrows as empty bytes (never a null pointer), and a
  // null C string is an empty value.
  auto none = castor::bytes::borrow(std::string_view{});
  CHECK_FALSE(none.borrowed());
  CHECK(none.data() != nullptr);
  CHECK(none.empty());
  CHECK(castor::bytes{static_cast<const char*>(nullptr)}.empty());
  // Moved onto, owned bytes become borrowed ones, and back.
  castor::bytes target = std::string{"owned before"};
  target = castor::bytes::borrow(input);
  CHECK(target.borrowed());
  CHECK(target.data() == input.data());
  target = castor::bytes{std::string{"owned again"}};
  CHECK_FALSE(target.borrowed());
  CHECK(target == "owned again");
}

TEST_CASE("JSON deserializers parse values and name the message they reject", "[serde]") {
  std::vector<message_view> ms{view(R"({"a": 1})"), view("[1, 2]")};
  auto docs = castor::serde::json()(ms);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0]["a"] == 1);
  CHECK(docs[1].size() == 2);
  std::vector<message_view> bad{view("{}"), view("{oops", 9)};
  try {
    castor::serde::json()(bad);
    FAIL("no deserialize_error");
  } catch (const castor::deserialize_error& e) {
    CHECK(e.index() == 1);
    CHECK_THAT(e.what(), Catch::Contains("invalid JSON at in[2] offset 9"));
  }
  std::vector<message_view> numbers{view("1"), view("2")};
  CHECK(castor::serde::json_as<int>()(numbers) == std::vector<int>{1, 2});
  std::vector<message_view> wrong{view("1"), view(R"("x")", 5)};
  CHECK_THROWS_WITH(castor::serde::json_as<int>()(wrong),
                    Catch::Contains("unexpected JSON at in[2] offset 5"));
}

TEST_CASE("serializers make records, and an empty topic means the sink's default",
          "[serde]") {
  std::vector<producer_record> out;
  castor::serde::strings_out()({"a", "b"}, out);
  castor::serde::key_values_out()({{"k", "v"}}, out);
  castor::serde::json_out()({nlohmann::json{{"x", 1}}}, out);
  REQUIRE(out.size() == 4);
  CHECK(out[0].value == "a");
  CHECK_FALSE(out[0].key.has_value());
  CHECK(out[0].topic.empty());
  CHECK(out[2].key == "k");
  CHECK(out[2].value == "v");
  CHECK(out[3].value == R"({"x":1})");
  producer_record tombstone;
  tombstone.topic = "t";
  tombstone.key = "k";
  std::vector<producer_record> passthrough;
  castor::serde::records_out()({tombstone}, passthrough);
  REQUIRE(passthrough.size() == 1);
  CHECK(passthrough[0] == tombstone);
}
