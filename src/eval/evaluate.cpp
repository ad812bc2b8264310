#include "eval/evaluate.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "eval/classifiers.h"
#include "util/error.h"

namespace semcodec {

nlohmann::json evaluate_reconstruction(const at::Tensor& recon, const FeatureSet& set, const EvalSpec& spec,
                                       double raw_bits) {
  require(recon.size(0) == set.size(), "evaluation: {} reconstructions for {} features", recon.size(0), set.size());
  require(!spec.classes.empty(), "evaluation: no class to evaluate");
  std::string classifier = spec.classifier;
  if (classifier == "auto") classifier = set.has_text() ? "zero-shot" : "ncm";
  at::Tensor prototypes;
  if (classifier == "zero-shot") {
    require(set.has_text(), "zero-shot evaluation needs class text embeddings in the feature file (use --classifier ncm)");
    prototypes = set.class_embeddings.index_select(0, at::tensor(spec.classes, at::kLong));
  } else if (classifier == "ncm") {
    const FeatureSet& ref = spec.reference ? *spec.reference : set;
    prototypes = class_means(ref.features, ref.labels, spec.classes);
  } else {
    fail("unknown classifier '{}' (expected auto, zero-shot or ncm)", classifier);
  }
  Accuracy rec = prototype_accuracy(recon.cpu(), set.labels, prototypes, spec.classes);
  Accuracy clean = prototype_accuracy(set.features, set.labels, prototypes, spec.classes);
  const double bits = spec.bits_per_item >= 0 ? spec.bits_per_item : raw_bits;
  nlohmann::json bpp = nullptr;
  if (set.image_sizes.defined() && set.image_sizes.numel() == 2 * set.size()) {
    at::Tensor px = set.image_sizes.to(at::kDouble).prod(1);
    bpp = (bits / px).mean().item<double>();
  }
  return {{"label", spec.label},
          {"classifier", classifier},
          {"classes", static_cast<int64_t>(spec.classes.size())},
          {"rows", set.size()},
          {"top1", rec.top1},
          {"top5", rec.top5},
          {"clean_top1", clean.top1},
          {"clean_top5", clean.top5},
          {"relative_top1", clean.top1 > 0 ? rec.top1 / clean.top1 : 0.0},
          {"mean_cosine", mean_cosine(recon.cpu(), set.features)},
          {"bits_per_item", bits},
          {"bpd", bits / static_cast<double>(set.dim())},
          {"bpp", bpp},
          {"raw_bits", raw_bits},
          {"rate_source", spec.rate_source}};
}

nlohmann::json evaluate_quantizer(Quantizer& q, const FeatureSet& set, const EvalSpec& spec) {
  require(set.dim() == q.embed_dim(), "evaluation: features have D = {} but the model expects {}", set.dim(),
          q.embed_dim());
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < set.size(); s += 4096) {
    at::Tensor x = set.features.narrow(0, s, std::min<int64_t>(4096, set.size() - s));
    parts.push_back(q.decode(q.encode(x)).cpu());
  }
  return evaluate_reconstruction(at::cat(parts), set, spec, q.raw_bits());
}

std::string eval_markdown(const std::vector<nlohmann::json>& records) {
  std::string md =
      "| model | bits/image | bpd | bpp | top-1 % | top-5 % | upper bound top-1 % | kept | mean cosine | classifier |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& r : records) {
    std::string bpp = r["bpp"].is_null() ? "-" : fmt::format("{:.3e}", r["bpp"].get<double>());
    md += fmt::format("| {} | {:.1f} | {:.3f} | {} | {:.2f} | {:.2f} | {:.2f} | {:.1f}% | {:.4f} | {} ({}-way) |\n",
                      r.value("label", std::string("-")), r["bits_per_item"].get<double>(), r["bpd"].get<double>(), bpp,
                      100 * r["top1"].get<double>(), 100 * r["top5"].get<double>(),
                      100 * r["clean_top1"].get<double>(), 100 * r["relative_top1"].get<double>(),
                      r["mean_cosine"].get<double>(), r["classifier"].get<std::string>(), r["classes"].get<int64_t>());
  }
  return md;
}

}  // namespace semcodec
