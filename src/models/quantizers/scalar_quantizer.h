// Learned scalar quantization (the paper's second baseline): each of the D
// dimensions of the L2-normalized embedding is rounded to the nearest of 2^b
// levels inside [-0.5, 0.5], the levels fitted by Lloyd-Max to the training
// features. One level set shared by every dimension ("learned_sq"), or one
// per dimension ("learned_sq_per_dim"). Raw rate D * b bits.
#pragma once
#include "models/quantizers/fitted_quantizer.h"
#include "util/config_fields.h"

namespace semcodec {

// The methods learned_sq and learned_sq_per_dim's own options (model.sq_* keys).
struct ScalarQuantizerOptions {
  int64_t bits = 1;          // b: 2^b levels per dimension
  int64_t iterations = 100;  // Lloyd-Max iterations (stops earlier when the levels settle)
  template <class V> void visit(V& v) {
    v.field("sq_bits", bits, "learned_sq*: bits per dimension b (2^b Lloyd-Max levels in [-0.5, 0.5])",
            Limits::range(1, 8));
    v.field("sq_iterations", iterations, "learned_sq*: maximum Lloyd-Max iterations", Limits::range(1, 1e6));
  }
};

class LearnedScalarQuantizer : public FittedQuantizer {
 public:
  LearnedScalarQuantizer(int64_t embed_dim, int64_t bits, bool per_dim, int64_t iterations = 100);

  std::string name() const override { return per_dim_ ? "learned_sq_per_dim" : "learned_sq"; }
  void fit(const at::Tensor& x) override;
  at::Tensor encode(const at::Tensor& x) override;
  at::Tensor decode(const at::Tensor& indices) override;
  int64_t slots() const override { return embed_dim_; }
  int64_t alphabet_size(int64_t) const override { return int64_t{1} << bits_; }
  int64_t embed_dim() const override { return embed_dim_; }

  bool is_trained() const override { return levels_.defined(); }
  // "levels": [1, 2^b] (shared) or [D, 2^b] (per dimension), float32, ascending per row.
  std::map<std::string, at::Tensor> state() const override;
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) override;

  const at::Tensor& levels() const { return levels_; }

  // Shared mode fits on at most this many values (an evenly strided subset of
  // the N x D training values), which keeps the sort in memory for any N.
  static constexpr int64_t kMaxSharedValues = int64_t{1} << 22;

 private:
  void set_levels(at::Tensor levels);
  int64_t embed_dim_, bits_, iterations_;
  bool per_dim_;
  at::Tensor levels_, thresholds_;  // [G, L], [G, L - 1]
};

}  // namespace semcodec
