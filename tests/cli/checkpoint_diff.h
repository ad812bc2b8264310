// Comparing the parameters of two training runs' checkpoints (the CLI tests
// that train the same model in two ways: ranks, devices).
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "models/checkpoint.h"

namespace semcodec::test {

// Largest |a - b| over every model tensor, relative to the largest |a|.
inline double max_relative_difference(const Checkpoint& a, const Checkpoint& b) {
  REQUIRE(a.model.size() == b.model.size());
  double diff = 0, scale = 1e-12;
  for (const auto& [name, t] : a.model) {
    INFO(name);
    REQUIRE(b.model.count(name));
    const at::Tensor u = t.to(at::kDouble), v = b.model.at(name).to(at::kDouble);
    REQUIRE(u.sizes() == v.sizes());
    if (u.numel() == 0) continue;
    diff = std::max(diff, (u - v).abs().max().item<double>());
    scale = std::max(scale, u.abs().max().item<double>());
  }
  return diff / scale;
}

}  // namespace semcodec::test
