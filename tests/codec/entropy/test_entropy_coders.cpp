// Round trips, code optimality and compression efficiency of the entropy coders.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <queue>

#include "codec/entropy/coder_registry.h"
#include "codec/entropy/raw_coder.h"
#include "codec/entropy/huffman_coder.h"
#include "codec/entropy/rans_coder.h"
#include "codec_test_util.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::Dist;
using semcodec::test::gen_indices;

namespace {

// Textbook Huffman (pointer tree + priority queue), independent of the coder's
// two-queue implementation. Returns code lengths (0 for zero frequencies).
std::vector<int> textbook_huffman(const std::vector<uint64_t>& f) {
  struct Node {
    uint64_t w;
    int left, right, sym;
  };
  std::vector<Node> nodes;
  using Item = std::pair<uint64_t, int>;  // weight, node
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> pq;
  for (size_t i = 0; i < f.size(); ++i)
    if (f[i] > 0) {
      nodes.push_back({f[i], -1, -1, static_cast<int>(i)});
      pq.push({f[i], static_cast<int>(nodes.size()) - 1});
    }
  std::vector<int> len(f.size(), 0);
  if (nodes.size() == 1) {
    len[static_cast<size_t>(nodes[0].sym)] = 1;
    return len;
  }
  while (pq.size() > 1) {
    Item a = pq.top();
    pq.pop();
    Item b = pq.top();
    pq.pop();
    nodes.push_back({a.first + b.first, a.second, b.second, -1});
    pq.push({a.first + b.first, static_cast<int>(nodes.size()) - 1});
  }
  std::vector<std::pair<int, int>> stack = {{pq.top().second, 0}};
  while (!stack.empty()) {
    auto [n, d] = stack.back();
    stack.pop_back();
    if (nodes[static_cast<size_t>(n)].sym >= 0) {
      len[static_cast<size_t>(nodes[static_cast<size_t>(n)].sym)] = d;
    } else {
      stack.push_back({nodes[static_cast<size_t>(n)].left, d + 1});
      stack.push_back({nodes[static_cast<size_t>(n)].right, d + 1});
    }
  }
  return len;
}

uint64_t cost(const std::vector<uint64_t>& f, const std::vector<uint8_t>& len) {
  uint64_t c = 0;
  for (size_t i = 0; i < f.size(); ++i) c += f[i] * len[i];
  return c;
}
uint64_t cost(const std::vector<uint64_t>& f, const std::vector<int>& len) {
  uint64_t c = 0;
  for (size_t i = 0; i < f.size(); ++i) c += f[i] * static_cast<uint64_t>(len[i]);
  return c;
}

// Kraft sum scaled by 2^32 (exact integer arithmetic).
uint64_t kraft_2_32(const std::vector<uint8_t>& len) {
  uint64_t k = 0;
  for (uint8_t l : len)
    if (l) k += uint64_t(1) << (32 - l);
  return k;
}

std::unique_ptr<EntropyCoder> coder_for(const std::string& name, const EntropyModel& m) {
  return make_coder(parse_coder_id(name), m);
}

}  // namespace

TEST_CASE("huffman code lengths match the textbook example", "[codec][huffman]") {
  std::vector<uint64_t> f = {45, 13, 12, 16, 9, 5};
  auto len = huffman_code_lengths(f);
  CHECK(std::vector<int>(len.begin(), len.end()) == std::vector<int>{1, 3, 3, 3, 4, 4});
  CHECK(textbook_huffman(f) == std::vector<int>{1, 3, 3, 3, 4, 4});
  CHECK(kraft_2_32(len) == (uint64_t(1) << 32));
  // Canonical codes: ordered by (length, symbol).
  auto codes = canonical_codes(len);
  CHECK(codes == std::vector<uint32_t>{0b0, 0b100, 0b101, 0b110, 0b1110, 0b1111});

  // Another worked example: {1,1,2,4} -> {3,3,2,1}.
  auto l2 = huffman_code_lengths({1, 1, 2, 4});
  CHECK(std::vector<int>(l2.begin(), l2.end()) == std::vector<int>{3, 3, 2, 1});
}

