#include "models/run_config.h"

#include "models/method_registry.h"

namespace semcodec {

void validate(const RunConfig& config, const std::string& source) {
  const ModelConfig& m = config.model;
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
