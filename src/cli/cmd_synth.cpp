#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "data/feature_store.h"
#include "data/synthetic.h"

namespace semcodec::cli {

void add_synth(CLI::App& app) {
  struct Opts {
    std::string out = "runs/synthetic.h5", dtype = "float32";
    SyntheticOptions synth;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("synth", "write the built-in CLIP-like synthetic dataset (docs/synthetic.md)");
  cmd->add_option("-o,--out", o->out, "output feature file")->capture_default_str();
  cmd->add_option("--classes", o->synth.num_classes, "number of classes")->capture_default_str()->check(CLI::Range(2, 1000000));
  cmd->add_option("--per-class", o->synth.per_class, "features per class")->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--dim", o->synth.dim, "embedding dimension D")->capture_default_str()->check(CLI::Range(16, 65536));
  cmd->add_option("--seed", o->synth.seed, "generator seed")->capture_default_str();
  cmd->add_option("--feature-dtype", o->dtype, "storage type of the rows: float32 or float16 (as extract's --feature-dtype)")->capture_default_str()->check(CLI::IsMember({"float32", "float16"}));
  cmd->callback([o] {
    FeatureSet set = make_synthetic(o->synth);
    FeatureWriteOptions w;
    w.dtype = o->dtype;
    write_feature_file(o->out, set, w);
    fmt::print("wrote {}: {} features x {} dims, {} classes with text embeddings\n", o->out, set.size(), set.dim(),
               set.num_classes());
  });
}

}  // namespace semcodec::cli