TEST_CASE("huffman degenerate distributions", "[codec][huffman]") {
  // One symbol with nonzero frequency gets a 1-bit code; zeros get none.
  auto one = huffman_code_lengths({0, 7, 0});
  CHECK(std::vector<int>(one.begin(), one.end()) == std::vector<int>{0, 1, 0});
  CHECK(huffman_code_lengths({0, 0}) == std::vector<uint8_t>{0, 0});
  // All equal: a power of two gives a flat code, otherwise lengths differ by one.
  auto eq8 = huffman_code_lengths(std::vector<uint64_t>(8, 5));
  CHECK(eq8 == std::vector<uint8_t>(8, 3));
  auto eq5 = huffman_code_lengths(std::vector<uint64_t>(5, 1));
  CHECK(kraft_2_32(eq5) == (uint64_t(1) << 32));
  CHECK(cost(std::vector<uint64_t>(5, 1), eq5) == 12);
  auto eq65536 = huffman_code_lengths(std::vector<uint64_t>(65536, 3));
  CHECK(eq65536 == std::vector<uint8_t>(65536, 16));
}

TEST_CASE("huffman matches an independent textbook huffman on random frequencies", "[codec][huffman]") {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    size_t k = 2 + rng() % 300;
    std::vector<uint64_t> f(k);
    for (auto& x : f) x = 1 + rng() % (trial % 3 == 0 ? 5 : 100000);
    auto len = huffman_code_lengths(f, 32);
    auto ref = textbook_huffman(f);
    INFO("trial " << trial << " k " << k);
    CHECK(cost(f, len) == cost(f, ref));  // lengths may differ on ties; cost is unique
    CHECK(kraft_2_32(len) == (uint64_t(1) << 32));
  }
}

TEST_CASE("huffman length limit (package-merge) stays optimal and complete", "[codec][huffman]") {
  // Fibonacci weights make an unlimited Huffman code as deep as the alphabet.
  std::vector<uint64_t> fib = {1, 1};
  while (fib.size() < 40) fib.push_back(fib[fib.size() - 1] + fib[fib.size() - 2]);
  auto unl = huffman_code_lengths(fib, 32);
  CHECK(*std::max_element(unl.begin(), unl.end()) == 32);  // would be 39 unlimited; 32 forces the limit too
  for (int limit : {6, 8, 12, 24}) {
    auto len = huffman_code_lengths(fib, limit);
    INFO("limit " << limit);
    CHECK(*std::max_element(len.begin(), len.end()) <= limit);
    CHECK(kraft_2_32(len) == (uint64_t(1) << 32));
    CHECK(cost(fib, len) >= cost(fib, textbook_huffman(fib)));
  }
  // Brute-force check of optimality on small alphabets: exhaustive search of
  // length vectors with Kraft sum <= 1 and max length <= limit.
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    size_t k = 3 + rng() % 4;
    int limit = ceil_log2(k) + static_cast<int>(rng() % 2);
    std::vector<uint64_t> f(k);
    for (auto& x : f) x = 1 + (rng() % 2 ? rng() % 1000 : rng() % 3);
    uint64_t best = UINT64_MAX;
    std::vector<int> l(k, 1);
    for (;;) {
      uint64_t kr = 0;
      for (int x : l) kr += uint64_t(1) << (limit - x);
      if (kr <= (uint64_t(1) << limit)) best = std::min(best, cost(f, l));
      size_t i = 0;
      while (i < k && l[i] == limit) l[i++] = 1;
      if (i == k) break;
      ++l[i];
    }
    auto len = huffman_code_lengths(f, limit);
    INFO("trial " << trial);
    CHECK(*std::max_element(len.begin(), len.end()) <= limit);
    CHECK(cost(f, len) == best);
  }
  // K = 65536 with very skewed counts: limited to 24 bits, complete.
  std::vector<uint64_t> z(65536);
  for (size_t i = 0; i < z.size(); ++i) z[i] = i < 30 ? (uint64_t(1) << (39 - i)) : 1;
  auto lz = huffman_code_lengths(z, 24);
  CHECK(*std::max_element(lz.begin(), lz.end()) <= 24);
  CHECK(kraft_2_32(lz) == (uint64_t(1) << 32));
}

