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
};

nlohmann::json evaluate_checkpoint(const std::string& checkpoint, const std::string& features,
                                   const CheckpointEvalOptions& options);

}  // namespace semcodec
