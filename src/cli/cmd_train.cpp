#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "train/trainer.h"
#include "util/config.h"

namespace semcodec::cli {

void add_train(CLI::App& app) {
  struct Opts {
    std::string config, features, out;
    std::vector<std::string> sets;
    bool resume = false, overwrite = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("train", "train or fit the model.method of a YAML config (keys: docs/config.md, methods: docs/baselines.md)");
  cmd->add_option("-c,--config", o->config, "YAML run config, e.g. configs/pqvae_shared_400.yaml")->required();
  add_set_option(cmd, o->sets);
  cmd->add_option("--features", o->features, "shorthand for --set data.features=FILE");
  cmd->add_option("-o,--out", o->out, "shorthand for --set output.dir=DIR");
  cmd->add_flag("--resume", o->resume, "continue the run in output.dir from its last checkpoint");
  cmd->add_flag("--overwrite", o->overwrite, "start again even if output.dir holds checkpoints");
  add_quiet_flag(cmd, o->quiet);
  cmd->callback([o] {
    std::vector<std::string> sets = o->sets;
    if (!o->features.empty()) sets.push_back("data.features=" + o->features);
    if (!o->out.empty()) sets.push_back("output.dir=" + o->out);
    RunConfig cfg = load_run_config(o->config, sets);
    TrainOptions opt;
    opt.resume = o->resume;
    opt.overwrite = o->overwrite;
    opt.progress = !o->quiet;
    opt.config_source = o->config;
    TrainResult r = train_run(cfg, opt);
    if (!r.main_rank) return;  // rank 0 reports
    fmt::print("best checkpoint {} (epoch {}, held-out top-1 {:.2f}%)\nlast checkpoint {}\nmetrics {}\n",
               r.best_checkpoint, r.best_epoch, 100 * r.best_top1, r.last_checkpoint, r.metrics_log);
  });
}

}  // namespace semcodec::cli
