// Fixed models shared by the fuzz target and its seed generator (pure C++).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "codec/entropy/bitstream.h"
#include "codec/entropy/coder_registry.h"

namespace semcodec::fuzz {

inline uint64_t lcg(uint64_t& s) {
  s = s * 6364136223846793005ULL + 1442695040888963407ULL;
  return s >> 33;
}

// Skewed indices: small values much more likely (roughly geometric).
inline std::vector<int32_t> skewed_indices(int64_t items, const std::vector<int64_t>& k, uint64_t seed) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < items; ++i)
    for (int64_t kk : k) {
      int64_t x = 0;
      while (x + 1 < kk && (lcg(seed) & 3) != 0) x += 1 + static_cast<int64_t>(lcg(seed) % 3);
      v.push_back(static_cast<int32_t>(x % kk));
    }
  return v;
}

inline const std::vector<int64_t>& fixed_alphabets() {
  static const std::vector<int64_t> k = {2, 3, 4, 5, 8, 16, 64, 256, 1024, 4096, 65536, 1};
  return k;
}

// Model 0: per-slot tables over mixed alphabets. Model 1: per-subspace, 3 x 4 slots, K = 16.
inline const std::vector<EntropyModel>& fixed_models() {
  static const std::vector<EntropyModel> m = [] {
    std::vector<EntropyModel> out;
    auto k = fixed_alphabets();
    auto idx = skewed_indices(400, k, 1);
    out.push_back(EntropyModel::fit(idx.data(), 400, static_cast<int64_t>(k.size()), k, TableMode::per_slot));
    std::vector<int64_t> k16(12, 16);
    auto idx2 = skewed_indices(300, k16, 2);
    out.push_back(EntropyModel::fit(idx2.data(), 300, 12, {16}, TableMode::per_subspace, 3, 4));
    return out;
  }();
  return m;
}

inline const Fingerprint& fixed_fingerprint() {
  static const Fingerprint fp = [] {
    Fingerprint f{};
    for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<uint8_t>(0xA0 + i);
    return f;
  }();
  return fp;
}

}  // namespace semcodec::fuzz
