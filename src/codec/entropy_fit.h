// Fitting a checkpoint's entropy-coder tables: encode the training-class
// features with the checkpoint's model, count the indices
// (EntropyModel::fit), choose the table layout and the coder, and store the
// tables (codec/checkpoint_codec.h). `fit-entropy` and the end of training.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codec/entropy/bitstream.h"
#include "models/checkpoint.h"
#include "models/quantizers/quantizer.h"

namespace semcodec {

struct EntropyFitOptions {
  std::string coder = "auto";   // auto (fewer payload bits on the training items) or a registered coder's name
  std::string tables = "auto";  // auto | shared | per-subspace | per-position | per-slot
  int64_t smoothing = 1;        // added to every count (keeps every symbol encodable)
  std::string device = "auto";
  // At most this many training rows (an even stride through them) are
  // encoded; 0 = all. Tables converge long before tens of thousands of items,
  // and encoding runs the whole encoder network.
  int64_t max_items = 0;
  bool progress = true;
};

// What EntropyFitOptions::coder accepts: "auto", then every registered coder.
std::vector<std::string> entropy_fit_coder_choices();

// Training rows the end of `train` encodes to fit a run's tables.
constexpr int64_t kEndOfTrainingFitRows = 10000;

struct EntropyFitReport {
  std::string coder, table_mode;
  int64_t items = 0, slots = 0;
  double raw_bits = 0;       // fixed-length bits per item
  double model_bits = 0;     // ideal code length of the training indices under the fitted tables
  // Per table mode: plug-in entropy of the training indices (bits/item), and
  // the 2-fold cross-validated code length (fit on one half, code the other),
  // which "auto" minimizes.
  std::map<std::string, double> entropy_bits, heldout_bits;
  // Per coder: payload bits per item on (up to 20,000 of) the training items with the stored tables.
  std::map<std::string, double> coder_bits;
  Fingerprint fingerprint{};
  nlohmann::json to_json() const;
};

// Fits tables on the indices of `train_features` under `model` (any method's
// Quantizer) and stores them in `ckpt`.
EntropyFitReport fit_checkpoint_entropy(Checkpoint& ckpt, Quantizer& model, const at::Tensor& train_features,
                                        const EntropyFitOptions& options);
// Loads `checkpoint`, fits on `train_features` and rewrites the file atomically.
EntropyFitReport fit_entropy_in_file(const std::string& checkpoint, const at::Tensor& train_features,
                                     const EntropyFitOptions& options);
// Same, reading the features file (default: the one the checkpoint was trained
// on) and keeping the rows of the checkpoint's training classes.
EntropyFitReport fit_entropy_from_features(const std::string& checkpoint, const std::string& features,
                                           const EntropyFitOptions& options);

}  // namespace semcodec
