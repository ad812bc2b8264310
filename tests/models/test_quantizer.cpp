// nearest_codeword and SharedCodebookPQ against hand-written references:
// brute-force double-precision nearest-neighbour loops, hand-derived loss
// gradients, constructed latents whose codewords are known in advance.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "models/quantizers/nearest_codeword.h"
#include "models/quantizers/shared_codebook_pq.h"

using semcodec::SharedCodebookPQ;

namespace {

std::vector<double> to_vec(const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

double sqdist(const double* a, const double* b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

struct BruteResult {
  std::vector<int64_t> index;
  std::vector<double> best;  // exact squared distance of the nearest codeword
};

BruteResult brute_force(const at::Tensor& x, const at::Tensor& cb) {
  const int64_t m = x.size(0), k = cb.size(0), d = cb.size(1);
  auto xv = to_vec(x), cv = to_vec(cb);
  BruteResult r;
  for (int64_t i = 0; i < m; ++i) {
    double best = std::numeric_limits<double>::infinity();
    int64_t arg = -1;
    for (int64_t j = 0; j < k; ++j) {
      double dist = sqdist(&xv[i * d], &cv[j * d], d);
      if (dist < best) best = dist, arg = j;
    }
    r.index.push_back(arg);
    r.best.push_back(best);
  }
  return r;
}

// Compares `got` with the brute-force search. nearest_codeword documents
// float32 distances, so a different index is accepted only when it is an
// exact near-tie: its true distance exceeds the optimum by less than float32
// rounding of ||c||^2 - 2 x.c can account for. Returns the number of exact matches.
int64_t check_against_brute(const at::Tensor& got, const at::Tensor& x, const at::Tensor& cb) {
  const int64_t m = x.size(0), d = cb.size(1), k = cb.size(0);
  REQUIRE(got.scalar_type() == at::kLong);
  REQUIRE(got.dim() == 1);
  REQUIRE(got.size(0) == m);
  BruteResult ref = brute_force(x, cb);
  auto xv = to_vec(x), cv = to_vec(cb);
  auto gv = got.contiguous();
  const int64_t* g = gv.data_ptr<int64_t>();
  int64_t exact = 0;
  for (int64_t i = 0; i < m; ++i) {
    REQUIRE(g[i] >= 0);
    REQUIRE(g[i] < k);
    if (g[i] == ref.index[i]) {
      ++exact;
      continue;
    }
    double xn = sqdist(&xv[i * d], std::vector<double>(d, 0.0).data(), d);
    double cn = sqdist(&cv[g[i] * d], std::vector<double>(d, 0.0).data(), d);
    double gap = sqdist(&xv[i * d], &cv[g[i] * d], d) - ref.best[i];
    INFO("row " << i << " got " << g[i] << " want " << ref.index[i] << " gap " << gap);
    CHECK(gap <= 1e-5 * (1.0 + xn + cn));
  }
  return exact;
}

void check_nearest(int64_t k, int64_t d, int64_t m, uint64_t seed) {
  INFO("K=" << k << " d=" << d << " M=" << m);
  at::manual_seed(seed);
  at::Tensor cb = at::rand({k, d}) * 2 - 1;
  at::Tensor x = at::randn({m, d}) * 0.6;
  at::Tensor idx = semcodec::nearest_codeword(x, cb);
  int64_t exact = check_against_brute(idx, x, cb);
  // Near-ties (below float32 resolution of the distances) only happen when
  // codewords are dense: d=1 with K in the thousands (spacing ~1e-4 or less).
  // There only the gap check above applies; everywhere else the index is exact.
  if (d >= 4 || k <= 256) CHECK(exact == m);

  // Tiny tiles: one row per tile, and 3 rows per tile (M not a multiple).
  at::Tensor one_row = semcodec::nearest_codeword(x, cb, /*max_tile_bytes=*/1);
  CHECK(at::equal(one_row, idx));
  at::Tensor three_rows = semcodec::nearest_codeword(x, cb, 3 * 4 * k + 1);
  CHECK(at::equal(three_rows, idx));
}

}  // namespace

TEST_CASE("nearest_codeword equals a brute-force search", "[models][quantizer]") {
  struct Combo { int64_t k, d, m; };
  const std::vector<Combo> combos = {
      {2, 1, 400},     {2, 16, 200},   {3, 4, 400},     {4, 16, 400},  {4, 128, 100},  {16, 1, 300},
      {16, 128, 200},  {256, 4, 300},  {256, 16, 300},  {256, 128, 50}, {4096, 1, 100}, {4096, 4, 120},
      {4096, 16, 100}, {65536, 1, 64}, {65536, 16, 64}, {65536, 128, 8},
  };
  uint64_t seed = 1;
  for (const auto& c : combos) check_nearest(c.k, c.d, c.m, seed++);
}

TEST_CASE("nearest_codeword: double input, non-contiguous input, empty input", "[models][quantizer]") {
  at::manual_seed(77);
  at::Tensor cb = at::randn({64, 8}, at::kDouble);
  at::Tensor x = at::randn({100, 8}, at::kDouble);
  check_against_brute(semcodec::nearest_codeword(x, cb), x, cb);

  at::Tensor wide = at::randn({8, 100});  // x = wide.t() is non-contiguous
  check_against_brute(semcodec::nearest_codeword(wide.t(), cb.to(at::kFloat)), wide.t(), cb);

  at::Tensor none = semcodec::nearest_codeword(at::zeros({0, 8}), cb.to(at::kFloat));
  CHECK(none.numel() == 0);
  CHECK(none.scalar_type() == at::kLong);
  CHECK_THROWS(semcodec::nearest_codeword(at::zeros({3, 7}), cb.to(at::kFloat)));
}

TEST_CASE("nearest_codeword finds exact codewords", "[models][quantizer]") {
  // Each query is a codeword itself: the answer is that codeword's row.
  at::manual_seed(5);
  at::Tensor cb = at::randn({1000, 16});
  at::Tensor pick = at::randperm(1000).narrow(0, 0, 200);
  at::Tensor x = cb.index_select(0, pick);
  CHECK(at::equal(semcodec::nearest_codeword(x, cb), pick));
  CHECK(at::equal(semcodec::nearest_codeword(x, cb, 1), pick));
}

// ---------------------------------------------------------------------------
// SharedCodebookPQ

TEST_CASE("SharedCodebookPQ: indices are the brute-force nearest codeword of each sub-vector", "[models][quantizer]") {
  const int64_t n = 3, p = 25, c = 32, d_sub = 8, k = 16, subspaces = c / d_sub;
  SharedCodebookPQ pq(c, d_sub, k);
  REQUIRE(pq->subspaces() == subspaces);
  REQUIRE(pq->codebook.sizes() == at::IntArrayRef({k, d_sub}));
  at::manual_seed(11);
  at::Tensor z = at::randn({n, p, c}) * 0.5;
  auto out = pq->forward(z);
  REQUIRE(out.indices.sizes() == at::IntArrayRef({n, p * subspaces}));
  REQUIRE(out.quantized.sizes() == at::IntArrayRef({n, p, c}));

  auto zv = to_vec(z), cv = to_vec(pq->codebook);
  auto iv = out.indices.contiguous();
  auto qv = to_vec(out.quantized);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t pos = 0; pos < p; ++pos)
      for (int64_t s = 0; s < subspaces; ++s) {
        const double* sub = &zv[(i * p + pos) * c + s * d_sub];
        double best = std::numeric_limits<double>::infinity();
        int64_t arg = -1;
        for (int64_t j = 0; j < k; ++j) {
          double dist = sqdist(sub, &cv[j * d_sub], d_sub);
          if (dist < best) best = dist, arg = j;
        }
        int64_t got = iv[i][pos * subspaces + s].item<int64_t>();
        INFO("item " << i << " position " << pos << " subspace " << s);
        CHECK(got == arg);
        // The quantized value is that codeword (straight-through keeps the value of q).
        for (int64_t j = 0; j < d_sub; ++j)
          CHECK(std::abs(qv[(i * p + pos) * c + s * d_sub + j] - cv[got * d_sub + j]) < 1e-6);
      }
}

TEST_CASE("SharedCodebookPQ: slot order is position * subspaces + subspace, and lookup inverts it", "[models][quantizer]") {
  const int64_t n = 2, p = 25, c = 24, d_sub = 6, k = 10, subspaces = c / d_sub;
  SharedCodebookPQ pq(c, d_sub, k);
  // Well separated codewords: codeword j = 3 * j * (1, -1, 1, ...) plus a one-hot mark.
  {
    at::NoGradGuard g;
    for (int64_t j = 0; j < k; ++j)
      for (int64_t e = 0; e < d_sub; ++e) pq->codebook[j][e] = 3.0 * j * ((e % 2) ? -1.0 : 1.0) + (e == j % d_sub);
  }
  // The codeword that item i, position pos, sub-space s must pick.
  auto want = [&](int64_t i, int64_t pos, int64_t s) { return (7 * i + 3 * pos + 5 * s + pos * s) % k; };
  at::manual_seed(3);
  at::Tensor z = at::zeros({n, p, c});
  at::Tensor expected = at::zeros({n, p * subspaces}, at::kLong);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t pos = 0; pos < p; ++pos)
      for (int64_t s = 0; s < subspaces; ++s) {
        int64_t w = want(i, pos, s);
        z[i][pos].narrow(0, s * d_sub, d_sub).copy_(pq->codebook[w].detach() + 0.05 * at::randn({d_sub}));
        expected[i][pos * subspaces + s] = w;
      }
  auto out = pq->forward(z);
  CHECK(at::equal(out.indices, expected));

