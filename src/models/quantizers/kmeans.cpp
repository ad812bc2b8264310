#include "models/quantizers/kmeans.h"

#include <ATen/ATen.h>

#include <vector>

#include "models/quantizers/nearest_codeword.h"
#include "util/error.h"
#include "util/fmt_shape.h"
#include "util/random.h"

namespace semcodec {

namespace {
std::vector<int64_t> sample_rows(int64_t n, int64_t k, SplitMix64& rng) {
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int64_t i = 0; i < std::min(n, k); ++i) std::swap(perm[i], perm[i + rng.below(n - i)]);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < k; ++i) rows.push_back(perm[i % n]);
  return rows;
}

std::vector<int64_t> kmeanspp_rows(const at::Tensor& x, int64_t k, SplitMix64& rng) {
  const int64_t n = x.size(0);
  std::vector<int64_t> rows{static_cast<int64_t>(rng.below(n))};
  at::Tensor best = (x - x[rows[0]]).pow(2).sum(1).to(at::kDouble).cpu();
  for (int64_t j = 1; j < k; ++j) {
    const double* d = best.data_ptr<double>();
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += d[i];
    int64_t pick = static_cast<int64_t>(rng.below(n));
    if (total > 0) {
      double r = rng.uniform() * total, acc = 0;
      for (int64_t i = 0; i < n; ++i) {
        acc += d[i];
        if (acc >= r && d[i] > 0) { pick = i; break; }
      }
    }
    rows.push_back(pick);
    best = at::minimum(best, (x - x[pick]).pow(2).sum(1).to(at::kDouble).cpu());
  }
  return rows;
}
}  // namespace

at::Tensor kmeans(const at::Tensor& x_in, int64_t k, const KMeansOptions& opt) {
  require(x_in.dim() == 2 && x_in.size(0) > 0, "kmeans: need a non-empty [N, d] tensor, got {}", x_in.sizes());
  require(k >= 1, "kmeans: k must be >= 1");
  at::NoGradGuard no_grad;
  const at::Tensor x = x_in.to(at::kFloat).contiguous();
  const int64_t n = x.size(0);
  SplitMix64 rng(opt.seed);
  std::vector<int64_t> seeds = (k <= opt.kmeanspp_max_k && n > k) ? kmeanspp_rows(x, k, rng) : sample_rows(n, k, rng);
  at::Tensor c = x.index_select(0, at::tensor(seeds, at::kLong).to(x.device())).clone();
  if (n < k) {  // duplicates would never separate: jitter them deterministically
    std::vector<float> noise(static_cast<size_t>(k * x.size(1)));
    for (auto& v : noise) v = static_cast<float>(1e-3 * rng.normal());
    c += at::tensor(noise).view({k, x.size(1)}).to(x.device());
  }
  for (int64_t it = 0; it < opt.iterations; ++it) {
    at::Tensor assign = nearest_codeword(x, c);
    at::Tensor sums = at::zeros_like(c).index_add_(0, assign, x);
    at::Tensor counts = at::zeros({k}, x.options()).index_add_(0, assign, at::ones({n}, x.options()));
    at::Tensor filled = counts > 0;
    // Empty clusters keep their previous centroid.
    c = at::where(filled.unsqueeze(1), sums / counts.clamp_min(1).unsqueeze(1), c);
  }
  return c;
}

}  // namespace semcodec
