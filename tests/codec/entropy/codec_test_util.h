// Data generators shared by the codec tests (deterministic, pure C++).
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "codec/entropy/coder_registry.h"

namespace semcodec::test {

enum class Dist { uniform, geometric, zipf };
inline const char* dist_name(Dist d) {
  return d == Dist::uniform ? "uniform" : d == Dist::geometric ? "geometric" : "zipf";
}

// items x slots indices, slot s in [0, k[s]).
inline std::vector<int32_t> gen_indices(int64_t items, const std::vector<int64_t>& k, Dist d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(items) * k.size());
  for (int64_t i = 0; i < items; ++i)
    for (size_t s = 0; s < k.size(); ++s) {
      int64_t kk = k[s];
      int64_t v = 0;
      if (d == Dist::uniform) {
        v = static_cast<int64_t>(rng() % static_cast<uint64_t>(kk));
      } else if (d == Dist::geometric) {
        std::geometric_distribution<int64_t> g(kk <= 4 ? 0.6 : 0.15);
        v = g(rng) % kk;
      } else {
        // Zipf(1.1) by inverse transform on a continuous approximation.
        double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        double x = std::pow(static_cast<double>(kk) + 1.0, u);  // log-uniform in [1, k+1)
        v = static_cast<int64_t>(x) - 1;
        if (v >= kk) v = kk - 1;
        if (v < 0) v = 0;
      }
      out.push_back(static_cast<int32_t>(v));
    }
  return out;
}

}  // namespace semcodec::test