  at::Tensor q = pq->lookup(expected, p);
  REQUIRE(q.sizes() == at::IntArrayRef({n, p, c}));
  bool all_match = true;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t pos = 0; pos < p; ++pos)
      for (int64_t s = 0; s < subspaces; ++s)
        all_match &= at::equal(q[i][pos].narrow(0, s * d_sub, d_sub), pq->codebook[want(i, pos, s)].detach());
  CHECK(all_match);
  CHECK(at::allclose(out.quantized.detach(), q, 0, 1e-6));
  CHECK_THROWS(pq->lookup(expected.narrow(1, 0, 10), p));  // wrong slot count

  // subvectors(): the same order, row = slot.
  at::Tensor sub = pq->subvectors(z);
  REQUIRE(sub.sizes() == at::IntArrayRef({n * p * subspaces, d_sub}));
  CHECK(at::equal(sub[(1 * p + 7) * subspaces + 2], z[1][7].narrow(0, 2 * d_sub, d_sub)));
  CHECK(at::equal(out.subvectors, sub));
  CHECK_FALSE(out.subvectors.requires_grad());
}

TEST_CASE("SharedCodebookPQ: straight-through and loss gradients", "[models][quantizer]") {
  const int64_t n = 2, p = 25, c = 16, d_sub = 4, k = 8;
  const double numel = static_cast<double>(n * p * c);
  SharedCodebookPQ pq(c, d_sub, k);
  at::manual_seed(21);
  at::Tensor z = (at::randn({n, p, c}) * 0.5).requires_grad_();

  SECTION("quantized passes the gradient to z unchanged and nothing to the codebook") {
    auto out = pq->forward(z);
    at::Tensor w = at::randn({n, p, c});
    (w * out.quantized).sum().backward();
    REQUIRE(z.grad().defined());
    CHECK(at::equal(z.grad(), w));
    CHECK((!pq->codebook.grad().defined() || pq->codebook.grad().abs().max().item<float>() == 0.0f));
  }

  // Hand-derived gradients, in double.
  auto out = pq->forward(z);
  auto zv = to_vec(z), cv = to_vec(pq->codebook);
  auto idx = out.indices.reshape({-1}).contiguous();
  const int64_t rows = n * p * c / d_sub;
  std::vector<double> q(zv.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < d_sub; ++j) q[r * d_sub + j] = cv[idx[r].item<int64_t>() * d_sub + j];

  // Values of the two losses: mean squared distance to the chosen codewords.
  double mse = 0;
  for (size_t i = 0; i < zv.size(); ++i) mse += (q[i] - zv[i]) * (q[i] - zv[i]);
  mse /= numel;
  CHECK(out.codebook_loss.item<double>() == Approx(mse).epsilon(1e-5));
  CHECK(out.commitment_loss.item<double>() == Approx(mse).epsilon(1e-5));

  SECTION("codebook_loss reaches only the codebook: 2 (q - z) / numel scattered to the chosen rows") {
    out.codebook_loss.backward();
    CHECK((!z.grad().defined() || z.grad().abs().max().item<float>() == 0.0f));
    REQUIRE(pq->codebook.grad().defined());
    std::vector<double> want(static_cast<size_t>(k * d_sub), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < d_sub; ++j)
        want[idx[r].item<int64_t>() * d_sub + j] += 2.0 * (q[r * d_sub + j] - zv[r * d_sub + j]) / numel;
    auto got = to_vec(pq->codebook.grad());
    for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-7).epsilon(1e-5));
  }

  SECTION("commitment_loss reaches only z: 2 (z - q) / numel") {
    out.commitment_loss.backward();
    CHECK((!pq->codebook.grad().defined() || pq->codebook.grad().abs().max().item<float>() == 0.0f));
    REQUIRE(z.grad().defined());
    auto got = to_vec(z.grad());
    for (size_t i = 0; i < zv.size(); ++i)
      CHECK(got[i] == Approx(2.0 * (zv[i] - q[i]) / numel).margin(1e-8).epsilon(1e-5));
  }
}

