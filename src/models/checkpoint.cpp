#include "models/checkpoint.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "data/safetensors.h"
#include "semcodec_version.h"
#include "util/json_bounded.h"
#include "util/config.h"
#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

namespace {
constexpr const char* kFormat = "semcodec.checkpoint";
constexpr int kFormatVersion = 1;

nlohmann::json state_json(const TrainingState& s) {
  return {{"epochs_done", s.epochs_done}, {"step", s.step}, {"best_top1", s.best_top1}, {"best_epoch", s.best_epoch}};
}

const std::string& meta(const std::map<std::string, std::string>& m, const std::string& key, const std::string& src) {
  auto it = m.find(key);
  require(it != m.end(), "{}: not a semcodec checkpoint (metadata '{}' is missing)", src, key);
  return it->second;
}

nlohmann::json parse_json(const std::string& text, const std::string& key, const std::string& src) {
  return parse_json_bounded(text, fmt::format("{}: metadata '{}'", src, key));
}
}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [k, v] : ckpt.model) tensors["model." + k] = v;
  for (const auto& [k, v] : ckpt.optimizer) tensors["optim." + k] = v;
  for (const auto& [k, v] : ckpt.entropy) tensors["entropy." + k] = v;
  std::map<std::string, std::string> md = ckpt.extra_metadata;
  md["format"] = kFormat;
  md["format_version"] = std::to_string(kFormatVersion);
  md["tool_version"] = SEMCODEC_VERSION;
  md["config"] = to_json(ckpt.config).dump();
  md["split"] = nlohmann::json{{"train", ckpt.train_classes}, {"heldout", ckpt.heldout_classes}}.dump();
  md["dataset"] = ckpt.dataset.dump();
  md["state"] = state_json(ckpt.state).dump();
  write_safetensors(path, tensors, md);
}

Checkpoint load_checkpoint(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  const auto& md = file.metadata;
  require(meta(md, "format", path) == kFormat, "{}: not a semcodec checkpoint (format '{}')", path, md.at("format"));
  const int version = std::atoi(meta(md, "format_version", path).c_str());
  require(version == kFormatVersion, "{}: checkpoint format version {} is not supported (this build reads {})", path,
          version, kFormatVersion);
  Checkpoint ckpt;
  ckpt.config = from_json<RunConfig>(parse_json(meta(md, "config", path), "config", path), path + " [config]");
  nlohmann::json split = parse_json(meta(md, "split", path), "split", path);
  ckpt.train_classes = split.value("train", std::vector<int64_t>{});
  ckpt.heldout_classes = split.value("heldout", std::vector<int64_t>{});
  ckpt.dataset = parse_json(meta(md, "dataset", path), "dataset", path);
  nlohmann::json st = parse_json(meta(md, "state", path), "state", path);
  ckpt.state.epochs_done = st.value("epochs_done", int64_t{0});
  ckpt.state.step = st.value("step", int64_t{0});
  ckpt.state.best_top1 = st.value("best_top1", -1.0);
  ckpt.state.best_epoch = st.value("best_epoch", int64_t{-1});
  for (const auto& [k, v] : md) {
    if (k != "format" && k != "format_version" && k != "tool_version" && k != "config" && k != "split" &&
        k != "dataset" && k != "state")
      ckpt.extra_metadata[k] = v;
  }
  for (auto& [name, t] : file.tensors) {
    auto dot = name.find('.');
    std::string group = name.substr(0, dot), rest = dot == std::string::npos ? "" : name.substr(dot + 1);
    if (group == "model") ckpt.model[rest] = t;
    else if (group == "optim") ckpt.optimizer[rest] = t;
    else if (group == "entropy") ckpt.entropy[rest] = t;
    else fail("{}: unexpected tensor '{}' (expected model.*, optim.* or entropy.*)", path, name);
  }
  return ckpt;
}

std::map<std::string, at::Tensor> module_state(const torch::nn::Module& module) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value().detach();
  for (const auto& b : module.named_buffers()) out[b.key()] = b.value().detach();
  return out;
}

void load_module_state(torch::nn::Module& module, const std::map<std::string, at::Tensor>& state,
                       const std::string& source) {
  std::map<std::string, at::Tensor> expected;
  for (const auto& p : module.named_parameters()) expected[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) expected[b.key()] = b.value();
  std::vector<std::string> problems;
  for (const auto& [name, t] : expected) {
    auto it = state.find(name);
    if (it == state.end()) problems.push_back(fmt::format("missing '{}' {}", name, t.sizes()));
    else if (it->second.sizes() != t.sizes())
      problems.push_back(fmt::format("'{}' has shape {}, the model needs {}", name, it->second.sizes(), t.sizes()));
  }
  for (const auto& [name, t] : state)
    if (!expected.count(name)) problems.push_back(fmt::format("unexpected '{}' {}", name, t.sizes()));
  if (!problems.empty()) {
    std::string msg;
    for (size_t i = 0; i < problems.size() && i < 12; ++i) msg += "\n  - " + problems[i];
    if (problems.size() > 12) msg += fmt::format("\n  ... and {} more", problems.size() - 12);
    fail("{}: checkpoint does not match the model configuration:{}", source, msg);
  }
  at::NoGradGuard g;
  for (auto& [name, t] : expected) t.copy_(state.at(name));
}

}  // namespace semcodec
