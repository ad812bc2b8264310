// Training of the methods fitted in one pass (MethodKind::fitted: learned SQ,
// the FAISS anchors, float16 / int8 / int4, the adaptive KLT; docs/baselines.md): fit on the
// training classes' features, evaluate on the held-out classes, and write the
// same outputs as network training: best.safetensors and last.safetensors
// (identical: there is one "epoch"), metrics.jsonl (one record) and
// config.resolved.yaml. Called by train_run (trainer.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>

#include "models/quantizers/quantizer.h"
#include "models/run_config.h"
#include "train/run_setup.h"

namespace semcodec {

TrainResult fit_in_one_pass(const RunConfig& config, const TrainOptions& options);

// decode(encode(x)) in batches of `batch` rows, on the CPU.
at::Tensor reconstruct_in_batches(Quantizer& quantizer, const at::Tensor& x, int64_t batch = 4096);

// Codebook health from indices [N, slots]: per slot, the perplexity of its
// symbol distribution; used / dead count every (slot, symbol) pair. Null when
// the alphabets are too large to count (float16).
nlohmann::json slot_usage(const Quantizer& quantizer, const at::Tensor& indices);

}  // namespace semcodec
