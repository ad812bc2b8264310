// The baselines of docs/baselines.md against independent references:
// Lloyd-Max optima derived by hand (and Max's 1960 Gaussian table), brute-force
// nearest-level / nearest-centroid searches in double precision, a hand-packed
// FAISS code, and an EMA codebook step computed by hand.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "models/pqvae/vqvae_kmeans_pq.h"
#include "models/quantizers/ema_codebook_pq.h"
#include "models/quantizers/faiss_quantizer.h"
#include "models/quantizers/lloyd_max.h"
#include "models/quantizers/reference_quantizers.h"
#include "models/quantizers/scalar_quantizer.h"
#include "models/run_config.h"

using namespace semcodec;

namespace {

// Rows with a fixed pseudo-random pattern (no torch generator state involved).
at::Tensor fixed_rows(int64_t n, int64_t d, double phase) {
  std::vector<float> v(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j)
      v[i * d + j] = static_cast<float>(std::sin(0.37 * i + 1.3 * j + phase) + 0.3 * std::cos(0.11 * i * j + phase));
  at::Tensor x = at::tensor(v).view({n, d});
  return x / x.norm(2, {1}, true);
}

FaissQuantizerOptions faiss_options(const std::string& kind, int64_t d, int64_t m, int64_t nbits) {
  FaissQuantizerOptions o;
  o.kind = kind;
  o.embed_dim = d;
  o.m = m;
  o.nbits = nbits;
  return o;
}

std::vector<double> normal_quantile_grid(int64_t n, double sigma) {
  at::Tensor u = (at::arange(n, at::kDouble) + 0.5) / n;
  at::Tensor x = sigma * std::sqrt(2.0) * at::erfinv(2 * u - 1);
  return std::vector<double>(x.data_ptr<double>(), x.data_ptr<double>() + n);
}

}  // namespace

TEST_CASE("Lloyd-Max: a two-point mixture gets one level on each point", "[baselines][lloyd]") {
  std::vector<double> v(100, -0.3);
  v.insert(v.end(), 300, 0.2);
  // Equal-count start: {-0.05, 0.2}; one Lloyd step separates the points.
  auto lv = lloyd_max_levels(v, 2);
  REQUIRE(lv.size() == 2);
  CHECK(lv[0] == Approx(-0.3).margin(1e-12));
  CHECK(lv[1] == Approx(0.2).margin(1e-12));
}

TEST_CASE("Lloyd-Max: three point masses, two levels", "[baselines][lloyd]") {
  // Partitions {0, 0.1}{0.4}: MSE 2 * 0.05^2 = 0.005 (levels 0.05, 0.4);
  // {0}{0.1, 0.4}: 2 * 0.15^2 = 0.045. The first is optimal.
  std::vector<double> v;
  for (double p : {0.0, 0.1, 0.4}) v.insert(v.end(), 1000, p);
  auto lv = lloyd_max_levels(v, 2);
  CHECK(lv[0] == Approx(0.05).margin(1e-12));
  CHECK(lv[1] == Approx(0.4).margin(1e-12));
}

TEST_CASE("Lloyd-Max: uniform on [-0.5, 0.5] gives the centres of equal bins", "[baselines][lloyd]") {
  const int64_t n = 8000;
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(-0.5 + (i + 0.5) / n);
  for (int64_t levels : {2, 4, 8}) {
    auto lv = lloyd_max_levels(v, levels);
    for (int64_t j = 0; j < levels; ++j) CHECK(lv[j] == Approx(-0.5 + (j + 0.5) / levels).margin(1e-9));
  }
}

TEST_CASE("Lloyd-Max: Gaussian optimum of Max (1960)", "[baselines][lloyd]") {
  const double sigma = 0.1;
  std::vector<double> v = normal_quantile_grid(200000, sigma);
  // 1 bit: +-sigma sqrt(2 / pi); 2 bits: +-0.4528 sigma, +-1.510 sigma.
  auto one = lloyd_max_levels(v, 2);
  CHECK(one[1] == Approx(sigma * std::sqrt(2 / M_PI)).margin(2e-5));
  CHECK(one[0] == Approx(-one[1]).margin(1e-9));
  LloydMaxOptions opt;
  opt.iterations = 1000;
  auto two = lloyd_max_levels(v, 4, opt);
  CHECK(two[2] == Approx(0.4528 * sigma).margin(1e-4));
  CHECK(two[3] == Approx(1.510 * sigma).margin(1e-4));
  CHECK(two[0] == Approx(-two[3]).margin(1e-6));
}

