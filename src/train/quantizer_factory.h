// Builds any compression method behind the one Quantizer interface: untrained
// from a model config (the fit path), or trained from a checkpoint (eval,
// codec). model.method picks the class (docs/baselines.md).
#pragma once
#include <memory>
#include <string>

#include "models/quantizers/fitted_quantizer.h"
#include "train/checkpoint.h"
#include "util/run_config.h"

namespace semcodec {

// Methods fitted in one pass (learned_sq*, faiss_*, float16, int8, int4).
bool is_fitted_method(const std::string& method);
// Methods trained by gradient descent (pqvae_shared, vqvae_kmeans_pq).
bool is_network_method(const std::string& method);

// An untrained fitted quantizer for model.method; fails for network methods,
// and for faiss_* in a build without FAISS.
std::shared_ptr<FittedQuantizer> make_fitted_quantizer(const ModelConfig& model);

// The checkpoint's quantizer with its trained state, in evaluation mode;
// networks are moved to `device` (auto | cpu | cuda[:N]); fitted quantizers
// always run on the CPU.
std::shared_ptr<Quantizer> make_quantizer(const Checkpoint& ckpt, const std::string& source,
                                          const std::string& device = "cpu");

}  // namespace semcodec
