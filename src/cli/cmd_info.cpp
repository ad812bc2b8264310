#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "data/feature_store.h"
#include "data/safetensors.h"
#include "util/error.h"

namespace semcodec::cli {

void add_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("info", "describe a feature file (.h5) or a checkpoint (.safetensors)");
  cmd->add_option("file", *path, "file to describe")->required()->check(CLI::ExistingFile);
  cmd->callback([path] {
    const std::string& p = *path;
    if (p.size() > 12 && p.substr(p.size() - 12) == ".safetensors") {
      auto md = read_safetensors_metadata(p);
      fmt::print("checkpoint {}\n", p);
      for (const auto& [k, v] : md) fmt::print("  {}: {}\n", k, v.size() > 400 ? v.substr(0, 400) + "..." : v);
      return;
    }
    FeatureFileInfo i = inspect_feature_file(p);
    fmt::print("feature file {}\n  rows {}  dim {}  dtype {}  classes {}  text embeddings {}  image sizes {}\n", p, i.rows,
               i.dim, i.dtype, i.num_classes, i.has_text ? "yes" : "no", i.has_image_sizes ? "yes" : "no");
    fmt::print("  encoder {}  dataset {}  split {}  preprocessing {}  written by semcodec {}\n", i.attrs.encoder_model,
               i.attrs.dataset, i.attrs.split, i.attrs.preprocessing, i.attrs.tool_version);
  });
}

}  // namespace semcodec::cli