TEST_CASE("every coder round-trips exactly for all alphabet sizes and distributions", "[codec][roundtrip]") {
  const int64_t slots = 6;
  for (int64_t K : {2, 3, 4, 8, 16, 64, 1024, 4096, 65536}) {
    for (Dist d : {Dist::uniform, Dist::geometric, Dist::zipf}) {
      std::vector<int64_t> k(slots, K);
      auto train = gen_indices(500, k, d, static_cast<uint64_t>(K) * 3 + static_cast<int>(d));
      auto test = gen_indices(40, k, d, static_cast<uint64_t>(K) * 5 + 1 + static_cast<int>(d));
      // Unseen symbols must still encode: force the largest index in.
      test[3] = static_cast<int32_t>(K - 1);
      test[slots + 1] = static_cast<int32_t>(K / 2);
      for (TableMode mode : {TableMode::shared, TableMode::per_slot, TableMode::per_subspace}) {
        EntropyModel m = EntropyModel::fit(train.data(), 500, slots, {K}, mode, 3, 2);
        for (std::string name : {"raw", "huffman", "rans"}) {
          if (name == "raw" && mode != TableMode::shared) continue;
          auto c = coder_for(name, m);
          INFO("K " << K << " dist " << test::dist_name(d) << " mode " << table_mode_name(mode) << " coder " << name);
          // One item and many items.
          for (int64_t i = 0; i < 40; ++i) {
            const int32_t* item = test.data() + i * slots;
            auto payload = c->encode_item(item);
            auto back = c->decode_item(payload);
            REQUIRE(back == std::vector<int32_t>(item, item + slots));
          }
        }
      }
    }
  }
}

TEST_CASE("raw coder uses ceil(log2 K) bits per slot", "[codec][raw]") {
  RawCoder c({2, 3, 4, 1, 65536, 1000});
  CHECK(c.item_bits() == 1 + 2 + 2 + 0 + 16 + 10);
  std::vector<int32_t> idx = {1, 2, 3, 0, 65535, 999};
  auto p = c.encode_item(idx.data());
  CHECK(p.size() == 4);
  CHECK(c.decode_item(p) == idx);
  // Out-of-range indices are rejected on both sides.
  idx[1] = 3;
  CHECK_THROWS_AS(c.encode_item(idx.data()), Error);
  std::vector<uint8_t> bad = {0xFF, 0xFF, 0xFF, 0xF0};  // slot 1 reads 3 >= K=3
  CHECK_THROWS_AS(c.decode_item(bad), Error);
}

TEST_CASE("K = 1 slots cost nothing and mixed alphabets work", "[codec][roundtrip]") {
  std::vector<int64_t> k = {1, 2, 1, 65536, 3, 1};
  auto train = gen_indices(200, k, Dist::geometric, 9);
  EntropyModel m = EntropyModel::fit(train.data(), 200, 6, k, TableMode::per_slot);
  for (std::string name : {"raw", "huffman", "rans"}) {
    auto c = coder_for(name, m);
    for (int64_t i = 0; i < 50; ++i) {
      const int32_t* item = train.data() + i * 6;
      CHECK(c->decode_item(c->encode_item(item)) == std::vector<int32_t>(item, item + 6));
    }
  }
  // All slots K = 1: raw/huffman payloads are empty, rANS only holds its state.
  EntropyModel ones = EntropyModel::uniform(4, {1});
  std::vector<int32_t> z(4, 0);
  CHECK(RawCoder(ones).encode_item(z.data()).empty());
  CHECK(HuffmanCoder(ones).encode_item(z.data()).empty());
  CHECK(RansCoder(ones).encode_item(z.data()).size() == static_cast<size_t>(kRansStateBytes));
  CHECK(HuffmanCoder(ones).decode_item(std::vector<uint8_t>{}) == z);
}

TEST_CASE("huffman payload size equals the sum of code lengths", "[codec][huffman]") {
  std::vector<int64_t> k(50, 16);
  auto train = gen_indices(1000, k, Dist::geometric, 3);
  EntropyModel m = EntropyModel::fit(train.data(), 1000, 50, {16}, TableMode::shared);
  HuffmanCoder h(m);
  for (int64_t i = 0; i < 20; ++i) {
    const int32_t* item = train.data() + i * 50;
    CHECK(static_cast<int64_t>(h.encode_item(item).size()) == (h.item_bits(item) + 7) / 8);
  }
}

