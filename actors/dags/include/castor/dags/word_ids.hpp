// SPDX-License-Identifier: Apache-2.0
#pragma once

// Word -> dense id (0, 1, 2, ... in order of first sight), the lookup that
// wordcount does once per word.
//
// Why not abseil's flat_hash_map<std::string, id>: measured on the
// benchmark's words (2-4 bytes), it spends ~38 ns per lookup hashing the
// string and comparing it with memcmp; flat_hash_map<uint64_t, id> with the
// word packed into the key, ~28 ns. This table packs a word of up to 8 bytes
// into one integer (without reading past its end) and keeps that integer in
// the slot, so a lookup is one multiply, one slot and one integer compare:
// ~16 ns. Longer words hash their bytes and compare with the stored word.
// Linear probing, at most half full.

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace castor::dags {

class word_ids {
public:
  using id = uint32_t;

  word_ids() : slots_(16) {}

  /// The word's id; a word not seen before gets the next one.
  id operator()(std::string_view w) {
    auto k = key(w);
    auto n = static_cast<uint32_t>(w.size());
    for (auto i = home(k);; i = (i + 1) & mask()) {
      auto& s = slots_[i];
      if (s.word == none)
        return add(s, k, n, w);
      if (s.key == k && s.size == n && (n <= 8 || words_[s.word] == w))
        return s.word;
    }
  }

  /// The word an id stands for.
  const std::string& word(id i) const { return words_[i]; }

  /// Distinct words seen.
  size_t size() const { return words_.size(); }

private:
  static constexpr id none = std::numeric_limits<id>::max();

  struct slot {
    uint64_t key = 0; // the word's bytes (up to 8) or the hash of its bytes
    uint32_t size = 0;
    id word = none;
  };

  static uint32_t load32(const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }

  /// Up to 8 bytes exactly, zero-padded ("a" and "a\0" share a key and a
  /// home slot; the size tells them apart);
  /// longer words, a hash. Reads only the word's own bytes.
  static uint64_t key(std::string_view w) {
    auto n = w.size();
    auto p = reinterpret_cast<const unsigned char*>(w.data());
    if (n >= 4 && n <= 8) {
      // Two 4-byte loads overlapping in the middle; the overlap's bits agree.
      uint64_t lo = load32(w.data());
      uint64_t hi = load32(w.data() + n - 4);
      return lo | (hi << ((n - 4) * 8));
    }
    if (n > 8)
      return std::hash<std::string_view>{}(w);
    if (n == 0)
      return 0;
    // 1-3 bytes: first, middle and last cover them all.
    return uint64_t{p[0]} | uint64_t{p[n / 2]} << (n / 2 * 8) |
           uint64_t{p[n - 1]} << ((n - 1) * 8);
  }

  size_t mask() const { return slots_.size() - 1; }

  /// Fibonacci hashing: the top bits of key * 2^64/phi.
  size_t home(uint64_t k) const {
    auto h = k * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h >> (64 - std::countr_zero(slots_.size())));
  }

  id add(slot& s, uint64_t k, uint32_t n, std::string_view w) {
    auto i = static_cast<id>(words_.size());
    s = slot{k, n, i};
    words_.emplace_back(w);
    if (words_.size() * 2 > slots_.size())
      grow();
    return i;
  }

  void grow() {
    std::vector<slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (auto& s : old) {
      if (s.word == none)
        continue;
      auto i = home(s.key);
      while (slots_[i].word != none)
        i = (i + 1) & mask();
      slots_[i] = s;
    }
  }

  std::vector<slot> slots_;
  std::vector<std::string> words_;
};

} // namespace castor::dags
