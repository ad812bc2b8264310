// Reference points beside the learned methods (docs/baselines.md): the
// L2-normalized embedding stored as float16 (16 bits per dimension), and
// symmetric uniform integer quantization, int8 / int4, with the scale fitted
// to the largest |value| of the training features (per dimension or one for
// all): q = clamp(round(x / s), -2^(b-1), 2^(b-1) - 1), s = max|x| / (2^(b-1) - 1).
#pragma once
#include "models/quantizers/fitted_quantizer.h"
#include "util/config_fields.h"

namespace semcodec {

// The methods int8 and int4's own options (model.uniform_scale).
struct UniformQuantizerOptions {
  std::string scale = "per_dim";  // per_dim | global: max |x| fitted on the training features
  template <class V> void visit(V& v) {
    v.field("uniform_scale", scale, "int8 / int4: per_dim | global max |x| (fitted on the training rows)",
            Limits::one_of({"per_dim", "global"}));
  }
};

class Float16Quantizer : public FittedQuantizer {
 public:
  explicit Float16Quantizer(int64_t embed_dim);
  std::string name() const override { return "float16"; }
  at::Tensor encode(const at::Tensor& x) override;  // the IEEE half bit pattern of each value, in [0, 65536)
  at::Tensor decode(const at::Tensor& indices) override;
  int64_t slots() const override { return embed_dim_; }
  int64_t alphabet_size(int64_t) const override { return 65536; }
  int64_t embed_dim() const override { return embed_dim_; }
  bool is_trained() const override { return true; }
  std::map<std::string, at::Tensor> state() const override { return {}; }
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) override;

 private:
  int64_t embed_dim_;
};

class UniformQuantizer : public FittedQuantizer {
 public:
  UniformQuantizer(int64_t embed_dim, int64_t bits, bool per_dim_scale);
  std::string name() const override { return bits_ == 8 ? "int8" : bits_ == 4 ? "int4" : "uniform"; }
  void fit(const at::Tensor& x) override;
  at::Tensor encode(const at::Tensor& x) override;  // q + 2^(b-1)
  at::Tensor decode(const at::Tensor& indices) override;
  int64_t slots() const override { return embed_dim_; }
  int64_t alphabet_size(int64_t) const override { return int64_t{1} << bits_; }
  int64_t embed_dim() const override { return embed_dim_; }
  bool is_trained() const override { return scale_.defined(); }
  // "scale": [D] (per dimension) or [1], float32, > 0.
  std::map<std::string, at::Tensor> state() const override;
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) override;

 private:
  int64_t embed_dim_, bits_;
  bool per_dim_;
  at::Tensor scale_;
};

}  // namespace semcodec
