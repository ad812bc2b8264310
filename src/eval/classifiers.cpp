#include "eval/classifiers.h"

#include <ATen/ATen.h>

#include <unordered_map>

#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

namespace {
at::Tensor normalized(const at::Tensor& x) { return x / x.norm(2, {1}, true).clamp_min(1e-12); }
}  // namespace

Accuracy prototype_accuracy(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& prototypes,
                            const std::vector<int64_t>& classes) {
  require(features.dim() == 2 && prototypes.dim() == 2 && features.size(1) == prototypes.size(1),
          "classifier: features {} and prototypes {} do not match", features.sizes(), prototypes.sizes());
  require(prototypes.size(0) == static_cast<int64_t>(classes.size()) && !classes.empty(),
          "classifier: {} prototypes for {} classes", prototypes.size(0), classes.size());
  at::NoGradGuard g;
  std::unordered_map<int64_t, int64_t> local;
  for (size_t i = 0; i < classes.size(); ++i) local[classes[i]] = static_cast<int64_t>(i);
  at::Tensor lab = labels.to(at::kCPU, at::kLong).contiguous();
  std::vector<int64_t> mapped(lab.numel());
  for (int64_t i = 0; i < lab.numel(); ++i) {
    auto it = local.find(lab.data_ptr<int64_t>()[i]);
    require(it != local.end(), "classifier: label {} of row {} is not among the evaluated classes", lab.data_ptr<int64_t>()[i], i);
    mapped[i] = it->second;
  }
  Accuracy acc;
  acc.count = features.size(0);
  if (acc.count == 0) return acc;
  const at::Tensor protos = normalized(prototypes.to(features.device(), at::kFloat)).t().contiguous();
  const at::Tensor target = at::tensor(mapped, at::kLong).to(features.device());
  const int64_t k = std::min<int64_t>(5, static_cast<int64_t>(classes.size()));
  int64_t hit1 = 0, hit5 = 0;
  for (int64_t start = 0; start < acc.count; start += 8192) {
    int64_t n = std::min<int64_t>(8192, acc.count - start);
    at::Tensor logits = at::mm(normalized(features.narrow(0, start, n).to(at::kFloat)), protos);
    at::Tensor top = std::get<1>(logits.topk(k, 1));
    at::Tensor t = target.narrow(0, start, n).unsqueeze(1);
    hit1 += (top.narrow(1, 0, 1) == t).sum().item<int64_t>();
    hit5 += (top == t).any(1).sum().item<int64_t>();
  }
  acc.top1 = static_cast<double>(hit1) / acc.count;
  acc.top5 = static_cast<double>(hit5) / acc.count;
  return acc;
}

Accuracy zero_shot_accuracy(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& class_embeddings,
                            const std::vector<int64_t>& classes) {
  require(class_embeddings.defined() && class_embeddings.numel() > 0, "zero-shot needs class text embeddings");
  at::Tensor idx = at::tensor(classes, at::kLong);
  require(idx.numel() == 0 || idx.max().item<int64_t>() < class_embeddings.size(0),
          "zero-shot: class id outside the {} text embeddings", class_embeddings.size(0));
  return prototype_accuracy(features, labels, class_embeddings.index_select(0, idx), classes);
}

at::Tensor class_means(const at::Tensor& ref_features, const at::Tensor& ref_labels, const std::vector<int64_t>& classes) {
  at::NoGradGuard g;
  at::Tensor lab = ref_labels.to(at::kCPU, at::kLong);
  at::Tensor feats = normalized(ref_features.to(at::kCPU, at::kFloat));
  std::vector<at::Tensor> means;
  for (int64_t c : classes) {
    at::Tensor rows = (lab == c).nonzero().view({-1});
    require(rows.numel() > 0, "nearest class mean: the reference set has no row of class {}", c);
    means.push_back(feats.index_select(0, rows).mean(0));
  }
  return at::stack(means);
}

double mean_cosine(const at::Tensor& a, const at::Tensor& b) {
  require(a.sizes() == b.sizes(), "mean_cosine: shapes {} and {} differ", a.sizes(), b.sizes());
  if (a.numel() == 0) return 0;
  at::NoGradGuard g;
  return (normalized(a.to(at::kFloat)) * normalized(b.to(a.device(), at::kFloat))).sum(1).mean().item<double>();
}

}  // namespace semcodec
