#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "data/device.h"
#include "data/feature_store.h"
#include "data/image_dataset.h"
#include "data/npy.h"
#include "models/clip/clip_model.h"
#include "models/clip/clip_weights.h"
#include "models/clip/text_embeddings.h"
#include "util/error.h"

namespace semcodec::cli {

namespace {

struct EmbedTextOpts {
  std::string model, bpe, vocab, merges, classes, templates = "imagenet", features, out, device = "auto";
  std::string dtype = "float32";
  int64_t batch = 256;
  bool allow_model_mismatch = false, quiet = false;
};

Tokenizer load_tokenizer(const EmbedTextOpts& o) {
  if (!o.bpe.empty()) {
    require(o.vocab.empty() && o.merges.empty(), "give either --bpe or --vocab with --merges, not both");
    return Tokenizer::from_openai_bpe(o.bpe);
  }
  require(!o.vocab.empty() && !o.merges.empty(),
          "no tokenizer: give --bpe bpe_simple_vocab_16e6.txt.gz (OpenAI) or --vocab vocab.json --merges merges.txt "
          "(Hugging Face)");
  return Tokenizer::from_hugging_face(o.vocab, o.merges);
}

void run_embed_text(const EmbedTextOpts& o) {
  require(!o.features.empty() || !o.out.empty(), "nowhere to store the embeddings: give --features F.h5 and/or --out F.npy");
  require(o.out.empty() || std::filesystem::path(o.out).extension() == ".npy",
          "{}: --out writes a .npy array [C, D] (float32); use --features to store into a feature file", o.out);
  const c10::Device device = resolve_device(o.device);
  const c10::ScalarType dtype = clip_compute_dtype(o.dtype, device);
  configure_threads(0, gemm_backend_for(dtype, device));

  // Inputs are all read and checked before the (long) text encoding starts.
  FeatureFileInfo info;
  std::vector<std::string> file_classes;
  if (!o.features.empty()) {
    FeatureReader reader(o.features);
    info = reader.info();
    file_classes = reader.class_names();
  }
  std::vector<std::string> classes = file_classes;
  if (!o.classes.empty()) classes = read_class_list_file(o.classes).names;
  require(!classes.empty(), "no class names: give --classes (YAML or one name per line) or --features F.h5");
  if (!o.features.empty())
    require(static_cast<int64_t>(classes.size()) == info.num_classes,
            "{}: {} has {} class names, the feature file has {} classes", o.features, o.classes, classes.size(),
            info.num_classes);
  const std::vector<std::string> templates = read_prompt_templates(o.templates);
  const Tokenizer tokenizer = load_tokenizer(o);
  ClipModel model = load_clip(o.model);
  if (!o.features.empty()) {
    require(model.embed_dim() == info.dim, "{}: the model ({}) embeds into {} dims, the feature file has {}", o.model,
            model.config().name(), model.embed_dim(), info.dim);
    const std::string& file_model = info.attrs.encoder_model;
    require(o.allow_model_mismatch || file_model == "unknown" || file_model == model.config().name(),
            "{}: its rows come from encoder '{}', the text model is {}: zero-shot needs both towers of one CLIP "
            "(--allow-model-mismatch to store them anyway)",
            o.features, file_model, model.config().name());
  }
  model.to(device, dtype);

  if (!o.quiet)
    fmt::print(stderr, "embed-text: {} classes x {} templates = {} prompts with {} on {} ({})\n", classes.size(),
               templates.size(), classes.size() * templates.size(), model.config().name(), device.str(), o.dtype);
  TextEmbeddingOptions t;
  t.batch_size = o.batch;
  t.progress = !o.quiet;
  const at::Tensor emb = class_text_embeddings(model, tokenizer, classes, templates, t);

  if (!o.features.empty()) {
    // Names go in too when they were given: the file then says what was embedded.
    replace_class_embeddings(o.features, emb, o.classes.empty() ? std::vector<std::string>{} : classes);
    fmt::print("stored class_embeddings [{}, {}] in {}{}\n", emb.size(0), emb.size(1), o.features,
               !o.classes.empty() && classes != file_classes ? " (class names replaced by " + o.classes + ")" : "");
  }
  if (!o.out.empty()) {
    write_npy(o.out, emb);
    fmt::print("wrote {}: [{}, {}] float32\n", o.out, emb.size(0), emb.size(1));
  }
}

}  // namespace

void add_embed_text(CLI::App& app) {
  auto o = std::make_shared<EmbedTextOpts>();
  auto* cmd = app.add_subcommand(
      "embed-text",
      "zero-shot class embeddings from CLIP's text encoder: each class name in every prompt template, normalized, "
      "averaged over the templates, renormalized (OpenAI's recipe)");
  cmd->add_option("-m,--model", o->model, "CLIP weights (any format extract reads); use the model that made the rows")
      ->required();
  cmd->add_option("--bpe", o->bpe, "OpenAI's bpe_simple_vocab_16e6.txt.gz");
  cmd->add_option("--vocab", o->vocab, "Hugging Face vocab.json (with --merges)");
  cmd->add_option("--merges", o->merges, "Hugging Face merges.txt (with --vocab)");
  cmd->add_option("--classes", o->classes,
                  "class names, YAML (configs/prompts/imagenet_classes.yaml) or one per line; default: the feature "
                  "file's class names");
  cmd->add_option("--templates", o->templates,
                  "prompt templates: a file (configs/prompts/*.yaml, or one per line with '{}'), 'imagenet' (OpenAI's "
                  "80-template ensemble) or 'simple' (\"a photo of a {}.\")")
      ->capture_default_str();
  cmd->add_option("--features", o->features,
                  "feature file to store them in as class_embeddings (rewritten atomically; rows untouched)");
  cmd->add_option("-o,--out", o->out, "also / instead write them to a .npy file [C, D] float32");
  add_batch_option(cmd, o->batch, "prompts");
  add_device_option(cmd, o->device);
  add_clip_dtype_option(cmd, o->dtype);
  cmd->add_flag("--allow-model-mismatch", o->allow_model_mismatch,
                "store even when the feature file's encoder_model differs from this model");
  add_quiet_flag(cmd, o->quiet);
  cmd->callback([o] { run_embed_text(*o); });
}

}  // namespace semcodec::cli
