// Lloyd's k-means with k-means++ seeding (random-sample seeding for very large
// k, where k-means++'s k sequential passes would dominate), deterministic for
// a seed. Used to initialize codebooks from encoder outputs.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace semcodec {

struct KMeansOptions {
  int64_t iterations = 10;
  uint64_t seed = 0;
  int64_t kmeanspp_max_k = 1024;  // above this, seed with a random sample
};

// x [N, d] float -> centroids [k, d] float32 (on x's device). Needs N >= 1;
// when N < k the extra centroids are jittered copies of data points.
at::Tensor kmeans(const at::Tensor& x, int64_t k, const KMeansOptions& opt = {});

}  // namespace semcodec
