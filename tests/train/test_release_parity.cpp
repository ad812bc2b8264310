// Parity with the paper authors' release: its own code (pqvae_shared.py,
// PyTorch 1.13, CPU) computed the goldens below from the same weights, so
// these numbers come from outside semcodec (tests/fixtures/README.md).
#include <ATen/ATen.h>
#include <torch/serialize.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "data/npy.h"
#include "data/torch_archive_tensor.h"
#include "models/pqvae/pqvae_shared.h"
#include "models/pqvae/release_checkpoint.h"
#include "test_support.h"
#include "train/pqvae_objective.h"
#include "util/error.h"

using namespace semcodec;
using Catch::Matchers::Contains;
using semcodec::test::TempDir;

namespace {

std::string fixture(const std::string& name) { return semcodec::test::fixture_path(name); }

// The release state dict (24 MB, float16 values exact; tests/fixtures/README.md).
std::string release_state_dict() { return fixture("release_state_dict_d16_k4.pt"); }

at::Tensor npz_array(const std::string& file, const std::string& key) {
  const auto arrays = read_npz(fixture(file));
  REQUIRE(arrays.count(key));
  return npy_to_tensor(arrays.at(key), false, file + ":" + key);
}

void write_torch_save(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, t] : tensors) dict.insert(name, t);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct Golden {
  at::Tensor input, eval_output, code_indices;
  double train_loss;
};

Golden golden(const std::string& file) {
  return {npz_array(file, "input"), npz_array(file, "eval_output"), npz_array(file, "code_indices"),
          npz_array(file, "train_loss").item<double>()};
}

// What the release computes from these weights: eval() output and indices,
// then the train() loss with alpha 10, beta 0.25.
void check_parity(const Checkpoint& ck, const Golden& g) {
  auto model = load_pqvae_shared(ck, "converted");
  model->eval();
  {
    at::NoGradGuard no_grad;
    const PQVAEForward out = model->forward(g.input);
    CHECK((out.reconstruction - g.eval_output).abs().max().item<double>() <= 1e-5);
    CHECK(at::equal(out.pq.indices, g.code_indices));
    CHECK(at::equal(model->encode(g.input), g.code_indices));
    CHECK((model->decode(g.code_indices) - g.eval_output).abs().max().item<double>() <= 1e-5);
  }
  model->train();
  const PQVAEForward fwd = model->forward(g.input);
  LossConfig loss;
  loss.alpha = 10;
  loss.beta = 0.25;
  const double got = pqvae_loss(g.input, fwd, loss).total.item<double>();
  CHECK(std::abs(got - g.train_loss) <= 1e-5 * std::abs(g.train_loss));
}

}  // namespace

TEST_CASE("release parity: d_sub 16, K 4 from the release's state dict", "[release]") {
  const std::string sd = release_state_dict();
  const Checkpoint ck = checkpoint_from_release(sd);
  const ModelConfig& m = ck.config.model;
  CHECK(m.method == "pqvae_shared");
  CHECK(m.embed_dim == 768);
  CHECK(m.hidden_channels == 512);
  CHECK(m.body_channels == 256);
  CHECK(m.residual_layers == 3);
  CHECK(m.residual_channels == 128);
  CHECK(m.latent_channels == 128);
  CHECK(m.d_sub == 16);
  CHECK(m.codebook_size == 4);
  CHECK_FALSE(m.center_features);
  const Golden g = golden("golden_d16_k4.npz");
  REQUIRE(g.code_indices.sizes() == at::IntArrayRef({8, 200}));
  check_parity(ck, g);
}

TEST_CASE("release parity: d_sub 10, K 8: sub-vectors that straddle positions, as the release cuts them", "[release]") {
  const std::string sd = release_state_dict();
  // The release's file with its codebook replaced by the [8, 10] one, written
  // by LibTorch's torch.save-compatible writer.
  TempDir dir("release_d10");
  std::map<std::string, at::Tensor> tensors = read_torch_tensors(sd);
  const at::Tensor cb = npy_to_tensor(read_npy(fixture("codebook_d10_k8.npy")), false, "codebook");
  REQUIRE(cb.sizes() == at::IntArrayRef({8, 10}));
  tensors["quantize.embedding.weight"] = cb;
  for (auto& [name, t] : tensors) t = t.to(at::kFloat);  // float32 as the release's own checkpoints
  write_torch_save(dir.file("d10.pt"), tensors);
  const Checkpoint ck = checkpoint_from_release(dir.file("d10.pt"));
  CHECK(ck.config.model.d_sub == 10);
  CHECK(ck.config.model.codebook_size == 8);
  const Golden g = golden("golden_d10_k8.npz");
  REQUIRE(g.code_indices.sizes() == at::IntArrayRef({8, 320}));
  auto model = load_pqvae_shared(ck, "d10");
  CHECK(model->slots() == 320);
  CHECK(pqvae_raw_bits(ck.config.model) == 320 * 3);
  check_parity(ck, g);
}

TEST_CASE("release conversion: files that are no release PQVAE-shared are refused, naming the file and the problem",
          "[release]") {
  CHECK_THROWS_WITH(checkpoint_from_release(fixture("release_state_dict_fp32_small.pt")),
                    Contains("release_state_dict_fp32_small.pt: no tensor 'encoder.initial_conv1.weight'"));
  CHECK_THROWS_WITH(checkpoint_from_release(fixture("torch_save_os_system.pt")),
                    Contains("torch_save_os_system.pt") && Contains("posix.system"));
  const std::string sd = release_state_dict();
  TempDir dir("release_bad");
  const std::map<std::string, at::Tensor> good = read_torch_tensors(sd);
  auto refused = [&](const std::string& name, std::map<std::string, at::Tensor> tensors) {
    const std::string path = dir.file(name);
    write_torch_save(path, tensors);
    try {
      checkpoint_from_release(path);
    } catch (const Error& e) {
      CHECK_THAT(std::string(e.what()), Contains(path));
      return std::string(e.what());
    }
    FAIL("no error for " << name);
    return std::string();
  };
  auto t = good;
  t["decoder.final_conv2.weight"] = at::zeros({768, 512, 1, 1});
  CHECK_THAT(refused("kernel.pt", t), Contains("'decoder.down2.weight' has shape [768, 512, 1, 1], the model needs [768, 512, 3, 3]"));
  t = good;
  t["decoder.extra.weight"] = at::zeros({2});
  CHECK_THAT(refused("extra.pt", t), Contains("unexpected 'decoder.extra.weight'"));
  t = good;
  t["quantize.embedding.weight"] = at::zeros({4, 7});  // 7 divides neither 128 nor 3,200
  CHECK_THAT(refused("dsub7.pt", t), Contains("model.d_sub: 7 does not divide model.latent_channels (128) or the 25 x 128 latent values"));
  t = good;
  t["quantize.embedding.weight"] = at::zeros({1, 16});
  CHECK_THAT(refused("k1.pt", t), Contains("holds 1 codewords"));
  t = good;
  t["encoder.pre_quant_conv.weight"] = at::zeros({128, 256, 3, 3}, at::kLong);
  CHECK_THAT(refused("int.pt", t), Contains("'encoder.pre_quant_conv.weight' is Long, not a floating-point weight"));
  t = good;
  t.erase("decoder.residual_stack.stack.2.res_block.3.weight");
  CHECK_THAT(refused("missing.pt", t), Contains("no tensor 'decoder.residual_stack.stack.2.res_block.3.weight'"));
}
