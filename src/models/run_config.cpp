#include "models/run_config.h"

#include "models/method_registry.h"
#include "models/pqvae/feature_autoencoder.h"

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

}  // namespace semcodec