TEST_CASE("rans output is within 1% of the ideal code length on long streams", "[codec][rans]") {
  struct Case {
    int64_t K;
    Dist d;
  };
  for (Case cs : {Case{2, Dist::geometric}, Case{4, Dist::geometric}, Case{16, Dist::geometric}, Case{16, Dist::uniform},
                  Case{256, Dist::zipf}, Case{4096, Dist::zipf}, Case{65536, Dist::zipf}, Case{65536, Dist::uniform}}) {
    const int64_t n = 200000;  // one long item (a long stream)
    std::vector<int64_t> k(1, cs.K);
    auto data = gen_indices(n, k, cs.d, 1234 + static_cast<uint64_t>(cs.K));
    // (a) Model fitted on the same data with +1 smoothing; compared with the
    // ideal length under its quantized probabilities.
    EntropyModel m = EntropyModel::fit(data.data(), n, 1, {cs.K}, TableMode::shared);
    RansCoder r(EntropyModel::from_counts(n, {cs.K}, TableMode::shared, 0, 0, {m.counts(0)}));
    auto payload = r.encode_item(data.data());
    REQUIRE(r.decode_item(payload) == data);
    const auto& f = r.freqs(0);
    const double total = std::ldexp(1.0, r.scale_bits(0));
    double ideal_q = 0;
    for (int32_t v : data) ideal_q -= std::log2(f[static_cast<size_t>(v)] / total);
    // (b) Counts that are (almost) the empirical distribution (x1024, +1 so
    // unseen symbols stay encodable); compared with the empirical entropy.
    std::vector<uint64_t> emp_counts(static_cast<size_t>(cs.K), 0);
    for (int32_t v : data) ++emp_counts[static_cast<size_t>(v)];
    double ideal_e = 0;
    for (int32_t v : data) ideal_e -= std::log2(static_cast<double>(emp_counts[static_cast<size_t>(v)]) / static_cast<double>(n));
    for (auto& c : emp_counts) c = c * 1024 + 1;
    RansCoder re(EntropyModel::from_counts(n, {cs.K}, TableMode::shared, 0, 0, {emp_counts}));
    auto payload_e = re.encode_item(data.data());
    REQUIRE(re.decode_item(payload_e) == data);
    double bits = 8.0 * static_cast<double>(payload.size());
    double bits_e = 8.0 * static_cast<double>(payload_e.size());
    INFO("K " << cs.K << " " << test::dist_name(cs.d) << ": " << bits << " bits vs ideal(quantized) " << ideal_q
              << "; " << bits_e << " bits vs ideal(empirical) " << ideal_e);
    CHECK(bits <= ideal_q * 1.01 + 8 * 8);
    CHECK(bits_e <= ideal_e * 1.01 + 8 * 8);
    CHECK(bits_e >= ideal_e * 0.99);  // sanity: cannot beat the empirical entropy by much
  }
}

TEST_CASE("rans frequency quantization", "[codec][rans]") {
  CHECK(rans_scale_bits(2) == 16);
  CHECK(rans_scale_bits(4096) == 20);
  CHECK(rans_scale_bits(65536) == 24);
  // Every symbol keeps frequency >= 1 and the total is exact, even for extreme skew.
  std::vector<uint64_t> c(65536, 1);
  c[0] = uint64_t(1) << 39;
  auto f = rans_quantize(c, 24);
  uint64_t sum = 0;
  for (uint32_t x : f) {
    CHECK(x >= 1);
    sum += x;
  }
  CHECK(sum == (uint64_t(1) << 24));
  auto g = rans_quantize({1, 1, 1}, 16);
  CHECK(g[0] + g[1] + g[2] == 65536u);
  CHECK_THROWS_AS(rans_quantize(std::vector<uint64_t>(65537, 1), 16), Error);
}

TEST_CASE("rans with many short items stays close to the ideal plus the per-item flush", "[codec][rans]") {
  const int64_t slots = 200, items = 300;
  std::vector<int64_t> k(slots, 16);
  auto train = gen_indices(2000, k, Dist::geometric, 77);
  auto test = gen_indices(items, k, Dist::geometric, 78);
  for (TableMode mode : {TableMode::shared, TableMode::per_slot}) {
    EntropyModel m = EntropyModel::fit(train.data(), 2000, slots, {16}, mode);
    RansCoder r(m);
    HuffmanCoder h(m);
    double ideal = 0;
    size_t bytes = 0, hbytes = 0;
    for (int64_t i = 0; i < items; ++i) {
      const int32_t* item = test.data() + i * slots;
      auto p = r.encode_item(item);
      bytes += p.size();
      hbytes += h.encode_item(item).size();
      REQUIRE(r.decode_item(p) == std::vector<int32_t>(item, item + slots));
      for (int64_t s = 0; s < slots; ++s) {
        int64_t t = r.table_of(s);
        ideal -= std::log2(r.freqs(t)[static_cast<size_t>(item[s])] / std::ldexp(1.0, r.scale_bits(t)));
      }
    }
    INFO(table_mode_name(mode) << ": rans " << bytes << " bytes, huffman " << hbytes << ", ideal " << ideal / 8);
    CHECK(8.0 * static_cast<double>(bytes) <= ideal * 1.01 + 8.0 * kRansStateBytes * items + 8.0 * items);
    CHECK(bytes < static_cast<size_t>(items * slots * 4 / 8));  // beats raw (4 bits/slot)
  }
}

