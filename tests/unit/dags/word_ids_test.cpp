// SPDX-License-Identifier: Apache-2.0
// wordcount's word -> id table.

#include "castor/dags/word_ids.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

using castor::dags::word_ids;

TEST_CASE("word ids are dense, stable and in order of first sight", "[word_ids]") {
  // Against std::map over random words: 0-20 bytes from a small alphabet with
  // NUL and high bytes, so short words collide in bytes but differ in size
  // ("a" and "a\0"), and enough of them that the table grows many times.
  const char alphabet[] = {'a', 'b', '\0', ' ', '\xff', '\x80'};
  uint64_t seed = 42;
  auto next = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return seed >> 33;
  };
  word_ids ids;
  std::map<std::string, word_ids::id> expected;
  for (int round = 0; round < 200'000; ++round) {
    std::string w(next() % 21, 'a');
    for (auto& c : w)
      c = alphabet[next() % sizeof(alphabet)];
    auto [it, fresh] =
        expected.try_emplace(w, static_cast<word_ids::id>(expected.size()));
    INFO("round " << round << ", word of " << w.size() << " bytes");
    REQUIRE(ids(w) == it->second);
    REQUIRE(ids.word(it->second) == w);
  }
  CHECK(ids.size() == expected.size());
  CHECK(expected.size() > 10'000);
  for (auto& [w, id] : expected)
    REQUIRE(ids(w) == id);
  CHECK(ids.size() == expected.size());
}

TEST_CASE("word ids read only the word's own bytes", "[word_ids]") {
  // Each word ends where a page that cannot be read begins.
  auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto* mem = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(mem != MAP_FAILED);
  REQUIRE(mprotect(mem + page, page, PROT_NONE) == 0);
  auto* end = mem + page;
  std::fill(mem, end, 'x');
  word_ids ids;
  for (size_t n = 0; n <= 20; ++n) {
    std::string_view w{end - n, n};
    CHECK(ids(w) == n);
    CHECK(ids.word(static_cast<word_ids::id>(n)) == std::string(n, 'x'));
  }
  munmap(mem, 2 * page);
}