TEST_CASE("Lloyd-Max: values outside [-0.5, 0.5] are clamped into it", "[baselines][lloyd]") {
  auto lv = lloyd_max_levels({-3.0, -2.0, 2.0, 3.0}, 2);
  CHECK(lv[0] == Approx(-0.5));
  CHECK(lv[1] == Approx(0.5));
  CHECK_THROWS(lloyd_max_levels({}, 2));
}

TEST_CASE("learned SQ: encode picks the nearest level, decode returns it, bits = D * b", "[baselines][sq]") {
  const int64_t d = 24;
  at::Tensor train = fixed_rows(500, d, 0.0), test = fixed_rows(50, d, 1.0);
  for (bool per_dim : {false, true}) {
    for (int64_t bits : {1, 3}) {
      LearnedScalarQuantizer q(d, bits, per_dim);
      CHECK(q.raw_bits() == d * bits);
      CHECK(q.slots() == d);
      CHECK(q.alphabet_size(0) == (1 << bits));
      q.fit(train);
      at::Tensor lv = q.levels().to(at::kDouble);
      at::Tensor idx = q.encode(test);
      at::Tensor rec = q.decode(idx);
      at::Tensor xd = test.to(at::kDouble);
      for (int64_t i = 0; i < test.size(0); ++i)
        for (int64_t j = 0; j < d; ++j) {
          const double x = xd[i][j].item<double>();
          at::Tensor row = lv[per_dim ? j : 0];
          int64_t best = 0;
          double bd = std::numeric_limits<double>::infinity();
          for (int64_t l = 0; l < row.size(0); ++l) {
            const double dist = std::abs(x - row[l].item<double>());
            if (dist < bd - 1e-12) bd = dist, best = l;
          }
          // Ties (x exactly between two levels) may go either way.
          CHECK(std::abs(std::abs(x - row[idx[i][j].item<int64_t>()].item<double>()) - bd) < 1e-7);
          (void)best;
          CHECK(rec[i][j].item<double>() == Approx(row[idx[i][j].item<int64_t>()].item<double>()));
        }
      if (per_dim) {
        // Each dimension's levels are that column's Lloyd-Max optimum.
        at::Tensor col = (train / train.norm(2, {1}, true)).select(1, 5).to(at::kDouble).contiguous();
        auto ref = lloyd_max_levels(std::vector<double>(col.data_ptr<double>(), col.data_ptr<double>() + col.numel()),
                                    1 << bits);
        for (int64_t l = 0; l < (1 << bits); ++l) CHECK(lv[5][l].item<double>() == Approx(ref[l]).margin(1e-6));
      }
    }
  }
}

TEST_CASE("reference quantizers: float16 bit patterns and symmetric int8 / int4", "[baselines][reference]") {
  const int64_t d = 8;
  at::Tensor x = fixed_rows(20, d, 0.5);
  Float16Quantizer f(d);
  CHECK(f.raw_bits() == 16 * d);
  at::Tensor back = f.decode(f.encode(x));
  CHECK(at::equal(back, x.to(at::kHalf).to(at::kFloat)));
  CHECK_THROWS(f.decode(at::full({1, d}, 65536, at::kLong)));

  // A hand example: per-dimension max |x| over the training rows.
  at::Tensor t = at::tensor({0.6f, -0.8f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,  //
                             -0.3f, 0.4f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.866025f})
                     .view({2, d});
  UniformQuantizer q8(d, 8, /*per_dim_scale=*/true);
  CHECK(q8.raw_bits() == 8 * d);
  q8.fit(t);
  // Row 0 is unit norm: 0.6 -> round(0.6 / (0.6 / 127)) = 127 -> index 255;
  // -0.8 -> -127 -> index 1; 0 -> index 128.
  at::Tensor idx = q8.encode(t.narrow(0, 0, 1));
  CHECK(idx[0][0].item<int64_t>() == 255);
  CHECK(idx[0][1].item<int64_t>() == 1);
  CHECK(idx[0][2].item<int64_t>() == 128);
  at::Tensor r = q8.decode(idx);
  CHECK(r[0][0].item<double>() == Approx(0.6).epsilon(1e-6));
  CHECK(r[0][1].item<double>() == Approx(-0.8).epsilon(1e-6));
  UniformQuantizer q4(d, 4, /*per_dim_scale=*/false);
  q4.fit(t);
  // Global max 0.866025, scale 0.866025 / 7; -0.3/0.5 unit-normalized row 1 is (-0.3, 0.4, .., 0.866)/1.
  at::Tensor i4 = q4.encode(t.narrow(0, 1, 1));
  CHECK(i4[0][0].item<int64_t>() == 8 + static_cast<int64_t>(std::lround(-0.3 / (0.866025 / 7))));
  CHECK(i4[0][7].item<int64_t>() == 15);
}

