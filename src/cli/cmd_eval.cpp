#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "eval/checkpoint_eval.h"
#include "eval/evaluate.h"
#include "util/atomic_file.h"

namespace semcodec::cli {

void add_eval(CLI::App& app) {
  struct Opts {
    std::string checkpoint, features, out;
    CheckpointEvalOptions eval;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("eval", "zero-shot accuracy of reconstructed features, with the clean upper bound");
  cmd->add_option("--checkpoint", o->checkpoint, "trained checkpoint (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--features", o->features, "feature file to evaluate (.h5)")->required();
  cmd->add_option("--classes", o->eval.classes,
                  "auto (held-out split on the training dataset, else all) | heldout | train | all | class-list file")
      ->capture_default_str();
  cmd->add_option("--classifier", o->eval.classifier, "auto | zero-shot | ncm (nearest class mean)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "zero-shot", "ncm"}));
  cmd->add_option("--reference", o->eval.reference_features, "ncm: labelled features whose class means are the prototypes");
  cmd->add_option("--label", o->eval.label, "row label in the report");
  add_device_option(cmd, o->eval.device, "where a network method runs; fitted methods run on the CPU");
  cmd->add_option("--bitstream", o->eval.bitstream,
                  "evaluate the reconstructions decoded from this stream (`compress` of --features); bits/image are "
                  "the stream's payload bits")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--via-bitstream", o->eval.via_bitstream,
                "compress the evaluated rows to a stream in memory and evaluate what decodes from those bytes");
  cmd->add_option("-o,--out", o->out, "results JSON (a .md table is written beside it); default <checkpoint dir>/eval.json");
  cmd->callback([o] {
    nlohmann::json r = evaluate_checkpoint(o->checkpoint, o->features, o->eval);
    std::string out = o->out.empty() ? (std::filesystem::path(o->checkpoint).parent_path() / "eval.json").string() : o->out;
    std::string md = eval_markdown({r});
    write_file_atomic(out, r.dump(2) + "\n");
    write_file_atomic(std::filesystem::path(out).replace_extension(".md").string(), md);
    fmt::print("{}\nresults: {}\n", md, out);
  });
}

}  // namespace semcodec::cli
