// Trains any registered compression method from a RunConfig: the one entry
// point of `semcodec train`, sweeps and the quickstart. The method's kind
// (models/method_registry.h) picks the path: network methods train by
// gradient descent (network_training.h), fitted methods fit in one pass
// (one_pass_fit.h); both write the same run outputs (best/last checkpoints
// with entropy-coder tables, metrics.jsonl, config.resolved.yaml).
#pragma once
#include "models/run_config.h"
#include "train/run_setup.h"

namespace semcodec {

TrainResult train_run(const RunConfig& config, const TrainOptions& options);

}  // namespace semcodec