TEST_CASE("FAISS codes: LSB-first packing as FAISS writes it", "[baselines][faiss]") {
  // 5 = 101, 2 = 010, 7 = 111 (3 bits each, least significant bit first):
  // bits 1,0,1, 0,1,0, 1,1 | 1 -> bytes 0b11010101 = 213, 0b00000001 = 1.
  std::vector<uint8_t> packed = pack_codes(at::tensor({5, 2, 7}, at::kLong).view({1, 3}), 2, 3);
  REQUIRE(packed.size() == 2);
  CHECK(packed[0] == 213);
  CHECK(packed[1] == 1);
  at::Tensor back = unpack_codes(packed.data(), 1, 2, 3, 3);
  CHECK(back[0][0].item<int64_t>() == 5);
  CHECK(back[0][1].item<int64_t>() == 2);
  CHECK(back[0][2].item<int64_t>() == 7);
}

TEST_CASE("FAISS anchors: raw bits equal the Table 1 budgets on D = 768", "[baselines][faiss]") {
  if (!faiss_available()) {
    WARN("built without FAISS: skipped");
    return;
  }
  for (int64_t budget : {400, 600, 800, 1000, 1200, 2000})
    for (int64_t nbits : {4, 8})
      for (const char* kind : {"pq", "opq", "rq"}) {
        auto q = make_faiss_quantizer(faiss_options(kind, 768, budget / nbits, nbits));
        INFO(kind << " " << budget << " bits, nbits " << nbits);
        CHECK(q->raw_bits() == budget);
        CHECK(q->slots() == budget / nbits);
        CHECK(q->alphabet_size(0) == (1 << nbits));
      }
  FaissQuantizerOptions strict;
  strict.embed_dim = 768;
  strict.m = 50;
  strict.pad_dims = false;
  CHECK_THROWS(make_faiss_quantizer(strict));
}

TEST_CASE("FAISS PQ / OPQ indices equal a brute-force per-sub-space search", "[baselines][faiss]") {
  if (!faiss_available()) {
    WARN("built without FAISS: skipped");
    return;
  }
  const int64_t d = 30, m = 4, nbits = 3, k = 8;  // 4 does not divide 30: padded to 32
  const int64_t dp = faiss_padded_dim(d, m, true);
  REQUIRE(dp == 32);
  at::Tensor train = fixed_rows(600, d, 0.2), test = fixed_rows(40, d, 2.0);
  for (const char* kind : {"pq", "opq"}) {
    auto q = make_faiss_quantizer(faiss_options(kind, d, m, nbits));
    q->fit(train);
    auto st = q->state();
    at::Tensor c = st.at("pq.centroids").to(at::kDouble);  // [M, K, dsub]
    REQUIRE(c.sizes() == at::IntArrayRef({m, k, dp / m}));
    // The padded input: input dim i at position i * D' / D.
    at::Tensor y = at::zeros({test.size(0), dp}, at::kDouble);
    for (int64_t i = 0; i < d; ++i) y.select(1, i * dp / d).copy_(test.select(1, i));
    if (st.count("opq.rotation")) y = at::mm(y, st.at("opq.rotation").to(at::kDouble).t());
    at::Tensor idx = q->encode(test);
    at::Tensor rec = q->decode(idx);
    at::Tensor ref_rec = at::zeros({test.size(0), dp}, at::kDouble);
    for (int64_t i = 0; i < test.size(0); ++i)
      for (int64_t s = 0; s < m; ++s) {
        at::Tensor sub = y[i].narrow(0, s * (dp / m), dp / m);
        at::Tensor dist = (c[s] - sub.unsqueeze(0)).pow(2).sum(1);
        const int64_t got = idx[i][s].item<int64_t>();
        INFO(kind << " row " << i << " sub-space " << s);
        CHECK(dist[got].item<double>() <= dist.min().item<double>() + 1e-6);
        ref_rec[i].narrow(0, s * (dp / m), dp / m).copy_(c[s][got]);
      }
    if (st.count("opq.rotation")) ref_rec = at::mm(ref_rec, st.at("opq.rotation").to(at::kDouble));
    at::Tensor keep = at::div(at::arange(d, at::kLong) * dp, d, "floor");
    CHECK(at::allclose(rec.to(at::kDouble), ref_rec.index_select(1, keep), 1e-5, 1e-5));
  }
}

