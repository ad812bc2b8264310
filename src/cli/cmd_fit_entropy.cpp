// semcodec fit-entropy: fit the entropy-coder tables of a checkpoint on the
// indices of its training classes and store them in the checkpoint.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "codec/entropy/coder_registry.h"
#include "codec/entropy_fit.h"

namespace semcodec::cli {

void add_fit_entropy(CLI::App& app) {
  struct Opts {
    std::string checkpoint, features;
    EntropyFitOptions fit;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "fit-entropy", "fit entropy-coder tables on the training-class indices and store them in the checkpoint");
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint to fit and rewrite (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--features", o->features,
                  "feature file whose training-class rows are counted (default: the file the checkpoint was trained on)");
  std::string coder_help = "auto (the coder that spends the fewest payload bits on the training items)";
  for (const CoderInfo& c : coders()) coder_help += fmt::format(" | {}: {}", c.name, c.summary);
  cmd->add_option("--coder", o->fit.coder, coder_help)
      ->capture_default_str()
      ->check(CLI::IsMember(entropy_fit_coder_choices()));
  cmd->add_option("--tables", o->fit.tables,
                  "auto (lowest cross-validated code length) | shared | per-subspace | per-position | per-slot")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "shared", "per-subspace", "per-position", "per-slot"}));
  cmd->add_option("--smoothing", o->fit.smoothing, "added to every symbol count (>= 1)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--max-items", o->fit.max_items,
                  "fit on at most this many training rows, an even stride through them (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add_device_option(cmd, o->fit.device, "where a network method runs; fitted methods run on the CPU");
  add_quiet_flag(cmd, o->quiet);
  cmd->callback([o] {
    o->fit.progress = !o->quiet;
    EntropyFitReport r = fit_entropy_from_features(o->checkpoint, o->features, o->fit);
    fmt::print("fitted {} tables ({}) on {} training items, {} slots each\n", r.coder, r.table_mode, r.items, r.slots);
    fmt::print("  {:<14} {:>16} {:>22}\n", "tables", "entropy bits", "cross-validated bits");
    for (const auto& [mode, bits] : r.entropy_bits)
      fmt::print("  {:<14} {:>16.2f} {:>22.2f}{}\n", mode, bits, r.heldout_bits.at(mode),
                 mode == r.table_mode ? "  <- stored" : "");
    fmt::print("  raw rate {:.0f} bits/item; ideal code length under the stored tables {:.2f} bits/item\n", r.raw_bits,
               r.model_bits);
    std::string per_coder;
    for (const CoderInfo& c : coders())
      if (c.id != CoderId::raw) per_coder += fmt::format("{}{} {:.2f}", per_coder.empty() ? "" : ", ", c.name, r.coder_bits.at(c.name));
    fmt::print("  payload bits/item on the training items: {} -> {}\n", per_coder, r.coder);
    fmt::print("fingerprint {}\nwrote {}\n", fingerprint_hex(r.fingerprint), o->checkpoint);
  });
}

}  // namespace semcodec::cli
