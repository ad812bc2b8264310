// Evaluates a quantizer on a feature set: zero-shot (or nearest-class-mean)
// accuracy of the reconstructions next to the clean upper bound, mean cosine,
// and the rate in bits per image, per dimension and, when image sizes are
// known, per pixel.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/feature_set.h"
#include "models/quantizers/quantizer.h"

namespace semcodec {

struct EvalSpec {
  std::vector<int64_t> classes;   // global class ids evaluated (their rows, C'-way)
  std::string classifier = "auto";  // auto (zero-shot when text exists) | zero-shot | ncm
  const FeatureSet* reference = nullptr;  // ncm: labelled reference features for the class means
  double bits_per_item = -1;      // measured rate; < 0 = the quantizer's raw rate
  std::string rate_source = "raw";  // "raw" or the bitstream it was counted from
  std::string label;              // row label in reports
};

// Returns {label, classifier, classes, rows, top1, top5, clean_top1, clean_top5,
// mean_cosine, bits_per_item, bpd, bpp (or null), raw_bits, rate_source}.
nlohmann::json evaluate_quantizer(Quantizer& quantizer, const FeatureSet& set, const EvalSpec& spec);
// Same metrics for reconstructions computed elsewhere (e.g. decoded from a bitstream).
nlohmann::json evaluate_reconstruction(const at::Tensor& reconstruction, const FeatureSet& set, const EvalSpec& spec,
                                       double raw_bits);

// A Markdown table of evaluation records (one row each).
std::string eval_markdown(const std::vector<nlohmann::json>& records);

}  // namespace semcodec
