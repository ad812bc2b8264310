// Training of the network methods (MethodKind::network: PQ-VAEs): Adam with a
// step schedule that persists across epochs, the quantizer warm-up and the
// codebook fit, per-epoch validation on the held-out classes, best/last
// checkpoints, exact resume, JSONL metrics and codebook health, on one or
// several data-parallel ranks (docs/distributed.md). What differs between
// the networks (how their codebooks are fitted and updated) is their PQ
// module's (models/quantizers/pq_module.h). Called by train_run (trainer.h).
#pragma once
#include "models/run_config.h"
#include "train/run_setup.h"

namespace semcodec {

TrainResult train_network(const RunConfig& config, const TrainOptions& options);

}  // namespace semcodec
