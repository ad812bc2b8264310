// Evaluates a trained checkpoint on a feature file: picks the evaluated
// classes (the checkpoint's held-out split, its training split, every class,
// or a class-list file), loads the model and calls evaluate_quantizer.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace semcodec {

struct CheckpointEvalOptions {
  std::string classes = "auto";  // auto | heldout | train | all | <class-list file>
  std::string classifier = "auto";
  std::string reference_features;  // ncm: labelled reference file for class means
  std::string label;               // row label; default: the checkpoint's file stem
  std::string device = "auto";
  // Rate and accuracy from real bytes (docs/bitstream.md, "Rate accounting"):
  // bitstream: decode this stream (made by `compress` from the same feature
  // file, rows in file order) and evaluate the reconstructions it holds;
  // via_bitstream: compress the evaluated rows in memory with the
  // checkpoint's codec and evaluate what decodes from those bytes.
  std::string bitstream;
  bool via_bitstream = false;
};

nlohmann::json evaluate_checkpoint(const std::string& checkpoint, const std::string& features,
                                   const CheckpointEvalOptions& options);

}  // namespace semcodec
