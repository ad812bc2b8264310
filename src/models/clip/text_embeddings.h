// Zero-shot class embeddings from CLIP's text encoder, as OpenAI's
// Prompt_Engineering_for_ImageNet notebook makes them: each class name is put
// into every prompt template ("a photo of a {}."), each prompt embedded and
// L2-normalized, the normalized embeddings averaged over the templates and the
// mean renormalized. Prompt templates come from configs/prompts/*.yaml or the
// built-in sets below.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/clip/clip_model.h"
#include "models/clip/tokenizer.h"

namespace semcodec {

// OpenAI's 80-template ImageNet ensemble (the same list as
// configs/prompts/imagenet_templates.yaml; a test keeps the two equal).
const std::vector<std::string>& openai_imagenet_templates();
// CLIP's simplest prompt: {"a photo of a {}."}.
const std::vector<std::string>& simple_templates();

// Templates from a built-in name ("imagenet" = OpenAI's 80, "simple") or a
// file: YAML (a list, or a map with `templates:` holding one) or text (one
// template per line, '#' comments). Every template must contain "{}" exactly
// once (it is filled by str.format in OpenAI's code).
std::vector<std::string> read_prompt_templates(const std::string& name_or_path);

// template with "{}" replaced by the class name.
std::string fill_template(const std::string& prompt_template, const std::string& class_name);

struct TextEmbeddingOptions {
  int64_t batch_size = 256;  // prompts per encode_text call
  bool progress = true;      // a progress bar over the prompts
  bool truncate = true;      // an over-long prompt keeps its first 77 tokens (else an error names it)
};

// [C, embed_dim] float32 on the CPU, unit rows: for each class, the
// renormalized mean over `templates` of the normalized text embeddings of
// the filled prompts. Runs on the model's device and dtype.
at::Tensor class_text_embeddings(const ClipModel& model, const Tokenizer& tokenizer,
                                 const std::vector<std::string>& class_names, const std::vector<std::string>& templates,
                                 const TextEmbeddingOptions& options = {});

}  // namespace semcodec
