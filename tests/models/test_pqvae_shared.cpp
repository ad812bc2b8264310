// PQVAE-shared end to end: stage shapes, the parameter layout of the
// paper's reference notes (docs/architecture.md, "PQVAE-shared, layer by
// layer"), parity of the fast [N, P, C] path with an independent NCHW
// re-implementation written with at::conv_transpose2d / at::conv2d in double
// precision (values and gradients), the Quantizer round trip and the rates.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <torch/nn/module.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "models/pqvae/pqvae_shared.h"
#include "models/run_config.h"

using semcodec::ModelConfig;
using semcodec::PQVAEShared;

namespace {

ModelConfig paper_config(int64_t embed_dim = 768, int64_t d_sub = 16, int64_t k = 4) {
  ModelConfig c;
  c.method = "pqvae_shared";
  c.embed_dim = embed_dim;
  c.hidden_channels = 512;
  c.body_channels = 256;
  c.residual_layers = 3;
  c.residual_channels = 128;
  c.latent_channels = 128;
  c.d_sub = d_sub;
  c.codebook_size = k;
  return c;
}

double rel_err(const at::Tensor& got, const at::Tensor& want) {
  at::Tensor g = got.detach().to(at::kDouble), w = want.detach().to(at::kDouble);
  double scale = w.abs().max().item<double>();
  return (g - w).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

// The network of the reference notes, NCHW, on double copies of the module's parameters.
struct Reference {
  std::map<std::string, at::Tensor> p;  // double leaves with requires_grad
  int64_t layers;

  Reference(PQVAEShared& m, int64_t residual_layers) : layers(residual_layers) {
    for (const auto& kv : m.named_parameters())
      p[kv.key()] = kv.value().detach().to(at::kDouble).requires_grad_();
  }
  const at::Tensor& w(const std::string& name) const {
    auto it = p.find(name);
    REQUIRE(it != p.end());
    return it->second;
  }
  static at::Tensor normalize(const at::Tensor& x, int64_t dim) { return x / x.norm(2, {dim}, true); }

  // [N, D] -> latent [N, c, 5, 5], unit norm along channels.
  at::Tensor encode(const at::Tensor& x) const {
    at::Tensor h = normalize(x.to(at::kDouble), 1);
    h = h.view({h.size(0), h.size(1), 1, 1});
    h = at::conv_transpose2d(h, w("encoder.up1.weight"), w("encoder.up1.bias"), {2, 2}, at::IntArrayRef{0, 0}).relu();  // 3x3
    h = at::conv_transpose2d(h, w("encoder.up2.weight"), w("encoder.up2.bias"), {2, 2}, {1, 1}).relu();  // 5x5
    for (int64_t i = 0; i < layers; ++i) {
      const std::string l = std::to_string(i);
      at::Tensor r = at::conv_transpose2d(h.relu(), w("encoder.res.wide." + l + ".weight"), {}, {1, 1}, {1, 1});
      r = at::conv_transpose2d(r.relu(), w("encoder.res.narrow." + l + ".weight"), {}, {1, 1}, at::IntArrayRef{0, 0});
      h = (h + r).relu();
    }
    h = at::conv2d(h, w("encoder.to_latent.weight"), w("encoder.to_latent.bias"), {1, 1}, {1, 1});
    return normalize(h, 1);
  }

  // latent [N, c, 5, 5] -> [N, D], unit norm.
  at::Tensor decode(const at::Tensor& q) const {
    at::Tensor h = at::conv2d(q, w("decoder.from_latent.weight"), w("decoder.from_latent.bias"), {1, 1}, {1, 1});
    for (int64_t i = 0; i < layers; ++i) {
      const std::string l = std::to_string(i);
      at::Tensor r = at::conv2d(h.relu(), w("decoder.res.wide." + l + ".weight"), {}, {1, 1}, {1, 1});
      r = at::conv2d(r.relu(), w("decoder.res.narrow." + l + ".weight"), {}, {1, 1}, at::IntArrayRef{0, 0});
      h = (h + r).relu();
    }
    h = at::conv2d(h, w("decoder.down1.weight"), w("decoder.down1.bias"), {2, 2}, {1, 1}).relu();  // 3x3
    h = at::conv2d(h, w("decoder.down2.weight"), w("decoder.down2.bias"), {2, 2}, at::IntArrayRef{0, 0});          // 1x1
    return normalize(h.flatten(1), 1);
  }

  // Brute-force product quantization of an NCHW latent with the shared
  // codebook; slot = position * subspaces + subspace. Returns NCHW q (a
  // differentiable gather of codebook rows) and the indices.
  std::pair<at::Tensor, at::Tensor> quantize(const at::Tensor& z, int64_t d_sub) const {
    const at::Tensor& cb = w("pq.codebook");
    const int64_t n = z.size(0), c = z.size(1), sub = c / d_sub, k = cb.size(0);
    at::Tensor zp = z.detach().flatten(2).permute({0, 2, 1}).contiguous();  // [N, 25, c]
    at::Tensor cbd = cb.detach().contiguous();
    at::Tensor idx = at::zeros({n, 25 * sub}, at::kLong);
    auto za = zp.accessor<double, 3>();
    auto ca = cbd.accessor<double, 2>();
    auto ia = idx.accessor<int64_t, 2>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t pos = 0; pos < 25; ++pos)
        for (int64_t s = 0; s < sub; ++s) {
          double best = std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j < k; ++j) {
            double dist = 0;
            for (int64_t e = 0; e < d_sub; ++e) {
              double diff = za[i][pos][s * d_sub + e] - ca[j][e];
              dist += diff * diff;
            }
            if (dist < best) best = dist, ia[i][pos * sub + s] = j;
          }
        }
    at::Tensor q = cb.index_select(0, idx.reshape({-1})).view({n, 25, c}).permute({0, 2, 1}).reshape({n, c, 5, 5});
    return {q, idx};
  }
};

