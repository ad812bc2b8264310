#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "data/feature_store.h"
#include "data/importer.h"
#include "util/error.h"

namespace semcodec::cli {

namespace {
// "file.npz:key" or "file.pt:0" -> (file, key); a path that exists as it is
// has no key, so file names with ':' still work.
void split_key(const std::string& spec, std::string& path, std::string& key) {
  namespace fs = std::filesystem;
  const auto pos = spec.rfind(':');
  std::error_code ec;
  const bool whole_exists = fs::exists(spec, ec);
  if (pos != std::string::npos && pos > 0 && !whole_exists) {
    const std::string head = spec.substr(0, pos);
    const bool archive_name = head.size() > 4 && (head.find(".npz") != std::string::npos || head.find(".pt") != std::string::npos);
    if (fs::exists(head, ec) || archive_name) {
      path = head;
      key = spec.substr(pos + 1);
      return;
    }
  }
  path = spec;
}
}  // namespace

void add_import(CLI::App& app) {
  struct Opts {
    std::vector<std::string> features, labels;
    std::string class_names, text, sizes, ids, out, dtype = "float32";
    bool no_normalize = false;
    ImportOptions imp;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("import", "turn embeddings you already have (.npy/.npz, e.g. clip-retrieval; torch.save .pt files, e.g. the paper release's) into a feature file");
  cmd->add_option("--features", o->features,
                  "[N, D] embeddings: file.npy, file.npz[:key] or file.pt[:key] (a (features, labels) .pt needs no key); repeat (with --labels) to concatenate sources")
      ->required();
  cmd->add_option("--labels", o->labels,
                  "[N] integer labels: file.npy, file.npz[:key] or file.pt[:key], one per --features; sources with labels from "
                  "different files get disjoint classes")
      ->required();
  cmd->add_option("--class-names", o->class_names, "text file, one class name per line (default class_<i>)");
  cmd->add_option("--text-embeddings", o->text, "[C, D] class text embeddings (.npy, .npz[:key], .pt[:key]) for zero-shot");
  cmd->add_option("--image-sizes", o->sizes, "[N, 2] (height, width) of the source images, for bpp");
  cmd->add_option("--ids", o->ids, "text file, one source id per row");
  cmd->add_option("-o,--out", o->out, "output feature file (.h5)")->required();
  cmd->add_option("--dataset", o->imp.attrs.dataset, "dataset name stored in the file")->capture_default_str();
  cmd->add_option("--encoder-model", o->imp.attrs.encoder_model, "encoder that made the embeddings")->capture_default_str();
  cmd->add_option("--split", o->imp.attrs.split, "split name stored in the file")->capture_default_str();
  cmd->add_option("--num-classes", o->imp.num_classes, "number of classes (default: from names / text / labels)");
  cmd->add_flag("--no-normalize", o->no_normalize, "keep the rows as they are instead of L2-normalizing");
  cmd->add_option("--feature-dtype", o->dtype, "storage type of the rows: float32 or float16 (as extract's --feature-dtype)")->capture_default_str()->check(CLI::IsMember({"float32", "float16"}));
  cmd->callback([o] {
    ImportOptions imp = o->imp;
    require(o->features.size() == o->labels.size(), "import: {} --features sources but {} --labels",
            o->features.size(), o->labels.size());
    split_key(o->features[0], imp.features_path, imp.features_key);
    split_key(o->labels[0], imp.labels_path, imp.labels_key);
    for (size_t i = 1; i < o->features.size(); ++i) {
      ImportRows r;
      split_key(o->features[i], r.features_path, r.features_key);
      split_key(o->labels[i], r.labels_path, r.labels_key);
      imp.more_rows.push_back(r);
    }
    if (!o->text.empty()) split_key(o->text, imp.text_embeddings_path, imp.text_embeddings_key);
    if (!o->sizes.empty()) split_key(o->sizes, imp.image_sizes_path, imp.image_sizes_key);
    imp.class_names_path = o->class_names;
    imp.ids_path = o->ids;
    imp.normalize = !o->no_normalize;
    FeatureSet set = import_embeddings(imp);
    FeatureWriteOptions w;
    w.dtype = o->dtype;
    write_feature_file(o->out, set, w);
    fmt::print("wrote {}: {} features x {} dims, {} classes{}\n", o->out, set.size(), set.dim(), set.num_classes(),
               set.has_text() ? " with text embeddings" : "");
  });
}

}  // namespace semcodec::cli
