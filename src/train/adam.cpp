#include "train/adam.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <type_traits>

#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

Adam::Adam(std::vector<std::pair<std::string, at::Tensor>> params, AdamOptions opt) : opt_(opt) {
  for (auto& [name, p] : params) slots_.push_back({name, p, at::zeros_like(p), at::zeros_like(p)});
}

void Adam::zero_grad() {
  for (auto& s : slots_) {
    if (s.param.grad().defined()) s.param.mutable_grad().zero_();
  }
}

namespace {

struct UpdateConstants {
  double b1, b2, c1, c2, wd, decay, eps, bias2, step;
  bool decoupled, l2;
};

// The element-wise update of w[begin, end): one read of w, g, m, v and one
// write of w, m, v. The same arithmetic as the _foreach_ path in Adam::step.
template <class T>
inline __attribute__((always_inline)) void update_range(T* w, const T* g_in, T* m, T* v, int64_t begin, int64_t end,
                                                         const UpdateConstants& k) {
  const T b1 = static_cast<T>(k.b1), b2 = static_cast<T>(k.b2), c1 = static_cast<T>(k.c1), c2 = static_cast<T>(k.c2);
  const T wd = static_cast<T>(k.wd), decay = static_cast<T>(k.decay), eps = static_cast<T>(k.eps);
  const T bias2 = static_cast<T>(k.bias2), step = static_cast<T>(k.step);
  const bool decoupled = k.decoupled, l2 = k.l2;
  for (int64_t i = begin; i < end; ++i) {
    T wi = w[i], g = g_in[i];
    if (decoupled) wi *= decay;
    if (l2) g += wd * wi;
    const T mi = m[i] * b1 + c1 * g;
    const T vi = v[i] * b2 + c2 * g * g;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi - step * (mi / (std::sqrt(vi / bias2) + eps));
  }
}

// Compiled for AVX-512, AVX2 and the baseline, picked at load time: the loop
// is compute-bound (a square root and a division per element) unless wide.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SEMCODEC_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SEMCODEC_CPU_CLONES
#endif
SEMCODEC_CPU_CLONES void update_range_f32(float* w, const float* g, float* m, float* v, int64_t b, int64_t e,
                                           const UpdateConstants& k) {
  update_range(w, g, m, v, b, e, k);
}
SEMCODEC_CPU_CLONES void update_range_f64(double* w, const double* g, double* m, double* v, int64_t b, int64_t e,
                                           const UpdateConstants& k) {
  update_range(w, g, m, v, b, e, k);
}

template <class T>
void fused_update(T* w, const T* g, T* m, T* v, int64_t n, const AdamOptions& o, double step_size, double bc2) {
  UpdateConstants k{o.beta1, o.beta2, 1 - o.beta1, 1 - o.beta2, o.weight_decay, 1 - o.lr * o.weight_decay, o.eps,
                    bc2, step_size, o.decoupled_weight_decay && o.weight_decay != 0,
                    !o.decoupled_weight_decay && o.weight_decay != 0};
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, float>) update_range_f32(w, g, m, v, begin, end, k);
    else update_range_f64(w, g, m, v, begin, end, k);
  });
}

bool fusable(const at::Tensor& w, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v) {
  const auto t = w.scalar_type();
  return w.is_cpu() && (t == at::kFloat || t == at::kDouble) && g.scalar_type() == t && g.is_cpu() &&
         w.is_contiguous() && g.is_contiguous() && m.is_contiguous() && v.is_contiguous();
}

}  // namespace

void Adam::step() {
  at::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(opt_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(opt_.beta2, static_cast<double>(step_));
  const double step_size = opt_.lr / bc1;
  // Parameters without a gradient (never reached by backward so far) keep
  // their weights and moments.
  std::vector<at::Tensor> w, g, m, v;
  for (auto& s : slots_) {
    const at::Tensor& grad = s.param.grad();
    if (!grad.defined()) continue;
    if (opt_.fused && fusable(s.param, grad, s.m, s.v)) {
      const int64_t n = s.param.numel();
      if (s.param.scalar_type() == at::kFloat)
        fused_update(s.param.data_ptr<float>(), grad.data_ptr<float>(), s.m.data_ptr<float>(), s.v.data_ptr<float>(), n,
                     opt_, step_size, bc2);
      else
        fused_update(s.param.data_ptr<double>(), grad.data_ptr<double>(), s.m.data_ptr<double>(),
                     s.v.data_ptr<double>(), n, opt_, step_size, bc2);
      continue;
    }
    w.push_back(s.param), g.push_back(grad), m.push_back(s.m), v.push_back(s.v);
  }
  if (w.empty()) return;
  if (opt_.weight_decay != 0) {
    if (opt_.decoupled_weight_decay) at::_foreach_mul_(w, 1 - opt_.lr * opt_.weight_decay);
    else g = at::_foreach_add(g, w, opt_.weight_decay);
  }
  at::_foreach_mul_(m, opt_.beta1);
  at::_foreach_add_(m, g, 1 - opt_.beta1);
  at::_foreach_mul_(v, opt_.beta2);
  at::_foreach_addcmul_(v, g, g, 1 - opt_.beta2);
  std::vector<at::Tensor> denom = at::_foreach_div(v, bc2);
  at::_foreach_sqrt_(denom);
  at::_foreach_add_(denom, opt_.eps);
  at::_foreach_addcdiv_(w, m, denom, -step_size);
}

void Adam::reset_rows(const std::string& param, const std::vector<int64_t>& rows) {
  if (rows.empty()) return;
  for (auto& s : slots_) {
    if (s.name != param) continue;
    at::Tensor idx = at::tensor(rows, at::kLong).to(s.m.device());
    s.m.index_fill_(0, idx, 0);
    s.v.index_fill_(0, idx, 0);
    return;
  }
  fail("optimizer has no parameter '{}'", param);
}

std::map<std::string, at::Tensor> Adam::state() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& s : slots_) {
    out["m." + s.name] = s.m;
    out["v." + s.name] = s.v;
  }
  out["step"] = at::tensor({step_}, at::kLong);
  return out;
}

void Adam::load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) {
  auto get = [&](const std::string& key, const at::Tensor& like) {
    auto it = state.find(key);
    require(it != state.end(), "{}: optimizer state '{}' is missing", source, key);
    require(it->second.sizes() == like.sizes(), "{}: optimizer state '{}' has shape {}, expected {}", source, key,
            it->second.sizes(), like.sizes());
    return it->second;
  };
  at::NoGradGuard no_grad;
  for (auto& s : slots_) {
    s.m.copy_(get("m." + s.name, s.m));
    s.v.copy_(get("v." + s.name, s.v));
  }
  auto it = state.find("step");
  require(it != state.end() && it->second.numel() == 1, "{}: optimizer state 'step' is missing", source);
  step_ = it->second.item<int64_t>();
}

}  // namespace semcodec