// [N, 25, c] -> [N, c, 5, 5]
at::Tensor to_nchw(const at::Tensor& x) { return x.permute({0, 2, 1}).reshape({x.size(0), x.size(2), 5, 5}); }

}  // namespace

TEST_CASE("PQVAE-shared: shapes of every stage (paper configuration)", "[models][pqvae]") {
  auto model = std::make_shared<PQVAEShared>(paper_config());
  model->eval();
  at::manual_seed(1);
  const int64_t n = 3;
  at::Tensor x = at::randn({n, 768});
  auto out = model->forward(x);

  REQUIRE(out.latent.sizes() == at::IntArrayRef({n, 25, 128}));
  at::Tensor pos_norm = out.latent.detach().norm(2, {2});
  CHECK((pos_norm - 1).abs().max().item<double>() < 1e-5);

  REQUIRE(out.pq.indices.sizes() == at::IntArrayRef({n, 200}));
  CHECK(out.pq.indices.scalar_type() == at::kLong);
  CHECK(out.pq.indices.min().item<int64_t>() >= 0);
  CHECK(out.pq.indices.max().item<int64_t>() < 4);
  REQUIRE(out.pq.quantized.sizes() == at::IntArrayRef({n, 25, 128}));
  REQUIRE(out.pq.subvectors.sizes() == at::IntArrayRef({n * 200, 16}));

  REQUIRE(out.reconstruction.sizes() == at::IntArrayRef({n, 768}));
  CHECK((out.reconstruction.detach().norm(2, {1}) - 1).abs().max().item<double>() < 1e-5);

  CHECK(model->slots() == 200);
  CHECK(model->alphabet_size(0) == 4);
  CHECK(model->alphabet_size(199) == 4);
  CHECK(model->embed_dim() == 768);
  CHECK(model->name() == "pqvae_shared");

  // Input scale does not matter: the encoder L2-normalizes it first.
  at::Tensor again = model->forward(x * 37.5).latent.detach();
  CHECK(rel_err(again, out.latent) < 1e-5);

  CHECK_THROWS(model->forward(at::randn({2, 512})));
  CHECK_THROWS(model->forward(at::randn({768})));
}

