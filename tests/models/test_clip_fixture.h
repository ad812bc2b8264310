// Access to tests/fixtures/clip-tiny (goldens of OpenAI's reference CLIP code
// on a tiny random-weight model; tests/fixtures/README.md) for the CLIP tests.
#pragma once
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <string>

#include "data/npy.h"
#include "test_support.h"

namespace semcodec::test {

// Path of a file of the fixture; a clone always has it.
inline std::string clip_fixture(const std::string& rel) { return fixture_path("clip-tiny/" + rel); }

inline at::Tensor read_npy_tensor(const std::string& path) { return npy_to_tensor(read_npy(path), false, path); }

struct Agreement {
  double max_abs_diff = 0, max_abs_golden = 0, min_row_cosine = 1;
  double relative() const { return max_abs_diff / max_abs_golden; }
};

// How closely `actual` matches `golden` (both [N, D]), in double precision.
inline Agreement agreement(const at::Tensor& actual, const at::Tensor& golden) {
  const at::Tensor a = actual.to(at::kDouble).cpu(), g = golden.to(at::kDouble).cpu();
  Agreement r;
  r.max_abs_diff = (a - g).abs().max().item<double>();
  r.max_abs_golden = g.abs().max().item<double>();
  r.min_row_cosine = at::cosine_similarity(a, g, 1).min().item<double>();
  return r;
}

}  // namespace semcodec::test