TEST_CASE("SharedCodebookPQ: restart_dead_codes re-seeds only codewords unused for too long", "[models][quantizer]") {
  const int64_t k = 8, d_sub = 4, after = 5;
  SharedCodebookPQ pq(16, d_sub, k);
  pq->init_uniform(1);
  at::Tensor before = pq->codebook.detach().clone();
  // Rows far from the U(-1, 1) codewords and from each other.
  at::Tensor recent = at::tensor({10.f, 10.f, 10.f, 10.f, -20.f, 20.f, -20.f, 20.f, 30.f, 0.f, 0.f, -30.f}).view({3, 4});
  at::Tensor used = at::tensor({0, 2, 1, 2}, at::kLong).view({2, 2});

  auto near_a_row = [&](const at::Tensor& v) {
    for (int64_t r = 0; r < recent.size(0); ++r)
      if ((v - recent[r]).abs().max().item<float>() < 0.02f) return true;
    return false;
  };

  // Codewords 3..7 were last used at step 0 (construction); steps 1..5 are within the limit.
  for (int64_t step = 1; step <= after; ++step) {
    auto ids = pq->restart_dead_codes(used, recent, step, after, 42);
    INFO("step " << step);
    CHECK(ids.empty());
    CHECK(at::equal(pq->codebook.detach(), before));
  }
  auto ids = pq->restart_dead_codes(used, recent, after + 1, after, 42);
  CHECK(ids == std::vector<int64_t>({3, 4, 5, 6, 7}));
  for (int64_t j = 0; j < k; ++j) {
    INFO("codeword " << j);
    if (j <= 2) {
      CHECK(at::equal(pq->codebook[j].detach(), before[j]));  // used: untouched
    } else {
      CHECK(near_a_row(pq->codebook[j].detach()));
    }
  }
  // Re-seeded codewords count as fresh: nothing is dead on the next step.
  at::Tensor after_restart = pq->codebook.detach().clone();
  CHECK(pq->restart_dead_codes(used, recent, after + 2, after, 43).empty());
  CHECK(at::equal(pq->codebook.detach(), after_restart));

  // Codeword 0 was last used at step 7; from step 8 on only 1..7 are used.
  at::Tensor used2 = at::tensor({1, 2, 3, 4, 5, 6, 7}, at::kLong).view({1, 7});
  for (int64_t step = after + 3; step <= 2 * after + 2; ++step)  // 8..12: 12 - 7 = 5, not yet dead
    CHECK(pq->restart_dead_codes(used2, recent, step, after, 44).empty());
  auto ids2 = pq->restart_dead_codes(used2, recent, 2 * after + 3, after, 45);  // 13 - 7 > 5
  CHECK(ids2 == std::vector<int64_t>({0}));
  CHECK(near_a_row(pq->codebook[0].detach()));
  for (int64_t j = 1; j < k; ++j) CHECK(at::equal(pq->codebook[j].detach(), after_restart[j]));
}

