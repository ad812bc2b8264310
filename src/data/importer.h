// Turns embeddings saved by other tools into a FeatureSet, so `semcodec
// import` can write them as a feature file. A file is read by what its bytes
// say it is: .npy, .npz (a key picks the array) or a torch.save archive
// (data/torch_archive.h; nothing in it is executed), e.g. the paper release's
// `torch.save((features, labels))` files and `*_text_features.pt` tensors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/feature_set.h"

namespace semcodec {

// Array sources are a path plus `*_key`, which names the array of a .npz, or
// the tensor of a .pt as data/torch_archive.h names them ("0", "1" for a
// tuple's elements, "encoder.weight" in a state dict). A file holding a single
// array needs no key, and a .pt holding a two-tensor tuple gives the features
// its "0" and the labels its "1" (the release's (features, labels) files).
struct ImportRows {
  std::string features_path, features_key;  // [N, D] float16/32/64
  std::string labels_path, labels_key;      // [N] (or [N, 1]) integers
};

// Rows come from one or more sources, concatenated in order. Sources whose
// labels come from the same file share its label space; each further labels
// file gets the classes after the previous files' (max label + 1 each), so
// two datasets imported together keep disjoint classes (class names and text
// embeddings then cannot be given).
struct ImportOptions {
  std::string features_path, features_key;            // [N, D] float16/32/64
  std::string labels_path, labels_key;                // [N] (or [N, 1]) integers
  std::vector<ImportRows> more_rows;                  // further sources after the first
  std::string class_names_path;                       // .txt, one name per line; else class_<i>
  std::string text_embeddings_path, text_embeddings_key;  // optional [C, D]
  std::string image_sizes_path, image_sizes_key;      // optional [N, 2] integers (height, width)
  std::string ids_path;                               // optional .txt, one id per line; else <stem>/<i>
  int64_t num_classes = 0;  // 0: from class names, else text embeddings, else max label + 1
  bool normalize = true;    // L2-normalize rows (a zero-norm row is an error)
  FeatureAttrs attrs;
};

FeatureSet import_embeddings(const ImportOptions& options);

}  // namespace semcodec
