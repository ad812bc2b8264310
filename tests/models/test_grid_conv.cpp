// grid_conv (models/pqvae/grid_conv.h) against PyTorch's own convolutions.
// Every geometry PQVAE-shared uses (and a few generic ones) is run through
// grid_conv on [N, P, C] activations and through at::conv2d /
// at::conv_transpose2d on [N, C, H, W] copies in double precision; values and
// the gradients w.r.t. input, weight and bias of a random linear functional
// of the output must agree.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "models/pqvae/grid_conv.h"

using semcodec::GridConvPlan;
using semcodec::GridShape;

namespace {

struct Geometry {
  std::string name;
  bool transposed;
  GridShape in;
  int64_t kernel, stride, padding;
  GridShape expected_out;
};

// [N, P, C] -> [N, C, H, W]
at::Tensor to_nchw(const at::Tensor& x, GridShape g) {
  return x.permute({0, 2, 1}).reshape({x.size(0), x.size(2), g.height, g.width});
}
// [N, C, H, W] -> [N, P, C]
at::Tensor to_npc(const at::Tensor& x) { return x.flatten(2).permute({0, 2, 1}); }

double rel_err(const at::Tensor& got, const at::Tensor& want) {
  at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  double scale = w.abs().max().item<double>();
  double diff = (g - w).abs().max().item<double>();
  return diff / (scale > 0 ? scale : 1.0);
}

void check_geometry(const Geometry& geo, int64_t n, int64_t cin, int64_t cout, bool with_bias, uint64_t seed) {
  INFO("geometry " << geo.name << " cin=" << cin << " cout=" << cout << " bias=" << with_bias);
  const GridConvPlan plan = geo.transposed ? semcodec::transposed_conv_plan(geo.in, geo.kernel, geo.stride, geo.padding)
                                           : semcodec::conv_plan(geo.in, geo.kernel, geo.stride, geo.padding);
  REQUIRE(plan.out.height == geo.expected_out.height);
  REQUIRE(plan.out.width == geo.expected_out.width);

  at::manual_seed(seed);
  const int64_t k = geo.kernel;
  at::Tensor x = at::randn({n, geo.in.positions(), cin}).requires_grad_();
  at::Tensor w = (geo.transposed ? at::randn({cin, cout, k, k}) : at::randn({cout, cin, k, k})).requires_grad_();
  at::Tensor b = with_bias ? at::randn({cout}).requires_grad_() : at::Tensor();
  at::Tensor g = at::randn({n, geo.expected_out.positions(), cout});

  // Fast path.
  at::Tensor y = semcodec::grid_conv(x, w, b, plan);
  REQUIRE(y.dim() == 3);
  REQUIRE(y.size(0) == n);
  REQUIRE(y.size(1) == geo.expected_out.positions());
  REQUIRE(y.size(2) == cout);
  (y * g).sum().backward();

  // Reference: PyTorch's convolution in double precision, NCHW.
  at::Tensor xr = x.detach().to(at::kDouble).requires_grad_();
  at::Tensor wr = w.detach().to(at::kDouble).requires_grad_();
  at::Tensor br = with_bias ? b.detach().to(at::kDouble).requires_grad_() : at::Tensor();
  at::Tensor x4 = to_nchw(xr, geo.in);
  at::Tensor y4 = geo.transposed
                      ? at::conv_transpose2d(x4, wr, br, {geo.stride, geo.stride}, {geo.padding, geo.padding})
                      : at::conv2d(x4, wr, br, {geo.stride, geo.stride}, {geo.padding, geo.padding});
  REQUIRE(y4.size(2) == geo.expected_out.height);
  REQUIRE(y4.size(3) == geo.expected_out.width);
  at::Tensor yr = to_npc(y4);
  (yr * g.to(at::kDouble)).sum().backward();

  CHECK(rel_err(y.detach(), yr.detach()) < 1e-5);
  CHECK(rel_err(x.grad(), xr.grad()) < 1e-4);
  CHECK(rel_err(w.grad(), wr.grad()) < 1e-4);
  if (with_bias) CHECK(rel_err(b.grad(), br.grad()) < 1e-4);
}

const std::vector<Geometry>& network_geometries() {
  static const std::vector<Geometry> g = {
      {"transposed 1x1->3x3 k3 s2 p0 (encoder.up1)", true, {1, 1}, 3, 2, 0, {3, 3}},
      {"transposed 3x3->5x5 k3 s2 p1 (encoder.up2)", true, {3, 3}, 3, 2, 1, {5, 5}},
      {"transposed 5x5 k3 s1 p1 (encoder residual wide)", true, {5, 5}, 3, 1, 1, {5, 5}},
      {"transposed 5x5 k1 s1 p0 (encoder residual narrow)", true, {5, 5}, 1, 1, 0, {5, 5}},
      {"conv 5x5 k3 s1 p1 (to_latent / from_latent / decoder residual wide)", false, {5, 5}, 3, 1, 1, {5, 5}},
      {"conv 5x5 k1 s1 p0 (decoder residual narrow)", false, {5, 5}, 1, 1, 0, {5, 5}},
      {"conv 5x5->3x3 k3 s2 p1 (decoder.down1)", false, {5, 5}, 3, 2, 1, {3, 3}},
      {"conv 3x3->1x1 k3 s2 p0 (decoder.down2)", false, {3, 3}, 3, 2, 0, {1, 1}},
  };
  return g;
}

}  // namespace