TEST_CASE("PQVAE-shared: parameter names and shapes follow the reference notes", "[models][pqvae]") {
  PQVAEShared model(paper_config());
  using Shape = std::vector<int64_t>;
  std::map<std::string, Shape> want = {
      // Encoder: ConvTranspose2d weights are [in, out, k, k].
      {"encoder.up1.weight", {768, 512, 3, 3}},
      {"encoder.up1.bias", {512}},
      {"encoder.up2.weight", {512, 256, 3, 3}},
      {"encoder.up2.bias", {256}},
      {"encoder.to_latent.weight", {128, 256, 3, 3}},
      {"encoder.to_latent.bias", {128}},
      {"pq.codebook", {4, 16}},
      // Decoder: Conv2d weights are [out, in, k, k].
      {"decoder.from_latent.weight", {256, 128, 3, 3}},
      {"decoder.from_latent.bias", {256}},
      {"decoder.down1.weight", {512, 256, 3, 3}},
      {"decoder.down1.bias", {512}},
      {"decoder.down2.weight", {768, 512, 3, 3}},
      {"decoder.down2.bias", {768}},
  };
  for (int i = 0; i < 3; ++i) {
    const std::string l = std::to_string(i);
    // Encoder residual: transposed 3x3 256->128 then transposed 1x1 128->256, no bias.
    want["encoder.res.wide." + l + ".weight"] = {256, 128, 3, 3};
    want["encoder.res.narrow." + l + ".weight"] = {128, 256, 1, 1};
    // Decoder residual: ordinary 3x3 256->128 then 1x1 128->256, no bias.
    want["decoder.res.wide." + l + ".weight"] = {128, 256, 3, 3};
    want["decoder.res.narrow." + l + ".weight"] = {256, 128, 1, 1};
  }
  std::map<std::string, Shape> got;
  for (const auto& kv : model.named_parameters()) got[kv.key()] = kv.value().sizes().vec();
  for (const auto& kv : want) {
    INFO("parameter " << kv.first);
    REQUIRE(got.count(kv.first) == 1);
    CHECK(got[kv.first] == kv.second);
  }
  for (const auto& kv : got) {
    INFO("unexpected parameter " << kv.first);
    CHECK(want.count(kv.first) == 1);
  }
  // No parameter is hidden elsewhere: the total is the sum of the listed shapes.
  int64_t total = 0;
  for (const auto& kv : model.named_parameters()) total += kv.value().numel();
  int64_t expect = 0;
  for (const auto& kv : want) {
    int64_t n = 1;
    for (int64_t s : kv.second) n *= s;
    expect += n;
  }
  CHECK(total == expect);

  auto buffers = model.named_buffers();
  REQUIRE(buffers.find("pq.last_used") != nullptr);
  CHECK(buffers["pq.last_used"].sizes() == at::IntArrayRef({4}));
}

TEST_CASE("PQVAE-shared: forward matches an independent NCHW PyTorch implementation", "[models][pqvae]") {
  const ModelConfig cfg = paper_config();
  auto model = std::make_shared<PQVAEShared>(cfg);
  model->train();
  at::manual_seed(2);
  const int64_t n = 2;
  at::Tensor x = at::randn({n, 768});
  // Move the codebook onto the latent sphere's scale so indices vary.
  model->pq->init_uniform(5);
  {
    at::NoGradGuard g;
    model->pq->codebook.mul_(0.1);
  }

  auto out = model->forward(x);
  Reference ref(*model, cfg.residual_layers);

  // Encoder.
  at::Tensor z = ref.encode(x);
  REQUIRE(z.sizes() == at::IntArrayRef({n, 128, 5, 5}));
  CHECK(rel_err(to_nchw(out.latent), z) < 1e-4);

  // Quantizer (brute force on the reference latent) -> same indices.
  auto [q, idx] = ref.quantize(z, cfg.d_sub);
  CHECK(at::equal(out.pq.indices, idx));
  std::set<int64_t> distinct;
  for (int64_t i = 0; i < idx.numel(); ++i) distinct.insert(idx.view({-1})[i].item<int64_t>());
  CHECK(distinct.size() >= 2);  // the comparison is not trivial
  CHECK(rel_err(to_nchw(out.pq.quantized), q) < 1e-5);

  // Decoder on the reference's own quantized latent.
  at::Tensor z_st = z + (q - z).detach();  // straight-through, as in the paper
  at::Tensor xr = ref.decode(z_st);
  REQUIRE(xr.sizes() == at::IntArrayRef({n, 768}));
  CHECK(rel_err(out.reconstruction, xr) < 1e-4);

  // Gradients of a training-like loss w.r.t. every parameter.
  at::Tensor g = at::randn({n, 768});
  at::Tensor loss = (g * out.reconstruction).sum() + out.pq.codebook_loss + 0.25 * out.pq.commitment_loss;
  loss.backward();
  at::Tensor cb_loss = (q - z.detach()).pow(2).mean();
  at::Tensor commit = (z - q.detach()).pow(2).mean();
  at::Tensor ref_loss = (g.to(at::kDouble) * xr).sum() + cb_loss + 0.25 * commit;
  CHECK(out.pq.codebook_loss.item<double>() == Approx(cb_loss.item<double>()).epsilon(1e-4));
  CHECK(out.pq.commitment_loss.item<double>() == Approx(commit.item<double>()).epsilon(1e-4));
  ref_loss.backward();
  for (const auto& kv : model->named_parameters()) {
    INFO("gradient of " << kv.key());
    REQUIRE(kv.value().grad().defined());
    const at::Tensor& rg = ref.p[kv.key()].grad();
    REQUIRE(rg.defined());
    CHECK(rel_err(kv.value().grad(), rg) < 1e-4);
  }
}

