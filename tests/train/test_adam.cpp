#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <cmath>

#include "train/adam.h"

using namespace semcodec;

// Two Adam steps on f(w) = sum(c * w), worked out by hand from the update rule
// m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, w -= lr * m_hat / (sqrt(v_hat) + eps),
// with L2 weight decay g = c + wd * w.
TEST_CASE("Adam matches the update rule computed by hand", "[train][adam]") {
  const bool fused = GENERATE(true, false);
  INFO("fused " << fused);
  at::Tensor w = at::tensor({1.0, -2.0}, at::kDouble).requires_grad_(true);
  const std::vector<double> c{0.5, 3.0};
  AdamOptions o;
  o.fused = fused;
  o.lr = 0.1, o.weight_decay = 0.01;
  o.decoupled_weight_decay = false;
  Adam adam({{"w", w}}, o);
  std::vector<double> wv{1.0, -2.0}, m{0, 0}, v{0, 0};
  for (int t = 1; t <= 2; ++t) {
    adam.zero_grad();
    (w * at::tensor(c, at::kDouble)).sum().backward();
    adam.step();
    for (int i = 0; i < 2; ++i) {
      double g = c[i] + 0.01 * wv[i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
      wv[i] -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
    }
    CHECK(w[0].item<double>() == Approx(wv[0]).epsilon(1e-12));
    CHECK(w[1].item<double>() == Approx(wv[1]).epsilon(1e-12));
  }
  // State round trip, and reset of selected rows.
  auto st = adam.state();
  CHECK(st.at("step").item<int64_t>() == 2);
  at::Tensor w2 = w.detach().clone().requires_grad_(true);
  Adam other({{"w", w2}}, o);
  other.load_state(st, "test");
  CHECK(at::equal(other.state().at("m.w"), st.at("m.w")));
  other.reset_rows("w", {1});
  CHECK(other.state().at("m.w")[1].item<double>() == 0.0);
  CHECK(other.state().at("m.w")[0].item<double>() != 0.0);
  REQUIRE_THROWS(other.load_state({{"m.x", st.at("m.w")}}, "test"));
}

// AdamW: the decay multiplies the weight by (1 - lr * wd) before the Adam step
// on the bare gradient.
TEST_CASE("decoupled weight decay matches AdamW computed by hand", "[train][adam]") {
  const bool fused = GENERATE(true, false);
  INFO("fused " << fused);
  at::Tensor w = at::tensor({2.0}, at::kDouble).requires_grad_(true);
  AdamOptions o;
  o.fused = fused;
  o.lr = 0.05, o.weight_decay = 0.1;
  Adam adam({{"w", w}}, o);
  (w * 3.0).sum().backward();
  adam.step();
  // m = 0.3, v = 0.009, m_hat = 3, v_hat = 9 -> step 0.05 * 3 / 3
  const double expected = 2.0 * (1 - 0.05 * 0.1) - 0.05 * 3.0 / (3.0 + 1e-8);
  CHECK(w.item<double>() == Approx(expected).epsilon(1e-12));
}

// The fused CPU pass and the _foreach_ ops do the same arithmetic: several
// float32 tensors (one longer than a parallel chunk), both decay modes, and a
// parameter that backward never reaches, which neither may touch.
TEST_CASE("fused and multi-tensor Adam steps agree and skip parameters without gradients", "[train][adam]") {
  for (const bool decoupled : {true, false}) {
    INFO("decoupled " << decoupled);
    at::manual_seed(3);
    const std::vector<std::vector<int64_t>> shapes{{70000}, {33, 7}, {5}, {4, 3}};
    std::vector<at::Tensor> init;
    for (const auto& s : shapes) init.push_back(at::randn(s));
    std::vector<at::Tensor> targets;
    for (size_t i = 0; i + 1 < shapes.size(); ++i) targets.push_back(at::randn(shapes[i]));
    std::vector<std::vector<at::Tensor>> finals;
    for (const bool fused : {true, false}) {
      std::vector<std::pair<std::string, at::Tensor>> params;
      for (size_t i = 0; i < init.size(); ++i)
        params.emplace_back("p" + std::to_string(i), init[i].clone().requires_grad_(true));
      AdamOptions o;
      o.lr = 0.01, o.weight_decay = 0.05, o.decoupled_weight_decay = decoupled, o.fused = fused;
      Adam adam(params, o);
      for (int step = 0; step < 5; ++step) {
        adam.zero_grad();
        at::Tensor loss = at::zeros({});
        for (size_t i = 0; i < targets.size(); ++i) loss = loss + (params[i].second - targets[i]).pow(2).sum();
        loss.backward();
        adam.step();
      }
      CHECK(at::equal(params.back().second, init.back()));  // no gradient: untouched
      CHECK_FALSE(at::equal(params.front().second, init.front()));
      std::vector<at::Tensor> f;
      for (auto& [name, t] : params) f.push_back(t.detach().clone());
      for (const auto& [name, t] : adam.state()) f.push_back(t.to(at::kFloat));
      finals.push_back(f);
    }
    REQUIRE(finals[0].size() == finals[1].size());
    for (size_t i = 0; i < finals[0].size(); ++i) CHECK(at::allclose(finals[0][i], finals[1][i], 1e-5, 1e-6));
  }
}