TEST_CASE("grid_conv matches at::conv2d / at::conv_transpose2d on every network geometry", "[models][grid_conv]") {
  uint64_t seed = 100;
  for (const auto& geo : network_geometries()) {
    for (bool bias : {false, true}) {
      check_geometry(geo, /*n=*/3, /*cin=*/7, /*cout=*/5, bias, seed++);
      check_geometry(geo, /*n=*/2, /*cin=*/32, /*cout=*/48, bias, seed++);
    }
  }
}

TEST_CASE("grid_conv matches PyTorch at the paper's channel counts", "[models][grid_conv]") {
  // The actual layer sizes of the 768-d model, batch 2.
  const auto& g = network_geometries();
  check_geometry(g[0], 2, 768, 512, true, 1);   // encoder.up1
  check_geometry(g[1], 2, 512, 256, true, 2);   // encoder.up2
  check_geometry(g[2], 2, 256, 128, false, 3);  // encoder residual wide
  check_geometry(g[3], 2, 128, 256, false, 4);  // encoder residual narrow
  check_geometry(g[4], 2, 256, 128, true, 5);   // to_latent
  check_geometry(g[5], 2, 128, 256, false, 6);  // decoder residual narrow
  check_geometry(g[6], 2, 256, 512, true, 7);   // decoder.down1
  check_geometry(g[7], 2, 512, 768, true, 8);   // decoder.down2
}

TEST_CASE("grid_conv matches PyTorch on other grid geometries", "[models][grid_conv]") {
  // Not used by the network, but the plans are generic: non-square grids,
  // even kernels, strides larger than the kernel.
  const std::vector<Geometry> extra = {
      {"conv 4x3 k2 s1 p0", false, {4, 3}, 2, 1, 0, {3, 2}},
      {"conv 6x5 k3 s2 p0", false, {6, 5}, 3, 2, 0, {2, 2}},
      {"conv 2x3 k1 s2 p0", false, {2, 3}, 1, 2, 0, {1, 2}},
      {"conv 4x4 k5 s1 p2", false, {4, 4}, 5, 1, 2, {4, 4}},
      {"transposed 2x3 k2 s2 p0", true, {2, 3}, 2, 2, 0, {4, 6}},
      {"transposed 3x2 k3 s1 p0", true, {3, 2}, 3, 1, 0, {5, 4}},
      {"transposed 2x2 k1 s3 p0", true, {2, 2}, 1, 3, 0, {4, 4}},
      {"transposed 4x4 k5 s2 p2", true, {4, 4}, 5, 2, 2, {7, 7}},
  };
  uint64_t seed = 500;
  for (const auto& geo : extra)
    for (bool bias : {false, true}) check_geometry(geo, 2, 6, 4, bias, seed++);
}

TEST_CASE("grid_conv rejects mismatched inputs", "[models][grid_conv]") {
  auto plan = semcodec::conv_plan({5, 5}, 3, 1, 1);
  at::Tensor w = at::randn({4, 6, 3, 3});
  CHECK_THROWS(semcodec::grid_conv(at::randn({2, 9, 6}), w, {}, plan));  // 9 positions, plan wants 25
  CHECK_THROWS(semcodec::grid_conv(at::randn({2, 25, 5}), w, {}, plan));  // 5 channels, weight wants 6
  CHECK_THROWS(semcodec::conv_plan({1, 1}, 3, 1, 0));                    // kernel larger than the grid
}
