// The registry of compression methods: every method once, with its name (the
// model.method of configs and checkpoints), its kind, its own options and how
// to build it. Every list of methods (the config's allowed values, the
// trainer's dispatch, sweeps, benchmarks, error messages) iterates it, and
// eval, the codec and sweeps build any method through it from a checkpoint.
//
// Adding a method: its own file defining the Quantizer, its options struct and
// `MethodInfo <name>_method()`, plus one line in method_registry.cpp
// (docs/architecture.md, "Registries" and "Worked example: adding a method").
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/model_config.h"
#include "models/quantizers/fitted_quantizer.h"
#include "models/quantizers/quantizer.h"

namespace semcodec {

struct Checkpoint;

enum class MethodKind {
  fitted,   // fitted in one pass on the training features (Quantizer::fit; a FittedQuantizer)
  network,  // a PQ-VAE (models/pqvae/pqvae.h) trained by gradient descent (train/network_training.h)
};
const char* method_kind_name(MethodKind kind);  // "fitted" | "network"

using TensorMap = std::map<std::string, at::Tensor>;

struct MethodInfo {
  std::string name;     // model.method
  MethodKind kind = MethodKind::fitted;
  std::string summary;  // one line for docs and help texts
  // Its own options (model.* keys beside the shared ones), default-valued;
  // nullptr: none. Methods of one family share one options type.
  std::unique_ptr<OptionGroup> (*options)() = nullptr;
  // model.d_sub need only divide the 25 * c latent values, not c: sub-vectors
  // may run across positions (the paper release's layout; pq_module.h).
  bool subvectors_cross_positions = false;
  // Cross-field checks of those options; nullptr: none. Errors start with `source`.
  void (*validate)(const ModelConfig& config, const std::string& source) = nullptr;
  // An untrained quantizer for the config: a FittedQuantizer (fitted) or a PQVAE (network).
  std::shared_ptr<Quantizer> (*make)(const ModelConfig& config) = nullptr;
  // The trained quantizer from a checkpoint's "model.*" tensors; nullptr:
  // make(), then the state restored (load_state for fitted methods,
  // load_module_state for networks, in evaluation mode).
  std::shared_ptr<Quantizer> (*load)(const ModelConfig& config, const TensorMap& state,
                                     const std::string& source) = nullptr;
};

// Every registered method, in the order lists and docs show them.
const std::vector<MethodInfo>& methods();
// The entry of model.method; Error naming the registered methods otherwise.
const MethodInfo& method_info(const std::string& name);
std::vector<std::string> method_names(MethodKind kind);

// The method's own cross-field checks (MethodInfo::validate) of `model`.
void validate_method_keys(const ModelConfig& model, const std::string& source);

// An untrained quantizer of model.method.
std::shared_ptr<Quantizer> make_quantizer(const ModelConfig& model);
// The same for a fitted method; fails for network methods.
std::shared_ptr<FittedQuantizer> make_fitted_quantizer(const ModelConfig& model);

// The checkpoint's quantizer with its trained state, in evaluation mode;
// networks are moved to `device` (auto | cpu | cuda[:N]); fitted quantizers
// always run on the CPU.
std::shared_ptr<Quantizer> load_quantizer(const Checkpoint& ckpt, const std::string& source,
                                          const std::string& device = "cpu");

}  // namespace semcodec
