#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "data/extraction_shards.h"

namespace semcodec::cli {

namespace {

struct MergeShardsOpts {
  std::string out;
  int64_t shards = 0;
  bool keep = false, quiet = false;
};

}  // namespace

void add_merge_shards(CLI::App& app) {
  auto o = std::make_shared<MergeShardsOpts>();
  auto* cmd = app.add_subcommand(
      "merge-shards",
      "merge the shard files of a sharded extraction (extract --shard R/N) into one feature file, in image order, row "
      "for row what a single-process extraction writes");
  cmd->add_option("-o,--out", o->out, "the feature file the shards belong to (the extraction's --out)")->required();
  cmd->add_option("--shards", o->shards, "the number of shards N")->required()->check(CLI::PositiveNumber);
  cmd->add_flag("--keep-shards", o->keep, "keep the shard files after the merge");
  add_quiet_flag(cmd, o->quiet);
  cmd->footer(
      "Reads <out stem>.shard-R-of-N<ext> for R = 0..N-1 (every one complete) and their .skipped.tsv lists; writes\n"
      "<out> atomically and <out>.skipped.tsv, then removes the shards unless --keep-shards.");
  cmd->callback([o] {
    const ShardMergeSummary m = merge_feature_shards(o->out, o->shards, o->keep, !o->quiet);
    fmt::print("{}\n", describe(m));
  });
}

}  // namespace semcodec::cli
