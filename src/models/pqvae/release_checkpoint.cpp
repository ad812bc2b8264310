#include "models/pqvae/release_checkpoint.h"

#include <ATen/ATen.h>

#include <set>
#include <vector>

#include "data/torch_archive_tensor.h"
#include "models/pqvae/pqvae_shared.h"
#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

namespace {

class ReleaseStateDict {
 public:
  ReleaseStateDict(const std::string& path) : path_(path), tensors_(read_torch_tensors(path)) {
    require(!tensors_.empty(), "{}: holds no tensors, not a release state dict", path_);
  }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  // The tensor `name` with `rank` dimensions, float32.
  at::Tensor get(const std::string& name, int64_t rank) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) {
      std::string some;
      int shown = 0;
      for (const auto& kv : tensors_)
        if (shown++ < 4) some += (some.empty() ? "" : ", ") + kv.first;
      fail("{}: no tensor '{}': not a state dict of the release's feature_compression (PQVAE-shared); it holds {}{}",
           path_, name, some, tensors_.size() > 4 ? ", ..." : "");
    }
    const at::Tensor& t = it->second;
    require(at::isFloatingType(t.scalar_type()), "{}: '{}' is {}, not a floating-point weight", path_, name,
            std::string(at::toString(t.scalar_type())));
    require(t.dim() == rank, "{}: '{}' has shape {}, a PQVAE-shared weight of rank {}", path_, name, t.sizes(), rank);
    used_.insert(name);
    return t.to(at::kFloat).contiguous();
  }
  // Tensors no mapping took: an architecture this converter does not know.
  void require_all_used() const {
    std::string left;
    int n = 0;
    for (const auto& kv : tensors_)
      if (!used_.count(kv.first) && n++ < 6) left += fmt::format("\n  - unexpected '{}' {}", kv.first, kv.second.sizes());
    require(n == 0, "{}: {} tensor(s) that the release's PQVAE-shared does not have:{}", path_, n, left);
  }

 private:
  std::string path_;
  std::map<std::string, at::Tensor> tensors_;
  std::set<std::string> used_;
};

}  // namespace

Checkpoint checkpoint_from_release(const std::string& path, const RunConfig& base) {
  ReleaseStateDict sd(path);
  // Sizes from the encoder and the codebook; load_module_state below checks
  // that every other weight, the decoder's included, fits them.
  const at::Tensor up1 = sd.get("encoder.initial_conv1.weight", 4);  // ConvTranspose2d: [D, hidden, 3, 3]
  const at::Tensor up2 = sd.get("encoder.initial_conv2.weight", 4);  // [hidden, body, 3, 3]
  const at::Tensor to_latent = sd.get("encoder.pre_quant_conv.weight", 4);  // Conv2d: [c, body, 3, 3]
  const at::Tensor codebook = sd.get("quantize.embedding.weight", 2);       // [K, d_sub]
  int64_t layers = 0;
  while (sd.has(fmt::format("encoder.residual_stack.stack.{}.res_block.1.weight", layers))) ++layers;
  const std::string first_res = "encoder.residual_stack.stack.0.res_block.1.weight";

  RunConfig cfg = base;
  ModelConfig& m = cfg.model;
  m.method = "pqvae_shared";
  m.embed_dim = up1.size(0);
  m.hidden_channels = up1.size(1);
  m.body_channels = up2.size(1);
  m.residual_layers = layers;
  m.residual_channels = layers > 0 ? sd.get(first_res, 4).size(1) : m.residual_channels;
  m.latent_channels = to_latent.size(0);
  m.d_sub = codebook.size(1);
  m.codebook_size = codebook.size(0);
  // The release's network: no centring offset, float32 convolutions, and its
  // uniform codebook initialization should the checkpoint be trained further.
  m.center_features = false;
  m.compute_dtype = "float32";
  m.codebook_init = "uniform";
  require(m.codebook_size >= 2 && m.codebook_size <= 65536,
          "{}: quantize.embedding.weight {} holds {} codewords; PQVAE-shared needs 2 to 65,536", path,
          codebook.sizes(), m.codebook_size);
  require(m.embed_dim >= 8 && m.d_sub >= 1, "{}: shapes {} and {} fit no PQVAE-shared", path, up1.sizes(),
          codebook.sizes());
  validate(cfg, path);

  std::map<std::string, at::Tensor> state;
  auto conv = [&](const std::string& from, const std::string& to, bool bias) {
    state[to + ".weight"] = sd.get(from + ".weight", 4);
    if (bias) state[to + ".bias"] = sd.get(from + ".bias", 1);
  };
  conv("encoder.initial_conv1", "encoder.up1", true);
  conv("encoder.initial_conv2", "encoder.up2", true);
  conv("encoder.pre_quant_conv", "encoder.to_latent", true);
  conv("decoder.post_quant_conv", "decoder.from_latent", true);
  conv("decoder.final_conv1", "decoder.down1", true);
  conv("decoder.final_conv2", "decoder.down2", true);
  for (const char* side : {"encoder", "decoder"})
    for (int64_t i = 0; i < layers; ++i) {
      // res_block.0 and .2 are the ReLUs: no weights.
      conv(fmt::format("{}.residual_stack.stack.{}.res_block.1", side, i), fmt::format("{}.res.wide.{}", side, i), false);
      conv(fmt::format("{}.residual_stack.stack.{}.res_block.3", side, i), fmt::format("{}.res.narrow.{}", side, i), false);
    }
  state["pq.codebook"] = codebook;
  sd.require_all_used();
  // What the release does not have: dead-code bookkeeping and the (unused) centring mean.
  state["pq.last_used"] = at::zeros({m.codebook_size}, at::kLong);
  state["feature_mean"] = at::zeros({m.embed_dim});

  PQVAEShared model(m);
  load_module_state(model, state, path);  // lists every weight whose shape does not fit
  Checkpoint ck;
  ck.config = cfg;
  ck.model = module_state(model);
  ck.extra_metadata["converted_from"] = path;
  return ck;
}

}  // namespace semcodec
