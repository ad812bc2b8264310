// The main job on the built-in synthetic data (`semcodec quickstart`):
// synthesize the default CLIP-like set, train PQVAE-shared and fit
// adaptive_klt at 400 and 600 bits, evaluate each on the 200 held-out classes
// through real bitstreams, and write results.json and report.md.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/run_config.h"

namespace semcodec {

struct QuickstartOptions {
  std::string out = "runs/quickstart";
  std::string compute_dtype = "auto";  // model.compute_dtype of the networks
  // Sized to finish in a few minutes on 2 CPU cores (~120-250 training
  // samples/s): 2 x 125 steps per network. Accuracy keeps rising with longer
  // training (steps_per_epoch 0 and more epochs, or configs/quickstart.yaml).
  int64_t epochs = 2, steps_per_epoch = 125, train_batch = 64, threads = 0;
  double lr = 3e-3;
  bool fresh = false;  // regenerate the synthetic set even if it exists
};

// The run config of each quickstart model, on the feature file `data`.
RunConfig quickstart_pqvae_config(const QuickstartOptions& o, const std::string& data, int64_t codebook_size);
RunConfig quickstart_klt_config(const QuickstartOptions& o, const std::string& data, int64_t target_bits);

struct QuickstartReport {
  std::vector<nlohmann::json> rows;  // one evaluate_checkpoint record per model
  std::string markdown;              // what report.md holds
};

// Runs the whole job, printing one line per stage; writes <out>/results.json
// and <out>/report.md atomically.
QuickstartReport run_quickstart(const QuickstartOptions& o);

}  // namespace semcodec