TEST_CASE("SharedCodebookPQ: uniform init is U(-1, 1) and deterministic", "[models][quantizer]") {
  SharedCodebookPQ pq(16, 16, 4096);
  pq->init_uniform(7);
  at::Tensor a = pq->codebook.detach().clone();
  CHECK(a.min().item<float>() >= -1.0f);
  CHECK(a.max().item<float>() < 1.0f);
  CHECK(std::abs(a.mean().item<double>()) < 0.015);            // sd of the mean ~ 0.0023
  CHECK(a.to(at::kDouble).var().item<double>() == Approx(1.0 / 3.0).margin(0.01));
  CHECK(a.min().item<float>() < -0.999f);  // spans the whole interval
  CHECK(a.max().item<float>() > 0.999f);
  pq->init_uniform(7);
  CHECK(at::equal(pq->codebook.detach(), a));
  pq->init_uniform(8);
  CHECK_FALSE(at::equal(pq->codebook.detach(), a));
  pq->init_from_data(at::randn({10, 16}), "uniform", 7);
  CHECK(at::equal(pq->codebook.detach(), a));
  CHECK_THROWS(pq->init_from_data(at::randn({10, 16}), "bogus", 7));
  CHECK_THROWS(pq->init_from_data(at::randn({10, 8}), "kmeans", 7));  // wrong d_sub
}

