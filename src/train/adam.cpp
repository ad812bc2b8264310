#include "train/adam.h"

#include <ATen/ATen.h>

#include <cmath>

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

void Adam::step() {
  at::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(opt_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(opt_.beta2, static_cast<double>(step_));
  const double step_size = opt_.lr / bc1;
  for (auto& s : slots_) {
    if (!s.param.grad().defined()) continue;
    at::Tensor g = s.param.grad();
    if (opt_.weight_decay != 0) {
      if (opt_.decoupled_weight_decay) s.param.mul_(1 - opt_.lr * opt_.weight_decay);
      else g = g.add(s.param, opt_.weight_decay);
    }
    s.m.mul_(opt_.beta1).add_(g, 1 - opt_.beta1);
    s.v.mul_(opt_.beta2).addcmul_(g, g, 1 - opt_.beta2);
    at::Tensor denom = (s.v / bc2).sqrt_().add_(opt_.eps);
    s.param.addcdiv_(s.m, denom, -step_size);
  }
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