TEST_CASE("entropy model serialization round trips and validates", "[codec][model]") {
  std::vector<int64_t> k(12, 64);
  auto train = gen_indices(300, k, Dist::zipf, 5);
  for (TableMode mode : {TableMode::shared, TableMode::per_subspace, TableMode::per_position, TableMode::per_slot}) {
    EntropyModel m = EntropyModel::fit(train.data(), 300, 12, {64}, mode, 3, 4);
    auto flat = m.serialize();
    EntropyModel back = EntropyModel::deserialize(flat);
    CHECK(back == m);
    CHECK(EntropyModel::from_bytes(m.to_bytes().data(), m.to_bytes().size()) == m);
    CHECK(back.fingerprint_hex() == m.fingerprint_hex());
    CHECK(back.fingerprint_hex().size() == 64);
    // Identical coders: same payloads.
    for (std::string name : {"huffman", "rans"}) {
      auto a = coder_for(name, m), b = coder_for(name, back);
      for (int64_t i = 0; i < 10; ++i) CHECK(a->encode_item(train.data() + i * 12) == b->encode_item(train.data() + i * 12));
    }
    // Every truncation fails cleanly.
    for (size_t n = 0; n < flat.size(); ++n) {
      std::vector<int64_t> t(flat.begin(), flat.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK_THROWS_AS(EntropyModel::deserialize(t), Error);
    }
    // Trailing values, and each header/size field perturbed, fail cleanly or give a valid model.
    auto extra = flat;
    extra.push_back(1);
    CHECK_THROWS_AS(EntropyModel::deserialize(extra), Error);
    for (size_t i = 0; i < flat.size(); ++i)
      for (int64_t delta : {int64_t(-1), int64_t(1), int64_t(1) << 40, -(int64_t(1) << 62)}) {
        auto bad = flat;
        bad[i] += delta;
        try {
          EntropyModel x = EntropyModel::deserialize(bad);
          CHECK(x.slots() >= 1);  // a count changed within range is still a valid model
        } catch (const Error&) {
        }
      }
  }
  // Specific invalid inputs.
  auto flat = EntropyModel::uniform(4, {8}).serialize();
  auto bad = flat;
  bad[0] = 0;
  CHECK_THROWS_WITH(EntropyModel::deserialize(bad), Catch::Contains("magic"));
  bad = flat;
  bad[1] = 2;
  CHECK_THROWS_WITH(EntropyModel::deserialize(bad), Catch::Contains("version"));
  bad = flat;
  bad[bad.size() - 1] = 0;
  CHECK_THROWS_WITH(EntropyModel::deserialize(bad), Catch::Contains("count"));
  bad = flat;
  bad[7] = 70000;
  CHECK_THROWS_AS(EntropyModel::deserialize(bad), Error);
}

TEST_CASE("entropy model fit validates its inputs", "[codec][model]") {
  std::vector<int32_t> idx = {0, 1, 2, 3};
  CHECK_THROWS_WITH(EntropyModel::fit(idx.data(), 1, 4, {3}, TableMode::per_slot), Catch::Contains("outside"));
  CHECK_THROWS_AS(EntropyModel::fit(idx.data(), 1, 4, {4}, TableMode::per_subspace, 3, 2), Error);
  CHECK_THROWS_AS(EntropyModel::fit(idx.data(), 1, 4, {4, 8, 4, 8}, TableMode::shared), Error);
  CHECK_THROWS_AS(EntropyModel::fit(idx.data(), 1, 4, {0}, TableMode::shared), Error);
  CHECK_THROWS_AS(EntropyModel::fit(idx.data(), 1, 4, {65537}, TableMode::shared), Error);
  // per_subspace with alphabets differing per subspace is fine.
  EntropyModel m = EntropyModel::fit(idx.data(), 1, 4, {4, 8, 4, 8}, TableMode::per_subspace, 2, 2);
  CHECK(m.num_tables() == 2);
  CHECK(m.counts(0) == std::vector<uint64_t>{2, 1, 2, 1});  // slots 0 and 2: values 0, 2 (+1 smoothing)
  CHECK(m.table_of(3) == 1);
  EntropyModel p = EntropyModel::fit(idx.data(), 1, 4, {4}, TableMode::per_position, 2, 2);
  CHECK(p.table_of(1) == 0);
  CHECK(p.table_of(2) == 1);
  CHECK(parse_table_mode("per_position") == TableMode::per_position);
  CHECK_THROWS_AS(parse_table_mode("bogus"), Error);
}
