#include "models/quantizers/scalar_quantizer.h"

#include <ATen/ATen.h>

#include "models/method_registry.h"
#include "models/quantizers/lloyd_max.h"
#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

LearnedScalarQuantizer::LearnedScalarQuantizer(int64_t embed_dim, int64_t bits, bool per_dim, int64_t iterations)
    : embed_dim_(embed_dim), bits_(bits), iterations_(iterations), per_dim_(per_dim) {
  require(embed_dim >= 1, "learned SQ: embedding dimension {} < 1", embed_dim);
  require(bits >= 1 && bits <= 8, "learned SQ: {} bits per dimension outside [1, 8]", bits);
}

void LearnedScalarQuantizer::set_levels(at::Tensor levels) {
  levels_ = levels.contiguous();
  const int64_t l = levels_.size(1);
  thresholds_ = ((levels_.narrow(1, 0, l - 1) + levels_.narrow(1, 1, l - 1)) * 0.5).contiguous();
}

void LearnedScalarQuantizer::fit(const at::Tensor& x_in) {
  at::Tensor x = unit_rows_cpu(x_in, embed_dim_, "learned SQ fit");
  require(x.size(0) > 0, "learned SQ fit: no training rows");
  const int64_t n = x.size(0), levels = alphabet_size(0);
  LloydMaxOptions opt;
  opt.iterations = iterations_;
  at::Tensor xd = x.to(at::kDouble).contiguous();
  std::vector<double> out;
  if (per_dim_) {
    at::Tensor cols = xd.t().contiguous();
    const double* p = cols.data_ptr<double>();
    for (int64_t d = 0; d < embed_dim_; ++d) {
      std::vector<double> lv = lloyd_max_levels(std::vector<double>(p + d * n, p + (d + 1) * n), levels, opt);
      out.insert(out.end(), lv.begin(), lv.end());
    }
  } else {
    const double* p = xd.data_ptr<double>();
    const int64_t total = xd.numel();
    const int64_t stride = (total + kMaxSharedValues - 1) / kMaxSharedValues;
    std::vector<double> values;
    values.reserve(static_cast<size_t>(total / stride + 1));
    for (int64_t i = 0; i < total; i += stride) values.push_back(p[i]);
    out = lloyd_max_levels(std::move(values), levels, opt);
  }
  set_levels(at::tensor(out, at::kDouble).view({per_dim_ ? embed_dim_ : 1, levels}).to(at::kFloat));
}

at::Tensor LearnedScalarQuantizer::encode(const at::Tensor& x_in) {
  require(is_trained(), "learned SQ: encode before fit");
  at::Tensor x = unit_rows_cpu(x_in, embed_dim_, "learned SQ encode");
  if (!per_dim_) return at::bucketize(x, thresholds_[0]).to(at::kLong);
  // One sorted threshold row per dimension: searchsorted over [D, N].
  return at::searchsorted(thresholds_, x.t().contiguous()).t().contiguous().to(at::kLong);
}

at::Tensor LearnedScalarQuantizer::decode(const at::Tensor& indices) {
  require(is_trained(), "learned SQ: decode before fit");
  at::Tensor idx = checked_indices_cpu(indices, embed_dim_, alphabet_size(0), "learned SQ decode");
  if (!per_dim_) return levels_[0].index_select(0, idx.reshape({-1})).view(idx.sizes()).contiguous();
  return levels_.gather(1, idx.t()).t().contiguous();
}

std::map<std::string, at::Tensor> LearnedScalarQuantizer::state() const {
  require(is_trained(), "learned SQ: no state before fit");
  return {{"levels", levels_}};
}

void LearnedScalarQuantizer::load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) {
  require(state.size() == 1, "{}: learned SQ state must hold exactly the tensor 'levels' ({} tensors)", source,
          state.size());
  at::Tensor lv = state_tensor(state, "levels", {per_dim_ ? embed_dim_ : 1, alphabet_size(0)}, at::kFloat, source);
  require(at::isfinite(lv).all().item<bool>(), "{}: tensor 'levels' holds non-finite values", source);
  require(lv.size(1) < 2 || (lv.narrow(1, 1, lv.size(1) - 1) >= lv.narrow(1, 0, lv.size(1) - 1)).all().item<bool>(),
          "{}: tensor 'levels' is not ascending in every row", source);
  set_levels(lv);
}

namespace {
template <bool PerDim>
std::shared_ptr<Quantizer> make_learned_sq(const ModelConfig& c) {
  const auto& o = c.options<ScalarQuantizerOptions>();
  return std::make_shared<LearnedScalarQuantizer>(c.embed_dim, o.bits, PerDim, o.iterations);
}

template <bool PerDim>
MethodInfo learned_sq_entry(const char* name, const char* summary) {
  MethodInfo m;
  m.name = name;
  m.kind = MethodKind::fitted;
  m.summary = summary;
  m.options = make_option_group<ScalarQuantizerOptions>;
  m.make = make_learned_sq<PerDim>;
  return m;
}
}  // namespace

MethodInfo learned_sq_method() {
  return learned_sq_entry<false>("learned_sq", "learned scalar quantization: one Lloyd-Max level set for all dimensions");
}
MethodInfo learned_sq_per_dim_method() {
  return learned_sq_entry<true>("learned_sq_per_dim", "learned scalar quantization: Lloyd-Max levels per dimension");
}

}  // namespace semcodec