TEST_CASE("FAISS OPQ: more outer iterations fit the training rows better", "[baselines][faiss]") {
  if (!faiss_available()) {
    WARN("built without FAISS: skipped");
    return;
  }
  // Dims correlated across sub-spaces (a rotation of the axes helps PQ):
  // the model.faiss_opq_iterations value must reach FAISS's OPQMatrix.
  const int64_t d = 16, m = 4, nbits = 2;
  at::Tensor base = fixed_rows(800, d, 0.4);
  at::Tensor mix = at::eye(d, at::kFloat) + 0.8 * at::roll(at::eye(d, at::kFloat), d / 2, 1);
  at::Tensor train = at::mm(base, mix);
  train = train / train.norm(2, {1}, true);
  auto mse = [&](int64_t iterations) {
    FaissQuantizerOptions o = faiss_options("opq", d, m, nbits);
    o.opq_iterations = iterations;
    auto q = make_faiss_quantizer(o);
    q->fit(train);
    return (q->decode(q->encode(train)) - train).pow(2).sum(1).mean().item<double>();
  };
  const double one = mse(1), many = mse(12);
  INFO("training MSE: 1 iteration " << one << ", 12 iterations " << many);
  CHECK(many < one);
  FaissQuantizerOptions bad = faiss_options("opq", d, m, nbits);
  bad.opq_iterations = 0;
  CHECK_THROWS(make_faiss_quantizer(bad));
}

TEST_CASE("FAISS RQ: decode is the sum of the chosen stage codewords", "[baselines][faiss]") {
  if (!faiss_available()) {
    WARN("built without FAISS: skipped");
    return;
  }
  const int64_t d = 16, m = 3, nbits = 4;
  FaissQuantizerOptions o = faiss_options("rq", d, m, nbits);
  o.rq_beam = 2;
  auto q = make_faiss_quantizer(o);
  q->fit(fixed_rows(800, d, 0.7));
  CHECK(q->raw_bits() == m * nbits);
  at::Tensor cb = q->state().at("rq.codebooks").to(at::kDouble);
  at::Tensor test = fixed_rows(30, d, 3.0);
  at::Tensor idx = q->encode(test), rec = q->decode(idx).to(at::kDouble);
  for (int64_t i = 0; i < test.size(0); ++i) {
    at::Tensor sum = at::zeros({d}, at::kDouble);
    for (int64_t s = 0; s < m; ++s) sum += cb[s][idx[i][s].item<int64_t>()];
    CHECK(at::allclose(rec[i], sum, 1e-5, 1e-5));
  }
  // Better than the first stage alone (the residual stages carry information).
  at::Tensor first = cb[0].index_select(0, idx.select(1, 0));
  CHECK((rec - test.to(at::kDouble)).pow(2).sum().item<double>() <
        (first - test.to(at::kDouble)).pow(2).sum().item<double>());
}

TEST_CASE("k-means PQ: indices equal a brute-force per-sub-space search", "[baselines][kmeans_pq]") {
  for (bool per_position : {false, true}) {
    const int64_t c = 12, d_sub = 4, k = 5, p = 3, n = 7;
    EmaCodebookOptions options;
    options.per_position = per_position;
    EmaCodebookPQ pq(c, d_sub, k, p, options);
    at::Tensor z = at::randn({n, p, c});
    pq->init_from_latents(z, "kmeans", 3);
    const int64_t subspaces = c / d_sub;
    CHECK(pq->groups() == (per_position ? p * subspaces : subspaces));
    PQForward f = pq->forward(z);
    REQUIRE(f.indices.sizes() == at::IntArrayRef({n, p * subspaces}));
    at::Tensor cb = pq->codebook.to(at::kDouble);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t pos = 0; pos < p; ++pos)
        for (int64_t s = 0; s < subspaces; ++s) {
          const int64_t g = per_position ? pos * subspaces + s : s;
          at::Tensor sub = z[i][pos].narrow(0, s * d_sub, d_sub).to(at::kDouble);
          at::Tensor dist = (cb[g] - sub.unsqueeze(0)).pow(2).sum(1);
          const int64_t got = f.indices[i][pos * subspaces + s].item<int64_t>();
          CHECK(dist[got].item<double>() <= dist.min().item<double>() + 1e-9);
          CHECK(at::allclose(f.quantized[i][pos].narrow(0, s * d_sub, d_sub).to(at::kDouble), cb[g][got], 1e-6, 1e-6));
        }
    CHECK(f.codebook_loss.item<double>() == 0.0);
  }
}

