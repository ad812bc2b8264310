#include "models/clip/text_embeddings.h"

#include <ATen/ATen.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "util/error.h"
#include "util/progress.h"
#include "util/yaml_bounded.h"

namespace semcodec {

const std::vector<std::string>& openai_imagenet_templates() {
  static const std::vector<std::string> templates{
      "a bad photo of a {}.",
      "a photo of many {}.",
      "a sculpture of a {}.",
      "a photo of the hard to see {}.",
      "a low resolution photo of the {}.",
      "a rendering of a {}.",
      "graffiti of a {}.",
      "a bad photo of the {}.",
      "a cropped photo of the {}.",
      "a tattoo of a {}.",
      "the embroidered {}.",
      "a photo of a hard to see {}.",
      "a bright photo of a {}.",
      "a photo of a clean {}.",
      "a photo of a dirty {}.",
      "a dark photo of the {}.",
      "a drawing of a {}.",
      "a photo of my {}.",
      "the plastic {}.",
      "a photo of the cool {}.",
      "a close-up photo of a {}.",
      "a black and white photo of the {}.",
      "a painting of the {}.",
      "a painting of a {}.",
      "a pixelated photo of the {}.",
      "a sculpture of the {}.",
      "a bright photo of the {}.",
      "a cropped photo of a {}.",
      "a plastic {}.",
      "a photo of the dirty {}.",
      "a jpeg corrupted photo of a {}.",
      "a blurry photo of the {}.",
      "a photo of the {}.",
      "a good photo of the {}.",
      "a rendering of the {}.",
      "a {} in a video game.",
      "a photo of one {}.",
      "a doodle of a {}.",
      "a close-up photo of the {}.",
      "a photo of a {}.",
      "the origami {}.",
      "the {} in a video game.",
      "a sketch of a {}.",
      "a doodle of the {}.",
      "a origami {}.",
      "a low resolution photo of a {}.",
      "the toy {}.",
      "a rendition of the {}.",
      "a photo of the clean {}.",
      "a photo of a large {}.",
      "a rendition of a {}.",
      "a photo of a nice {}.",
      "a photo of a weird {}.",
      "a blurry photo of a {}.",
      "a cartoon {}.",
      "art of a {}.",
      "a sketch of the {}.",
      "a embroidered {}.",
      "a pixelated photo of a {}.",
      "itap of the {}.",
      "a jpeg corrupted photo of the {}.",
      "a good photo of a {}.",
      "a plushie {}.",
      "a photo of the nice {}.",
      "a photo of the small {}.",
      "a photo of the weird {}.",
      "the cartoon {}.",
      "art of the {}.",
      "a drawing of the {}.",
      "a photo of the large {}.",
      "a black and white photo of a {}.",
      "the plushie {}.",
      "a dark photo of a {}.",
      "itap of a {}.",
      "graffiti of the {}.",
      "a toy {}.",
      "itap of my {}.",
      "a photo of a cool {}.",
      "a photo of a small {}.",
      "a tattoo of the {}."};
  return templates;
}

const std::vector<std::string>& simple_templates() {
  static const std::vector<std::string> templates{"a photo of a {}."};
  return templates;
}

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

void check_template(const std::string& t, const std::string& source, size_t index) {
  const size_t first = t.find("{}");
  if (first == std::string::npos || t.find("{}", first + 2) != std::string::npos)
    fail("{}: template {} (\"{}\") must contain '{{}}' exactly once (where the class name goes)", source, index, t);
}

}  // namespace

std::vector<std::string> read_prompt_templates(const std::string& name_or_path) {
  if (name_or_path == "imagenet" || name_or_path == "openai-imagenet") return openai_imagenet_templates();
  if (name_or_path == "simple") return simple_templates();
  const std::string& path = name_or_path;
  require(std::filesystem::is_regular_file(path),
          "{}: no such prompt template file (or give a built-in set: 'imagenet' = OpenAI's 80 templates, 'simple')",
          path);
  std::vector<std::string> out;
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".yaml" || ext == ".yml") {
    const YAML::Node root = load_yaml_file_bounded(path, "prompt template file");
    const YAML::Node seq = root.IsMap() ? root["templates"] : root;
    if (!seq || !seq.IsSequence()) fail("{}: expected a list of templates (or a map with 'templates:')", path);
    for (size_t i = 0; i < seq.size(); ++i) {
      if (!seq[i].IsScalar()) fail("{}: template {} is not a string", path, i);
      out.push_back(seq[i].as<std::string>());
    }
  } else {
    std::ifstream in(path);
    require(static_cast<bool>(in), "{}: cannot read prompt templates", path);
    for (std::string line; std::getline(in, line);) {
      const std::string t = trim(line);
      if (!t.empty() && t[0] != '#') out.push_back(t);
    }
  }
  require(!out.empty(), "{}: no prompt templates", path);
  for (size_t i = 0; i < out.size(); ++i) check_template(out[i], path, i);
  return out;
}

std::string fill_template(const std::string& prompt_template, const std::string& class_name) {
  const size_t at = prompt_template.find("{}");
  require(at != std::string::npos, "prompt template \"{}\" has no '{{}}'", prompt_template);
  return prompt_template.substr(0, at) + class_name + prompt_template.substr(at + 2);
}

at::Tensor class_text_embeddings(const ClipModel& model, const Tokenizer& tokenizer,
                                 const std::vector<std::string>& class_names, const std::vector<std::string>& templates,
                                 const TextEmbeddingOptions& options) {
  require(!class_names.empty(), "class text embeddings: no class names");
  require(!templates.empty(), "class text embeddings: no prompt templates");
  require(options.batch_size > 0, "class text embeddings: batch size must be positive, got {}", options.batch_size);
  for (size_t i = 0; i < templates.size(); ++i) check_template(templates[i], "prompt templates", i);

  const int64_t c = static_cast<int64_t>(class_names.size());
  const int64_t t = static_cast<int64_t>(templates.size());
  const int64_t total = c * t;
  // Prompt p is template p % t of class p / t; sums of the normalized
  // embeddings accumulate per class in float64 so the template order does not
  // round differently from a mean taken at once.
  at::Tensor sums = at::zeros({c, model.embed_dim()}, at::kDouble);
  ProgressBar bar("embed-text", total, "prompt", options.progress);
  for (int64_t start = 0; start < total; start += options.batch_size) {
    const int64_t n = std::min(options.batch_size, total - start);
    std::vector<std::string> texts;
    texts.reserve(static_cast<size_t>(n));
    for (int64_t p = start; p < start + n; ++p)
      texts.push_back(fill_template(templates[static_cast<size_t>(p % t)], class_names[static_cast<size_t>(p / t)]));
    const at::Tensor tokens = tokenizer.tokenize(texts, model.context_length(), options.truncate);
    const at::Tensor emb = model.encode_text_normalized(tokens.to(model.device())).to(at::kCPU).to(at::kDouble);
    require(at::isfinite(emb).all().item<bool>(), "class text embeddings: the text encoder returned NaN/Inf for \"{}\"",
            texts.front());
    const at::Tensor cls = at::arange(start, start + n, at::kLong).div(t, "floor");
    sums.index_add_(0, cls, emb);
    bar.advance(n);
  }
  bar.finish();
  const at::Tensor norms = sums.norm(2, {1}, true);
  require(norms.gt(0).all().item<bool>(), "class text embeddings: a class's template embeddings sum to zero");
  return (sums / norms).to(at::kFloat).contiguous();
}

}  // namespace semcodec
