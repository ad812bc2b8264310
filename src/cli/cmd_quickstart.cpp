// The main job on the built-in synthetic data: synthesize, train PQVAE-shared
// at 400 and 600 bits, evaluate both on the held-out classes, print a table.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>

#include "cli/commands.h"
#include "data/device.h"
#include "data/feature_store.h"
#include "data/synthetic.h"
#include "eval/checkpoint_eval.h"
#include "eval/evaluate.h"
#include "models/pqvae/feature_autoencoder.h"
#include "models/quantizers/adaptive_klt.h"
#include "train/trainer.h"
#include "util/atomic_file.h"

namespace semcodec::cli {

void add_quickstart(CLI::App& app) {
  struct Opts {
    std::string out = "runs/quickstart", compute_dtype = "auto";
    // Sized to finish in a few minutes on 2 CPU cores (~120-250 training samples/s):
    // 2 x 125 steps per model. Accuracy keeps rising with longer training
    // (--steps-per-epoch 0 --epochs N, or `semcodec train -c configs/quickstart.yaml`).
    int64_t epochs = 2, steps = 125, batch = 64, threads = 0;
    double lr = 3e-3;
    bool fresh = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("quickstart",
                                 "the main job on built-in synthetic data: train PQVAE-shared and fit adaptive_klt at "
                                 "400 and 600 bits and evaluate zero-shot on 200 held-out classes");
  cmd->add_option("-o,--out", o->out, "output directory")->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "training epochs per model (train.epochs)")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--steps-per-epoch", o->steps, "cap on steps per epoch (0 = whole epoch; train.max_steps_per_epoch)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "samples per training step (train.batch_size)")->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--lr", o->lr, "Adam learning rate (train.lr)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores; train.threads)")->capture_default_str();
  cmd->add_option("--compute-dtype", o->compute_dtype,
                  "the networks' compute type: auto (bfloat16 where the CPU has AMX / AVX512-BF16, ~1.7x faster), "
                  "float32 or bfloat16 (model.compute_dtype)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "float32", "bfloat16"}));
  cmd->add_flag("--fresh", o->fresh, "regenerate the synthetic data even if it exists");
  cmd->callback([o] {
    auto t0 = std::chrono::steady_clock::now();
    const std::string data = o->out + "/synthetic.h5";
    if (o->fresh || !file_exists(data)) {
      fmt::print("[1/4] synthesizing the default CLIP-like dataset (1000 classes x 50, D=768) -> {}\n", data);
      write_feature_file(data, make_synthetic({}));
    } else {
      fmt::print("[1/4] reusing {}\n", data);
    }
    std::vector<nlohmann::json> rows;
    std::vector<std::string> usage;
    int step = 2;
    for (int64_t k : {4, 8}) {
      RunConfig cfg;
      cfg.data.features = data;
      cfg.data.split.mode = "seed";
      cfg.data.split.heldout_classes = 200;
      cfg.model.codebook_size = k;
      cfg.model.d_sub = 16;
      cfg.model.compute_dtype = o->compute_dtype;
      cfg.train.epochs = o->epochs;
      cfg.train.batch_size = o->batch;
      cfg.train.lr = o->lr;
      cfg.train.threads = o->threads;
      cfg.train.max_steps_per_epoch = o->steps;
      cfg.train.val_max_rows = 2000;  // per-epoch check on 10 rows per class; the final eval uses all 10,000
      cfg.train.lr_step_epochs = o->epochs;  // too short a run to decay the rate
      const int64_t bits = 25 * (128 / 16) * (k == 4 ? 2 : 3);
      cfg.output.dir = fmt::format("{}/pqvae-shared-{}", o->out, bits);
      fmt::print("[{}/4] training PQVAE-shared at {} bits (d_sub 16, K {}), {} epochs, {} compute -> {}\n", step++,
                 bits, k, o->epochs, compute_dtype(cfg.model, resolve_device(cfg.train.device)) == at::kBFloat16 ? "bfloat16" : "float32",
                 cfg.output.dir);
      TrainOptions topt;
      topt.overwrite = true;
      topt.config_source = "quickstart";
      TrainResult r = train_run(cfg, topt);
      CheckpointEvalOptions e;
      e.classes = "heldout";
      e.label = fmt::format("PQVAE-shared d_sub=16 K={}", k);
      e.via_bitstream = true;  // bits/image from the bytes of a real stream
      nlohmann::json rec = evaluate_checkpoint(r.best_checkpoint, data, e);
      rec["codebook_used"] = r.last_epoch.value("codebook_used", int64_t{0});
      rec["codebook_size"] = k;
      rec["codebook_perplexity"] = r.last_epoch.value("codebook_perplexity", 0.0);
      write_file_atomic(cfg.output.dir + "/eval.json", rec.dump(2) + "\n");
      rows.push_back(rec);
      usage.push_back(fmt::format("K={}: {}/{} codewords in use (perplexity {:.2f}); {:.1f} bits/image in the {} "
                                  "bitstream vs {:.0f} raw", k, rec["codebook_used"].get<int64_t>(), k,
                                  rec["codebook_perplexity"].get<double>(), rec["bits_per_item"].get<double>(),
                                  rec.value("coder", std::string("?")), rec["raw_bits"].get<double>()));
    }
    // The best codec (docs/adaptive_klt.md) at the same budgets: a fit in
    // seconds; its rate control meets the target on the evaluated stream.
    fmt::print("[4/4] fitting adaptive_klt at 400 and 600 bits\n");
    for (int64_t bits : {400, 600}) {
      RunConfig cfg;
      cfg.data.features = data;
      cfg.data.split.mode = "seed";
      cfg.data.split.heldout_classes = 200;
      cfg.model.method = "adaptive_klt";
      cfg.model.options<AdaptiveKLTOptions>().target_bits = static_cast<double>(bits);
      cfg.train.threads = o->threads;
      cfg.train.val_max_rows = 2000;
      cfg.output.dir = fmt::format("{}/adaptive-klt-{}", o->out, bits);
      TrainOptions topt;
      topt.overwrite = true;
      topt.config_source = "quickstart";
      topt.progress = false;
      TrainResult r = train_run(cfg, topt);
      CheckpointEvalOptions e;
      e.classes = "heldout";
      e.label = fmt::format("adaptive_klt target {} bits", bits);
      e.via_bitstream = true;
      nlohmann::json rec = evaluate_checkpoint(r.best_checkpoint, data, e);
      write_file_atomic(cfg.output.dir + "/eval.json", rec.dump(2) + "\n");
      rows.push_back(rec);
    }
    std::string md = "# semcodec quickstart: PQVAE-shared and adaptive_klt on synthetic CLIP-like features\n\n"
                     "Zero-shot 200-way top-1 on the 200 held-out classes (10,000 features), "
                     "bits/image = payload bits of the real entropy-coded bitstream (PQVAE-shared's raw rate is "
                     "25 x 8 x ceil(log2 K); adaptive_klt's stream carries its side information in those bits).\n\n" +
                     eval_markdown(rows) + "\n";
    for (const auto& u : usage) md += "- " + u + "\n";
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    md += fmt::format("\nTotal time {:.0f} s. Checkpoints: {}/{{pqvae-shared,adaptive-klt}}-{{400,600}}/best.safetensors; "
                      "metrics: metrics.jsonl beside them.\n", secs, o->out);
    nlohmann::json all = rows;
    write_file_atomic(o->out + "/results.json", all.dump(2) + "\n");
    write_file_atomic(o->out + "/report.md", md);
    fmt::print("\n{}\nreport: {}/report.md, results: {}/results.json\n", md, o->out, o->out);
  });
}

}  // namespace semcodec::cli