TEST_CASE("k-means PQ: the EMA step matches a hand computation", "[baselines][kmeans_pq]") {
  // One sub-space (c = d_sub = 2), one position, K = 2.
  EmaCodebookPQ pq(2, 2, 2, 1);
  {
    at::NoGradGuard g;
    pq->codebook.copy_(at::tensor({0.0f, 0.0f, 1.0f, 1.0f}).view({1, 2, 2}));
    pq->ema_count.copy_(at::tensor({2.0f, 1.0f}).view({1, 2}));
    pq->ema_sum.copy_(at::tensor({0.0f, 0.0f, 1.0f, 1.0f}).view({1, 2, 2}));
  }
  // Three items: (0.2, 0) and (0, 0.4) -> codeword 0; (1, 2) -> codeword 1.
  at::Tensor z = at::tensor({0.2f, 0.0f, 0.0f, 0.4f, 1.0f, 2.0f}).view({3, 1, 2});
  at::Tensor idx = at::tensor({0, 0, 1}, at::kLong).view({3, 1});
  const double decay = 0.5, eps = 0.1;
  pq->ema_update(z, idx, decay, eps);
  // count = 0.5 * (2, 1) + 0.5 * (2, 1) = (2, 1); n = 3
  // sum0 = 0.5 * (0, 0) + 0.5 * (0.2, 0.4) = (0.1, 0.2); sum1 = 0.5 * (1, 1) + 0.5 * (1, 2) = (1, 1.5)
  // smoothed = (count + 0.1) / (3 + 0.2) * 3 = (1.96875, 1.03125)
  const double s0 = 2.1 / 3.2 * 3, s1 = 1.1 / 3.2 * 3;
  CHECK(pq->ema_count[0][0].item<double>() == Approx(2.0));
  CHECK(pq->ema_count[0][1].item<double>() == Approx(1.0));
  CHECK(pq->codebook[0][0][0].item<double>() == Approx(0.1 / s0));
  CHECK(pq->codebook[0][0][1].item<double>() == Approx(0.2 / s0));
  CHECK(pq->codebook[0][1][0].item<double>() == Approx(1.0 / s1));
  CHECK(pq->codebook[0][1][1].item<double>() == Approx(1.5 / s1));
}

TEST_CASE("k-means PQ: dead codewords are re-seeded from the batch", "[baselines][kmeans_pq]") {
  EmaCodebookPQ pq(4, 2, 4, 1);
  at::Tensor z = at::randn({6, 1, 4});
  at::Tensor idx = at::zeros({6, 2}, at::kLong);  // only codeword 0 in use
  CHECK(pq->restart_dead_codes(z, idx, 1, 5, 0) == 0);
  CHECK(pq->restart_dead_codes(z, idx, 7, 5, 0) == 6);  // 3 dead codewords in each of 2 sub-spaces
  CHECK(pq->last_used.min().item<int64_t>() == 7);
}

TEST_CASE("VQ-VAE k-means PQ: slots and rate of PQVAE-shared", "[baselines][kmeans_pq]") {
  ModelConfig mc;
  mc.method = "vqvae_kmeans_pq";
  mc.embed_dim = 32;
  mc.hidden_channels = 16;
  mc.body_channels = 16;
  mc.residual_channels = 8;
  mc.latent_channels = 16;
  mc.d_sub = 4;
  mc.codebook_size = 8;
  VQVAEKMeansPQ model(mc);
  CHECK(model.slots() == 25 * 4);
  CHECK(model.raw_bits() == 25 * 4 * 3);
  at::Tensor x = fixed_rows(5, 32, 0.1);
  at::Tensor idx = model.encode(x);
  CHECK(idx.sizes() == at::IntArrayRef({5, 100}));
  CHECK(model.decode(idx).sizes() == at::IntArrayRef({5, 32}));
  CHECK_THROWS(model.decode(at::full({1, 100}, 8, at::kLong)));
}
