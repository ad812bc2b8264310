// Classifiers that measure how much semantics a (reconstructed) embedding
// keeps: CLIP zero-shot against class text embeddings, and nearest class mean
// for sets without text embeddings.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace semcodec {

struct Accuracy {
  double top1 = 0, top5 = 0;
  int64_t count = 0;
};

// Scores each row of `features` [N, D] against `prototypes` [C', D] (one per
// entry of `classes`, global class ids) by cosine; `labels` [N] are global ids
// and must all be in `classes`.
Accuracy prototype_accuracy(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& prototypes,
                            const std::vector<int64_t>& classes);

// Zero-shot: prototypes are the class text embeddings [C, D] restricted to `classes`.
Accuracy zero_shot_accuracy(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& class_embeddings,
                            const std::vector<int64_t>& classes);

// Prototypes [classes.size(), D]: normalized means of the reference rows of each class.
at::Tensor class_means(const at::Tensor& ref_features, const at::Tensor& ref_labels, const std::vector<int64_t>& classes);

// Mean cosine similarity between matching rows.
double mean_cosine(const at::Tensor& a, const at::Tensor& b);

}  // namespace semcodec
