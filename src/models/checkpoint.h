// Checkpoints are safetensors files: the model's tensors ("model.*"), for the
// last checkpoint of a run also the optimizer ("optim.*"), and, once fitted,
// the entropy-coder tables ("entropy.*"); JSON metadata carries the resolved
// run config, the class split, dataset provenance, training state and the tool
// version (docs/checkpoint.md). Writes are atomic.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/run_config.h"

namespace torch::nn {
class Module;
}

namespace semcodec {

struct TrainingState {
  int64_t epochs_done = 0;   // epochs completed; a resumed run starts at this epoch
  int64_t step = 0;          // optimizer steps done
  double best_top1 = -1;     // best validation zero-shot top-1 so far
  int64_t best_epoch = -1;
};

struct Checkpoint {
  RunConfig config;
  std::vector<int64_t> train_classes, heldout_classes;
  nlohmann::json dataset = nlohmann::json::object();  // provenance of the training features
  TrainingState state;
  std::map<std::string, at::Tensor> model;      // parameters and buffers by module name
  std::map<std::string, at::Tensor> optimizer;  // empty unless saved for resuming
  std::map<std::string, at::Tensor> entropy;    // entropy-coder tables, empty until fitted
  std::map<std::string, std::string> extra_metadata;
};

void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
Checkpoint load_checkpoint(const std::string& path);

// Parameters and buffers of a module, by name.
std::map<std::string, at::Tensor> module_state(const torch::nn::Module& module);
// Copies `state` into the module; every missing, unexpected or mis-shaped
// tensor is listed in one error that names `source`.
void load_module_state(torch::nn::Module& module, const std::map<std::string, at::Tensor>& state,
                       const std::string& source);

}  // namespace semcodec
