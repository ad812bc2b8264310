// Adam (torch.optim.Adam / AdamW semantics), written out so that
// its whole state is ours to checkpoint, restore, reset per codeword and keep
// identical across LibTorch versions and ranks.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace semcodec {

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  // true: AdamW's decoupled decay w -= lr * wd * w. false: torch.optim.Adam's
  // L2 form g += wd * w, which Adam's normalization turns into a shrink of
  // about lr per step on weights whose gradients are tiny (it zeroes PQVAE's
  // deep layers within ~50 steps at lr 3e-3, wd 5e-4).
  bool decoupled_weight_decay = true;
  // How a step runs. fused: one pass over each CPU tensor (float32 / float64)
  // reading g, m, v, w once instead of ~9 element-wise ops; elsewhere (CUDA)
  // LibTorch's multi-tensor _foreach_ ops, ~9 launches per step for all
  // parameters instead of ~9 per parameter. false: the _foreach_ ops everywhere
  // (the tests compare both).
  bool fused = true;
};

class Adam {
 public:
  // Named parameters, in a fixed order (the module's named_parameters()).
  Adam(std::vector<std::pair<std::string, at::Tensor>> params, AdamOptions opt);

  void zero_grad();
  void step();
  void set_lr(double lr) { opt_.lr = lr; }
  double lr() const { return opt_.lr; }
  int64_t steps() const { return step_; }

  // Forget the moments of some rows of one parameter (re-seeded codewords).
  void reset_rows(const std::string& param, const std::vector<int64_t>& rows);

  // State as named tensors ("m.<param>", "v.<param>", "step") for checkpoints.
  std::map<std::string, at::Tensor> state() const;
  // Restores state(); fails naming the tensor when a name or shape differs.
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source);

 private:
  struct Slot {
    std::string name;
    at::Tensor param, m, v;
  };
  std::vector<Slot> slots_;
  AdamOptions opt_;
  int64_t step_ = 0;
};

}  // namespace semcodec
