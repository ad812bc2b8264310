#include "data/feature_set.h"

#include <ATen/ATen.h>

#include "util/error.h"

namespace semcodec {

FeatureSet select_classes(const FeatureSet& set, const std::vector<int64_t>& classes) {
  const int64_t c = set.num_classes();
  std::vector<uint8_t> keep(static_cast<size_t>(std::max<int64_t>(c, 0)), 0);
  for (int64_t k : classes) {
    require(k >= 0 && k < c, "select_classes: class {} is outside [0, {})", k, c);
    keep[static_cast<size_t>(k)] = 1;
  }
  if (set.size() == 0) return set;
  at::Tensor labels = set.labels.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t* l = labels.data_ptr<int64_t>();
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < labels.numel(); ++i)
    if (l[i] >= 0 && l[i] < c && keep[static_cast<size_t>(l[i])]) rows.push_back(i);
  return select_rows(set, rows);
}

FeatureSet select_rows(const FeatureSet& set, const std::vector<int64_t>& rows) {
  for (int64_t r : rows) require(r >= 0 && r < set.size(), "select_rows: row {} is outside [0, {})", r, set.size());
  require(set.ids.empty() || set.ids.size() == static_cast<size_t>(set.size()), "select_rows: {} ids for {} rows",
          set.ids.size(), set.size());
  FeatureSet out;
  out.class_names = set.class_names;
  out.class_embeddings = set.class_embeddings;
  out.attrs = set.attrs;
  at::Tensor index = at::tensor(rows, at::kLong);
  out.features = set.features.index_select(0, index.to(set.features.device()));
  out.labels = set.labels.index_select(0, index.to(set.labels.device()));
  if (set.image_sizes.defined()) out.image_sizes = set.image_sizes.index_select(0, index.to(set.image_sizes.device()));
  if (!set.ids.empty()) {
    out.ids.reserve(rows.size());
    for (int64_t r : rows) out.ids.push_back(set.ids[static_cast<size_t>(r)]);
  }
  return out;
}

std::vector<int64_t> strided_row_indices(int64_t n, int64_t max_rows) {
  require(max_rows >= 0 && n >= 0, "strided_row_indices: {} of {} rows", max_rows, n);
  const int64_t m = max_rows == 0 ? n : std::min(n, max_rows);
  std::vector<int64_t> rows(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) rows[static_cast<size_t>(i)] = i * n / m;
  return rows;
}

FeatureSet stride_rows(const FeatureSet& set, int64_t max_rows) {
  if (max_rows == 0 || max_rows >= set.size()) return set;
  return select_rows(set, strided_row_indices(set.size(), max_rows));
}

}  // namespace semcodec
