#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "models/method_registry.h"
#include "models/run_config.h"
#include "util/config.h"

namespace semcodec::cli {

void add_config(CLI::App& app) {
  struct Opts {
    std::string file;
    std::vector<std::string> sets;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("config", "print every config key with its default and meaning, or resolve a config file");
  cmd->add_option("file", o->file, "YAML config to validate and print fully resolved (omit to list all keys)");
  add_set_option(cmd, o->sets);
  cmd->callback([o] {
    if (o->file.empty()) {
      fmt::print("{}", format_key_docs(describe<RunConfig>()));
      fmt::print("\nmodel.method (docs/baselines.md, docs/adaptive_klt.md):\n");
      for (const MethodInfo& m : methods())
        fmt::print("  {:<18} {:<8} {}\n", m.name, method_kind_name(m.kind), m.summary);
      return;
    }
    fmt::print("{}", to_yaml(load_run_config(o->file, o->sets)));
  });
}

}  // namespace semcodec::cli