// The gradients are compared by direction (cosine), the quantity an optimizer step follows.
TEST_CASE("PQVAE-shared: bfloat16 compute stays within bfloat16 rounding of the float64 reference", "[models][pqvae]") {
  ModelConfig cfg = paper_config();
  cfg.compute_dtype = "bfloat16";
  auto model = std::make_shared<PQVAEShared>(cfg);
  model->train();
  at::manual_seed(4);
  const int64_t n = 4;
  at::Tensor x = at::randn({n, 768});
  auto out = model->forward(x);
  Reference ref(*model, cfg.residual_layers);

  // The quantizer's side stays float32; the convolutions round to 8-bit mantissas.
  CHECK(out.latent.scalar_type() == at::kFloat);
  CHECK(out.reconstruction.scalar_type() == at::kFloat);
  const at::Tensor z = ref.encode(x);
  const double latent_err = rel_err(to_nchw(out.latent), z);
  CHECK(latent_err < 3e-2);
  CHECK(latent_err > 1e-5);  // it did compute in bfloat16

  // Decoder and gradients on the model's own indices (bfloat16 may break near-ties differently).
  const at::Tensor& cb = ref.w("pq.codebook");
  at::Tensor q = to_nchw(cb.index_select(0, out.pq.indices.reshape({-1})).view({n, 25, 128}));
  at::Tensor xr = ref.decode(z + (q - z).detach());
  CHECK(rel_err(out.reconstruction, xr) < 3e-2);
  at::Tensor g = at::randn({n, 768});
  (g * out.reconstruction).sum().backward();
  (g.to(at::kDouble) * xr).sum().backward();
  for (const auto& kv : model->named_parameters()) {
    if (kv.key() == "pq.codebook") continue;  // reached only through the codebook loss
    INFO("gradient of " << kv.key());
    CHECK(kv.value().scalar_type() == at::kFloat);
    REQUIRE(kv.value().grad().defined());
    CHECK(kv.value().grad().scalar_type() == at::kFloat);
    const at::Tensor a = kv.value().grad().to(at::kDouble).flatten(), b = ref.p[kv.key()].grad().flatten();
    const double cos = (a * b).sum().item<double>() / (a.norm() * b.norm()).item<double>();
    CHECK(cos > 0.99);  // measured 0.994-0.997: bfloat16 rounding through ~20 layers (single elements may
                        // differ more where a ReLU input sits at zero)
  }
}

