// Which classes train the compressor and which are held out for zero-shot
// validation: drawn from a seed, or read from the paper's class-index lists.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace semcodec {

struct ClassSplit {
  std::vector<int64_t> train, heldout;  // each sorted ascending
};

// A random split that is identical on every platform and compiler (own
// splitmix64 + Fisher-Yates, no std:: distributions).
ClassSplit split_by_seed(int64_t num_classes, int64_t num_heldout, uint64_t seed);

// Class indices from .npy (any integer dtype, 1-D), .txt (one integer per
// line, '#' starts a comment) or .yaml/.yml (a sequence, or a map whose key
// `classes` is a sequence).
std::vector<int64_t> read_class_list(const std::string& path);

// Reads both lists and validates them against num_classes.
ClassSplit split_from_files(const std::string& train_path, const std::string& heldout_path, int64_t num_classes);

// Both sides non-empty, no duplicates, disjoint, all in [0, num_classes).
// `source` names where the split came from in error messages.
void validate_split(const ClassSplit& split, int64_t num_classes, const std::string& source);

}  // namespace semcodec
