// PQVAE-shared's training step on a GPU against the same steps on the CPU
// from the same initial weights: the network, the quantizer, the loss and the
// optimizer must do the same arithmetic on both (float32; LibTorch keeps TF32
// off for matrix products by default). Skipped without CUDA (cuda_support.h).
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cuda_support.h"
#include "data/device.h"
#include "models/pqvae/pqvae_shared.h"
#include "models/run_config.h"
#include "train/adam.h"
#include "train/pqvae_objective.h"
#include "train/train_fixture.h"

using namespace semcodec;

namespace {
// The trainer tests' narrow PQVAE-shared (train_fixture.h), in `compute`.
ModelConfig small_model(const std::string& compute) {
  ModelConfig c = test::small_run("", "").model;
  c.compute_dtype = compute;
  return c;
}

// Trains `steps` Adam steps on consecutive batches of 32 rows of `data`.
void train_steps(PQVAEShared& model, const at::Tensor& data, int steps) {
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (auto& p : model.named_parameters()) params.emplace_back(p.key(), p.value());
  Adam adam(params, AdamOptions{});
  for (int i = 0; i < steps; ++i) {
    const at::Tensor x = data.narrow(0, (i * 32) % data.size(0), 32);
    adam.zero_grad();
    pqvae_loss(x, model.forward(x), LossConfig{}).total.backward();
    adam.step();
  }
}

std::shared_ptr<PQVAEShared> seeded_model(const ModelConfig& c) {
  at::manual_seed(7);
  return std::make_shared<PQVAEShared>(c);
}

at::Tensor unit_rows(int64_t n, int64_t d) {
  at::manual_seed(11);
  const at::Tensor x = at::randn({n, d});
  return x / x.norm(2, {1}, true);
}
}  // namespace

TEST_CASE("CUDA: PQVAE-shared trains on the GPU to the parameters the CPU reaches", "[train][cuda]") {
  if (!test::cuda_present()) return;
  const c10::Device gpu("cuda:0");
  const ModelConfig c = small_model("float32");
  const at::Tensor data = unit_rows(256, c.embed_dim);
  auto on_cpu = seeded_model(c), on_gpu = seeded_model(c);
  on_gpu->to(gpu);
  train_steps(*on_cpu, data, 6);
  train_steps(*on_gpu, data.to(gpu), 6);

  const auto a = on_cpu->named_parameters(), b = on_gpu->named_parameters();
  REQUIRE(a.size() == b.size());
  for (const auto& p : a) {
    const at::Tensor u = p.value().detach().to(at::kDouble), v = b[p.key()].detach().cpu().to(at::kDouble);
    const double rel = (u - v).abs().max().item<double>() / std::max(1e-12, u.abs().max().item<double>());
    INFO(p.key() << ": max relative difference " << rel);
    CHECK(rel < 1e-3);
  }
  // The trained models assign (almost) every sub-vector the same codeword; only
  // near-ties may differ between the two devices' rounding.
  const at::Tensor ia = on_cpu->encode(data), ib = on_gpu->encode(data.to(gpu)).cpu();
  REQUIRE(ia.sizes() == ib.sizes());
  const double same = ia.eq(ib).to(at::kDouble).mean().item<double>();
  INFO("fraction of equal indices " << same);
  CHECK(same > 0.99);
  const at::Tensor ra = on_cpu->decode(ia), rb = on_gpu->decode(ia.to(gpu)).cpu();
  CHECK((ra - rb).abs().max().item<double>() < 1e-4);
}

TEST_CASE("CUDA: bfloat16 compute on the GPU keeps the quantizer in float32 and tracks float32", "[train][cuda]") {
  if (!test::cuda_present()) return;
  const c10::Device gpu("cuda:0");
  const at::Tensor data = unit_rows(256, 64).to(gpu);
  auto f32 = seeded_model(small_model("float32")), bf16 = seeded_model(small_model("bfloat16"));
  f32->to(gpu);
  bf16->to(gpu);
  const PQVAEForward q = bf16->forward(data);
  CHECK(q.latent.scalar_type() == at::kFloat);  // distances to the codebook are float32
  CHECK(q.reconstruction.scalar_type() == at::kFloat);
  // The network alone (no codeword flips at near-ties): bfloat16 rounding only.
  const PQVAEForward a = f32->forward(data, /*bypass_quantizer=*/true), b = bf16->forward(data, true);
  const double cos = (a.reconstruction * b.reconstruction).sum(1).min().item<double>();  // unit rows
  INFO("min cosine of the reconstructions " << cos);
  CHECK(cos > 0.99);
  CHECK((a.reconstruction - b.reconstruction).abs().max().item<double>() > 0);  // it did compute in bfloat16
  train_steps(*bf16, data, 4);
  for (const auto& p : bf16->parameters()) CHECK(at::isfinite(p).all().item<bool>());
}

TEST_CASE("compute_dtype auto is bfloat16 only on a CPU with native bfloat16", "[train]") {
  ModelConfig c = small_model("auto");
  CHECK(compute_dtype(c, c10::Device("cuda:0")) == at::kFloat);
  CHECK(compute_dtype(c, c10::Device("cpu")) == (cpu_has_native_bfloat16() ? at::kBFloat16 : at::kFloat));
  c.compute_dtype = "bfloat16";
  CHECK(compute_dtype(c, c10::Device("cuda:0")) == at::kBFloat16);
  c.compute_dtype = "float32";
  CHECK(compute_dtype(c, c10::Device("cpu")) == at::kFloat);
}
