// Entropy-coder tables inside checkpoints, and Codecs built from checkpoints.
//
// Fitting encodes the training-class features with the checkpoint's model,
// counts the indices (EntropyModel::fit) and stores the integer tables in the
// "entropy.tables" tensor, with the coder and table mode in the "entropy"
// metadata (docs/checkpoint.md). A Codec is then the checkpoint's model plus
// those tables plus the fingerprint of codebook, decoder and tables.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "codec/codec.h"
#include "train/checkpoint.h"

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

// True when the checkpoint holds entropy tables.
bool has_entropy_tables(const Checkpoint& ckpt);
EntropyModel checkpoint_entropy_model(const Checkpoint& ckpt, const std::string& source);
CoderId checkpoint_coder(const Checkpoint& ckpt, const std::string& source);

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

// Copies the tables (and their metadata) of checkpoint `from` into checkpoint
// `to`, rewriting `to` atomically; for two checkpoints holding the same weights.
void copy_entropy_tables(const std::string& from, const std::string& to);

// A Codec for the checkpoint (its model on `device`, its tables, its fingerprint).
// Fails with a hint to run `semcodec fit-entropy` when the tables are missing.
std::unique_ptr<Codec> make_codec(const Checkpoint& ckpt, const std::string& source, const std::string& device = "auto");
std::unique_ptr<Codec> load_codec(const std::string& checkpoint, const std::string& device = "auto");

}  // namespace semcodec
