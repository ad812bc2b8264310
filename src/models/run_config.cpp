#include "models/run_config.h"

#include "models/method_registry.h"
#include "models/pqvae/feature_autoencoder.h"
#include "util/config.h"
#include "util/config_paths.h"

namespace semcodec {

void validate(const RunConfig& config, const std::string& source) {
  const ModelConfig& m = config.model;
  if (method_info(m.method).subvectors_cross_positions)
    require((kLatentPositions * m.latent_channels) % m.d_sub == 0,
            "{}: model.d_sub: {} does not divide model.latent_channels ({}) or the {} x {} latent values", source,
            m.d_sub, m.latent_channels, kLatentPositions, m.latent_channels);
  else
    require(m.latent_channels % m.d_sub == 0, "{}: model.d_sub: {} does not divide model.latent_channels ({})", source,
            m.d_sub, m.latent_channels);
  const SplitConfig& split = config.data.split;
  if (split.mode == "files") {
    require(!split.train_classes_file.empty(), "{}: data.split.train_classes_file: required when data.split.mode is 'files'",
            source);
    require(!split.heldout_classes_file.empty(),
            "{}: data.split.heldout_classes_file: required when data.split.mode is 'files'", source);
  }
  validate_method_keys(m, source);
}

std::string RunConfig::path(const std::string& p) const { return resolve_config_path(project_dir, p); }

bool is_path_key(const std::string& key) {
  return key == "data.features" || key == "data.split.train_classes_file" || key == "data.split.heldout_classes_file" ||
         key == "output.dir";
}

std::vector<std::string> anchor_path_overrides(std::vector<std::string> overrides, const std::string& project_dir) {
  if (project_dir.empty()) return overrides;
  for (std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || !is_path_key(o.substr(0, eq))) continue;
    o = o.substr(0, eq + 1) + anchor_to_working_dir(o.substr(eq + 1));
  }
  return overrides;
}

RunConfig load_run_config(const std::string& file, const std::vector<std::string>& overrides) {
  const std::string project = config_project_dir(file);
  RunConfig cfg = load_config<RunConfig>(file, anchor_path_overrides(overrides, project));
  cfg.project_dir = project;
  return cfg;
}

}  // namespace semcodec
