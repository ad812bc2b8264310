#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "data/feature_set.h"
#include "data/feature_store.h"
#include "models/pqvae/pqvae.h"
#include "models/pqvae/release_checkpoint.h"
#include "train/run_setup.h"
#include "util/config.h"
#include "util/error.h"

namespace semcodec::cli {

void add_convert_release(CLI::App& app) {
  struct Opts {
    std::string state_dict, out, config, features;
    std::vector<std::string> sets;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "convert-release",
      "turn a checkpoint of the paper authors' PyTorch release (feature_compression.state_dict(), a .pt) into a "
      "pqvae_shared checkpoint for eval, compress and fit-entropy (docs/reproduce.md)");
  cmd->add_option("--state-dict", o->state_dict, "the release's .pt state dict (read without executing anything)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", o->out, "semcodec checkpoint to write (.safetensors)")->required();
  cmd->add_option("-c,--config", o->config,
                  "run config recorded in the checkpoint (its data.split and train keys; e.g. configs/paper_recipe.yaml); "
                  "the network sizes always come from the state dict");
  add_set_option(cmd, o->sets, "the run config");
  cmd->add_option("--features", o->features,
                  "the feature file the release trained on (e.g. the imported ImageNet features): recorded with its "
                  "class split (data.split), so eval uses the held-out classes and fit-entropy the training ones");
  cmd->callback([o] {
    RunConfig base = o->config.empty() ? config_from_yaml_string<RunConfig>("", "<defaults>", o->sets)
                                       : load_run_config(o->config, o->sets);
    Checkpoint ck = checkpoint_from_release(o->state_dict, base);
    if (!o->features.empty()) {
      FeatureSet set = read_feature_file(o->features);
      require(set.dim() == ck.config.model.embed_dim, "{}: features have D = {} but {} takes D = {}", o->features,
              set.dim(), o->state_dict, ck.config.model.embed_dim);
      const ClassSplit split = make_run_split(ck.config.data.split, set.num_classes(),
                                              o->config.empty() ? "data.split" : o->config, base.project_dir);
      ck.config.data.features = o->features;
      ck.train_classes = split.train;
      ck.heldout_classes = split.heldout;
      ck.dataset = dataset_provenance(o->features, set);
    }
    save_checkpoint(o->out, ck);
    const ModelConfig& m = ck.config.model;
    fmt::print("wrote {}: pqvae_shared, d_sub {}, K {}, {} indices x {} bits = {} bits per item{}\n", o->out, m.d_sub,
               m.codebook_size, 25 * m.latent_channels / m.d_sub, pqvae_raw_bits(m) / (25 * m.latent_channels / m.d_sub),
               pqvae_raw_bits(m),
               o->features.empty() ? "" : fmt::format("; split {} train / {} held-out classes of {}",
                                                      ck.train_classes.size(), ck.heldout_classes.size(), o->features));
  });
}

}  // namespace semcodec::cli
