// `semcodec quickstart`: the options of run_quickstart (train/quickstart.h).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "train/quickstart.h"

namespace semcodec::cli {

void add_quickstart(CLI::App& app) {
  auto o = std::make_shared<QuickstartOptions>();
  auto* cmd = app.add_subcommand("quickstart",
                                 "the main job on built-in synthetic data: train PQVAE-shared and fit adaptive_klt at "
                                 "400 and 600 bits and evaluate zero-shot on 200 held-out classes");
  cmd->add_option("-o,--out", o->out, "output directory")->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "training epochs per model (train.epochs)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--steps-per-epoch", o->steps_per_epoch,
                  "cap on steps per epoch (0 = whole epoch; train.max_steps_per_epoch)")
      ->capture_default_str();
  cmd->add_option("--train-batch", o->train_batch, "samples per training step (train.batch_size)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--lr", o->lr, "Adam learning rate (train.lr)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores; train.threads)")->capture_default_str();
  cmd->add_option("--compute-dtype", o->compute_dtype,
                  "the networks' compute type: auto (bfloat16 where the CPU has AMX / AVX512-BF16, ~1.7x faster), "
                  "float32 or bfloat16 (model.compute_dtype)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "float32", "bfloat16"}));
  cmd->add_flag("--fresh", o->fresh, "regenerate the synthetic data even if it exists");
  cmd->callback([o] {
    const QuickstartReport r = run_quickstart(*o);
    fmt::print("\n{}\nreport: {}/report.md, results: {}/results.json\n", r.markdown, o->out, o->out);
  });
}

}  // namespace semcodec::cli
