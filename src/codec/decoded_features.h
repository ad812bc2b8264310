// The feature file a decoded stream becomes (`semcodec decompress`). A
// stream carries only the coded items; the rest comes from the feature file
// it was compressed from (docs/bitstream.md).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "codec/entropy/bitstream.h"
#include "data/feature_set.h"

namespace semcodec {

// The reconstructions [N, D] with the labels, ids, class names, text
// embeddings and image sizes of `source` (the compressed feature file, which
// must have N rows; an error names `stream`), or without one labels 0, ids
// item/<row> and one class "unknown". The preprocessing attribute names the
// codec's fingerprint.
FeatureSet decoded_feature_set(const at::Tensor& reconstructions, const Fingerprint& fingerprint,
                               const std::string& source, const std::string& stream);

}  // namespace semcodec
