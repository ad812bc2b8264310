#include "models/quantizers/reference_quantizers.h"

#include <ATen/ATen.h>

#include "models/method_registry.h"
#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

Float16Quantizer::Float16Quantizer(int64_t embed_dim) : embed_dim_(embed_dim) {
  require(embed_dim >= 1, "float16: embedding dimension {} < 1", embed_dim);
}

at::Tensor Float16Quantizer::encode(const at::Tensor& x) {
  at::Tensor h = unit_rows_cpu(x, embed_dim_, "float16 encode").to(at::kHalf).contiguous();
  return h.view(at::kShort).to(at::kLong).bitwise_and(0xFFFF);
}

at::Tensor Float16Quantizer::decode(const at::Tensor& indices) {
  at::Tensor idx = checked_indices_cpu(indices, embed_dim_, 65536, "float16 decode");
  // Bit patterns >= 2^15 are negative as int16.
  at::Tensor bits = at::where(idx >= 32768, idx - 65536, idx).to(at::kShort).contiguous();
  return bits.view(at::kHalf).to(at::kFloat);
}

void Float16Quantizer::load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) {
  require(state.empty(), "{}: float16 has no state, but the checkpoint holds {} tensors", source, state.size());
}

UniformQuantizer::UniformQuantizer(int64_t embed_dim, int64_t bits, bool per_dim_scale)
    : embed_dim_(embed_dim), bits_(bits), per_dim_(per_dim_scale) {
  require(embed_dim >= 1, "uniform quantizer: embedding dimension {} < 1", embed_dim);
  require(bits >= 2 && bits <= 16, "uniform quantizer: {} bits outside [2, 16]", bits);
}

void UniformQuantizer::fit(const at::Tensor& x_in) {
  at::Tensor x = unit_rows_cpu(x_in, embed_dim_, "uniform quantizer fit");
  require(x.size(0) > 0, "uniform quantizer fit: no training rows");
  at::Tensor max_abs = per_dim_ ? std::get<0>(x.abs().max(0)) : x.abs().max().view({1});
  const double qmax = static_cast<double>((int64_t{1} << (bits_ - 1)) - 1);
  scale_ = (max_abs / qmax).clamp_min(1e-12).contiguous();
}

at::Tensor UniformQuantizer::encode(const at::Tensor& x_in) {
  require(is_trained(), "{}: encode before fit", name());
  at::Tensor x = unit_rows_cpu(x_in, embed_dim_, "uniform quantizer encode");
  const int64_t half = int64_t{1} << (bits_ - 1);
  at::Tensor q = at::round(x / scale_).clamp(-static_cast<double>(half), static_cast<double>(half - 1));
  return (q.to(at::kLong) + half).contiguous();
}

at::Tensor UniformQuantizer::decode(const at::Tensor& indices) {
  require(is_trained(), "{}: decode before fit", name());
  at::Tensor idx = checked_indices_cpu(indices, embed_dim_, alphabet_size(0), "uniform quantizer decode");
  const int64_t half = int64_t{1} << (bits_ - 1);
  return ((idx - half).to(at::kFloat) * scale_).contiguous();
}

std::map<std::string, at::Tensor> UniformQuantizer::state() const {
  require(is_trained(), "{}: no state before fit", name());
  return {{"scale", scale_}};
}

void UniformQuantizer::load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) {
  require(state.size() == 1, "{}: {} state must hold exactly the tensor 'scale' ({} tensors)", source, name(),
          state.size());
  at::Tensor s = state_tensor(state, "scale", {per_dim_ ? embed_dim_ : 1}, at::kFloat, source);
  require((s > 0).all().item<bool>() && at::isfinite(s).all().item<bool>(),
          "{}: tensor 'scale' must be finite and positive", source);
  scale_ = s;
}


namespace {
template <int64_t Bits>
std::shared_ptr<Quantizer> make_uniform(const ModelConfig& c) {
  return std::make_shared<UniformQuantizer>(c.embed_dim, Bits, c.options<UniformQuantizerOptions>().scale == "per_dim");
}

template <int64_t Bits>
MethodInfo uniform_entry(const char* name, const char* summary) {
  MethodInfo m;
  m.name = name;
  m.kind = MethodKind::fitted;
  m.summary = summary;
  m.options = make_option_group<UniformQuantizerOptions>;
  m.make = make_uniform<Bits>;
  return m;
}
}  // namespace

MethodInfo float16_method() {
  MethodInfo m;
  m.name = "float16";
  m.kind = MethodKind::fitted;
  m.summary = "reference: the unit-norm embedding stored as IEEE float16";
  m.make = [](const ModelConfig& c) -> std::shared_ptr<Quantizer> { return std::make_shared<Float16Quantizer>(c.embed_dim); };
  return m;
}
MethodInfo int8_method() { return uniform_entry<8>("int8", "reference: symmetric uniform 8-bit quantization"); }
MethodInfo int4_method() { return uniform_entry<4>("int4", "reference: symmetric uniform 4-bit quantization"); }

}  // namespace semcodec
