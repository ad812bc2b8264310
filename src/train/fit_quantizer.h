// The training path of the methods fitted in one pass (learned SQ, the FAISS
// anchors, float16 / int8 / int4; docs/baselines.md): fit on the training
// classes' features, evaluate on the held-out classes, and write the same
// outputs as the network trainer: best.safetensors and last.safetensors
// (identical: there is one "epoch"), metrics.jsonl (one record) and
// config.resolved.yaml.
#pragma once
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>

#include "models/quantizers/quantizer.h"
#include "models/run_config.h"
#include "train/trainer.h"

namespace semcodec {

TrainResult fit_quantizer_run(const RunConfig& config, const TrainOptions& options);

// decode(encode(x)) in batches of `batch` rows, on the CPU.
at::Tensor reconstruct_in_batches(Quantizer& quantizer, const at::Tensor& x, int64_t batch = 4096);

// Codebook health from indices [N, slots]: per slot, the perplexity of its
// symbol distribution; used / dead count every (slot, symbol) pair. Null when
// the alphabets are too large to count (float16).
nlohmann::json slot_usage(const Quantizer& quantizer, const at::Tensor& indices);

}  // namespace semcodec