TEST_CASE("SharedCodebookPQ: kmeans / sample init put codewords on the data", "[models][quantizer]") {
  const int64_t d_sub = 4, per = 250;
  const std::vector<std::vector<float>> centres = {
      {0.8f, 0.1f, -0.5f, 0.3f}, {-0.6f, 0.7f, 0.2f, -0.4f}, {0.1f, -0.9f, 0.6f, 0.5f}, {-0.3f, -0.2f, -0.8f, -0.7f}};
  at::manual_seed(9);
  std::vector<at::Tensor> parts;
  for (const auto& c : centres) parts.push_back(at::tensor(c).unsqueeze(0) + 0.005 * at::randn({per, d_sub}));
  at::Tensor data = at::cat(parts, 0).index_select(0, at::randperm(4 * per));
  at::Tensor centre_t = at::stack({at::tensor(centres[0]), at::tensor(centres[1]), at::tensor(centres[2]),
                                   at::tensor(centres[3])});

  for (const char* method : {"kmeans", "sample"}) {
    INFO("init " << method);
    SharedCodebookPQ pq(8, d_sub, 4);
    {
      at::NoGradGuard g;
      pq->last_used.fill_(3);
    }
    pq->init_from_data(data, method, 123);
    CHECK(pq->last_used.abs().max().item<int64_t>() == 0);
    at::Tensor cb = pq->codebook.detach();
    std::set<int64_t> covered;
    for (int64_t j = 0; j < 4; ++j) {
      at::Tensor dist = (centre_t - cb[j]).pow(2).sum(1).sqrt();
      int64_t nearest = dist.argmin().item<int64_t>();
      INFO("codeword " << j);
      CHECK(dist[nearest].item<float>() < 0.05f);
      covered.insert(nearest);
    }
    if (std::string(method) == "kmeans") CHECK(covered.size() == 4);  // one centroid per cluster
    // Deterministic for a seed.
    SharedCodebookPQ again(8, d_sub, 4);
    again->init_from_data(data, method, 123);
    CHECK(at::equal(again->codebook.detach(), cb));
  }
}

TEST_CASE("SharedCodebookPQ: a d_sub that does not divide c cuts the flattened latent across positions",
          "[models][quantizer]") {
  // The release's layout: c = 8 values at each of 5 positions, read position
  // by position, cut into 8 sub-vectors of 5; sub-vector 1 is position 0's
  // last 3 values followed by position 1's first 2.
  const int64_t n = 2, p = 5, c = 8, d_sub = 5, k = 6, slots = p * c / d_sub;
  SharedCodebookPQ pq(c, d_sub, k);
  CHECK(pq->subspaces() == 0);
  CHECK(pq->slots(p) == 8);
  CHECK_THROWS_WITH(pq->slots(3), Catch::Contains("d_sub 5 does not divide the latent channels 8 or the 3 x 8"));
  at::manual_seed(5);
  {
    at::NoGradGuard g;
    pq->codebook.copy_(at::randn({k, d_sub}));
  }
  const at::Tensor z = at::randn({n, p, c});
  const auto out = pq->forward(z);
  REQUIRE(out.indices.sizes() == at::IntArrayRef({n, slots}));
  const std::vector<double> zv = to_vec(z), cb = to_vec(pq->codebook), q = to_vec(out.quantized);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t s = 0; s < slots; ++s) {
      const double* sub = &zv[static_cast<size_t>(i * p * c + s * d_sub)];  // flat offset of the chunk
      int64_t best = 0;
      for (int64_t j = 1; j < k; ++j)
        if (sqdist(sub, &cb[j * d_sub], d_sub) < sqdist(sub, &cb[best * d_sub], d_sub)) best = j;
      CHECK(out.indices[i][s].item<int64_t>() == best);
      for (int64_t e = 0; e < d_sub; ++e)
        CHECK(q[static_cast<size_t>(i * p * c + s * d_sub + e)] == Approx(cb[static_cast<size_t>(best * d_sub + e)]));
    }
  // quantized is z + (q - z): q up to rounding.
  CHECK((pq->lookup(out.indices, p) - out.quantized.detach()).abs().max().item<float>() < 1e-6f);
}