TEST_CASE("PQVAE-shared: encode then decode equals forward in eval", "[models][pqvae]") {
  auto model = std::make_shared<PQVAEShared>(paper_config());
  model->eval();
  at::manual_seed(3);
  at::Tensor x = at::randn({4, 768});
  at::Tensor idx = model->encode(x);
  REQUIRE(idx.sizes() == at::IntArrayRef({4, 200}));
  CHECK(idx.scalar_type() == at::kLong);
  at::Tensor rec = model->decode(idx);
  REQUIRE(rec.sizes() == at::IntArrayRef({4, 768}));
  auto out = model->forward(x);
  CHECK(at::equal(idx, out.pq.indices));
  CHECK(rel_err(rec, out.reconstruction) < 1e-5);
  CHECK_FALSE(idx.requires_grad());
  CHECK_FALSE(rec.requires_grad());
  // Double input is accepted and gives the same indices.
  CHECK(at::equal(model->encode(x.to(at::kDouble)), idx));
  // decode validates its input.
  CHECK_THROWS(model->decode(at::zeros({2, 199}, at::kLong)));
  CHECK_THROWS(model->decode(at::full({2, 200}, 4, at::kLong)));
  CHECK_THROWS(model->decode(at::full({2, 200}, -1, at::kLong)));
  CHECK_THROWS(model->encode(at::randn({2, 512})));
}

TEST_CASE("PQVAE-shared: raw bits and slots", "[models][pqvae]") {
  // Table 1: d_sub = 16, varying K: 25 * 8 * log2 K.
  const std::vector<std::pair<int64_t, int64_t>> table1 = {{4, 400}, {8, 600},   {16, 800},
                                                           {32, 1000}, {64, 1200}, {1024, 2000}};
  for (auto [k, bits] : table1) {
    INFO("K=" << k);
    CHECK(semcodec::pqvae_raw_bits(paper_config(768, 16, k)) == bits);
  }
  // Non-powers of two round the index width up.
  CHECK(semcodec::pqvae_raw_bits(paper_config(768, 16, 5)) == 600);
  CHECK(semcodec::pqvae_raw_bits(paper_config(768, 16, 1000)) == 2000);

  // Fig. 5: equal-bit configurations at 400 bits.
  const std::vector<std::pair<int64_t, int64_t>> fig5 = {{8, 2}, {16, 4}, {32, 16}, {64, 256}, {128, 65536}};
  for (auto [d_sub, k] : fig5) {
    INFO("d_sub=" << d_sub << " K=" << k);
    ModelConfig cfg = paper_config(768, d_sub, k);
    CHECK(semcodec::pqvae_raw_bits(cfg) == 400);
    PQVAEShared model(cfg);
    CHECK(model.slots() == 25 * 128 / d_sub);
    CHECK(model.alphabet_size(0) == k);
    CHECK(model.raw_bits() == Approx(400.0));
    CHECK(model.pq->codebook.sizes() == at::IntArrayRef({k, d_sub}));
  }
}

TEST_CASE("PQVAE-shared: other embedding sizes build and run", "[models][pqvae]") {
  for (int64_t d : {512, 1024}) {
    INFO("embed_dim " << d);
    auto model = std::make_shared<PQVAEShared>(paper_config(d));
    model->eval();
    at::manual_seed(4);
    at::Tensor x = at::randn({2, d});
    auto out = model->forward(x);
    CHECK(out.latent.sizes() == at::IntArrayRef({2, 25, 128}));
    CHECK(out.pq.indices.sizes() == at::IntArrayRef({2, 200}));
    REQUIRE(out.reconstruction.sizes() == at::IntArrayRef({2, d}));
    CHECK((out.reconstruction.detach().norm(2, {1}) - 1).abs().max().item<double>() < 1e-5);
    CHECK(model->embed_dim() == d);
    CHECK(model->encoder->named_parameters()["up1.weight"].sizes() == at::IntArrayRef({d, 512, 3, 3}));
    CHECK(model->decoder->named_parameters()["down2.weight"].sizes() == at::IntArrayRef({d, 512, 3, 3}));
    at::Tensor rec = model->decode(model->encode(x));
    CHECK(rel_err(rec, out.reconstruction) < 1e-5);
    // Parity with the NCHW reference at this size too (encoder and decoder).
    Reference ref(*model, 3);
    at::Tensor z = ref.encode(x);
    CHECK(rel_err(to_nchw(out.latent), z) < 1e-4);
    CHECK(rel_err(out.reconstruction, ref.decode(to_nchw(out.pq.quantized.detach()).to(at::kDouble))) < 1e-4);
  }
  ModelConfig bad = paper_config();
  bad.method = "something_else";
  CHECK_THROWS(PQVAEShared(bad));
  ModelConfig bad_sub = paper_config(768, 24, 4);  // 24 does not divide 128
  CHECK_THROWS(PQVAEShared(bad_sub));
}
