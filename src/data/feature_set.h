// An in-memory labelled set of embeddings with its class metadata: what a
// feature file holds (docs/feature-store.md), once loaded.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace semcodec {

// Provenance stored as attributes of the feature file.
struct FeatureAttrs {
  std::string encoder_model = "unknown";  // e.g. "ViT-L/14@336px", "synthetic-clip-v1"
  std::string dataset = "unknown";        // e.g. "imagenet-val", "synthetic"
  std::string split = "all";              // e.g. "val", "train", "all"
  std::string preprocessing = "none";     // e.g. "resize336-bicubic-centercrop-clipnorm"
  std::string tool_version;               // filled by the writer when empty
};

struct FeatureSet {
  at::Tensor features;                  // [N, D] float32, CPU, rows L2-normalized by producers
  at::Tensor labels;                    // [N] int64, class index into class_names
  std::vector<std::string> ids;         // [N] source ids (file names, "synthetic/123", ...)
  std::vector<std::string> class_names; // [C]
  at::Tensor class_embeddings;          // [C, D] float32 text embeddings, or undefined
  at::Tensor image_sizes;               // [N, 2] int32 (height, width) of source images, or undefined
  FeatureAttrs attrs;

  int64_t size() const { return features.defined() ? features.size(0) : 0; }
  int64_t dim() const { return features.defined() ? features.size(1) : 0; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  bool has_text() const { return class_embeddings.defined() && class_embeddings.numel() > 0; }
};

// Rows whose label is in `classes` (labels keep their global values).
FeatureSet select_classes(const FeatureSet& set, const std::vector<int64_t>& classes);
// The given rows, in that order (each in [0, size)).
FeatureSet select_rows(const FeatureSet& set, const std::vector<int64_t>& rows);
// The rows i * n / max_rows for i < max_rows: at most `max_rows` of n rows at an
// even stride (all n when max_rows is 0 or >= n).
std::vector<int64_t> strided_row_indices(int64_t n, int64_t max_rows);
// Those rows of a set.
FeatureSet stride_rows(const FeatureSet& set, int64_t max_rows);

}  // namespace semcodec
