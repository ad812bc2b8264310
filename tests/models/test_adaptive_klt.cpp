// Adaptive KLT (docs/adaptive_klt.md) against independent references: a
// covariance with known principal directions, a reconstruction recomputed by
// hand from the stored state, side information parsed back and rewritten, and
// the rate of a planned stream counted from its bytes and tables.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "models/quantizers/adaptive_klt.h"
#include "codec/entropy/bit_io.h"
#include "util/error.h"

using namespace semcodec;

namespace {

// Rows x = mu + sum_j z_j sqrt(var_j) e_j over orthonormal directions e_j (a
// rotation of the canonical basis by a fixed angle in each (2i, 2i + 1) plane),
// z from a fixed pseudo-random sequence; returns the rows (not normalized).
at::Tensor structured_rows(int64_t n, int64_t d, const std::vector<double>& var, double shift, uint64_t seed,
                           at::Tensor* directions = nullptr) {
  at::Tensor e = at::zeros({d, d}, at::kDouble);
  for (int64_t i = 0; i + 1 < d; i += 2) {
    const double a = 0.3 + 0.1 * static_cast<double>(i);
    e[i][i] = std::cos(a), e[i + 1][i] = std::sin(a);
    e[i][i + 1] = -std::sin(a), e[i + 1][i + 1] = std::cos(a);
  }
  if (d % 2) e[d - 1][d - 1] = 1;
  uint64_t s = seed;
  auto next = [&]() {  // SplitMix64 -> uniform(-sqrt(3), sqrt(3)): unit variance
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (static_cast<double>(z >> 11) / 9007199254740992.0 * 2 - 1) * std::sqrt(3.0);
  };
  at::Tensor z = at::empty({n, d}, at::kDouble);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < d; ++j) z[r][j] = next() * std::sqrt(var[static_cast<size_t>(j)]);
  at::Tensor mu = at::zeros({d}, at::kDouble);
  mu[0] = 1.0;
  mu[1] = shift;
  if (directions) *directions = e;
  return (mu + at::matmul(z, e.t())).to(at::kFloat);
}

AdaptiveKLTOptions small_options(double bits) {
  AdaptiveKLTOptions o;
  o.target_bits = bits;
  o.max_symbol = 15;
  o.fit_rows = 4000;
  return o;
}

}  // namespace

TEST_CASE("bit_io: Rice codes round-trip and cost what the formula says", "[adaptive_klt][bits]") {
  std::vector<uint8_t> out;
  semcodec::detail::BitWriter sink(out);
  const std::vector<int64_t> values = {0, -1, 1, 5, -7, 1000, -100000, 3};
  int64_t expected_bits = 0;
  for (int64_t v : values) {
    put_rice(sink, v, 2);
    expected_bits += rice_bits(v, 2);
  }
  sink.flush();
  // By hand: zigzag(0,-1,1,5,-7) = 0,1,2,10,13 -> r = 2: 3,3,3,5,6 bits;
  // 1000 -> 2000 >> 2 = 500 >= 24: escape 24 + 32; -100000 likewise; 3 -> 6: 1 + 1 + 2 = 4.
  CHECK(expected_bits == 3 + 3 + 3 + 5 + 6 + 56 + 56 + 4);
  CHECK(static_cast<int64_t>(out.size()) == (expected_bits + 7) / 8);
  semcodec::detail::BitReader src(out.data(), out.size());
  for (int64_t v : values) CHECK(get_rice(src, 2) == v);
  src.finish("test");
  out.push_back(0);
  semcodec::detail::BitReader extra(out.data(), out.size());
  for (size_t i = 0; i < values.size(); ++i) get_rice(extra, 2);
  CHECK_THROWS_WITH(extra.finish("test"), Catch::Contains("trailing"));
  semcodec::detail::BitReader cut(out.data(), 2);
  for (size_t i = 0; i < values.size(); ++i) get_rice(cut, 2);
  CHECK(cut.overrun());
}

TEST_CASE("adaptive_klt: table classes follow 4 per octave of sigma / step", "[adaptive_klt]") {
  // class = round(4 log2(sigma / step)) + 28, 0 below 1, capped at 47.
  CHECK(AdaptiveKLT::table_class(1.0, 1.0) == 28);
  CHECK(AdaptiveKLT::table_class(2.0, 1.0) == 32);
  CHECK(AdaptiveKLT::table_class(0.5, 1.0) == 24);
  CHECK(AdaptiveKLT::table_class(std::pow(2.0, 0.25), 1.0) == 29);
  CHECK(AdaptiveKLT::table_class(std::pow(2.0, -27.0 / 4), 1.0) == 1);
  CHECK(AdaptiveKLT::table_class(std::pow(2.0, -7.0), 1.0) == 0);
  CHECK(AdaptiveKLT::table_class(1e6, 1.0) == 47);
  CHECK(AdaptiveKLT::table_class(0.0, 1.0) == 0);
}

TEST_CASE("adaptive_klt: the fitted basis is the training rows' principal directions", "[adaptive_klt]") {
  const int64_t d = 8;
  const std::vector<double> var = {0.09, 0.04, 0.02, 0.01, 0.005, 0.0025, 0.0012, 0.0006};
  at::Tensor e;
  at::Tensor x = structured_rows(6000, d, var, 0.0, 1, &e);
  AdaptiveKLT q(d, small_options(24));
  q.fit(x);
  auto st = q.state();
  // Reference: eigenvectors of the covariance of the normalized rows, in double.
  at::Tensor xn = (x / x.norm(2, {1}, true)).to(at::kDouble);
  at::Tensor xc = xn - xn.mean(0);
  auto [ev, evec] = at::linalg_eigh(at::matmul(xc.t(), xc) / xn.size(0));
  for (int64_t j = 0; j < d; ++j) {
    at::Tensor ref = evec.select(1, d - 1 - j);
    const double cosine = std::abs(at::dot(ref, st.at("basis").select(1, j).to(at::kDouble)).item<double>());
    CHECK(cosine == Approx(1.0).margin(1e-5));
    CHECK(st.at("variance")[j].item<double>() == Approx(ev[d - 1 - j].item<double>()).epsilon(1e-4));
  }
  CHECK(at::allclose(st.at("mean").to(at::kDouble), xn.mean(0), 1e-6, 1e-6));
  // Every class's table is symmetric (the bank pools +a and -a).
  at::Tensor counts = st.at("bank_counts");
  CHECK(at::equal(counts, counts.flip(1)));
}

TEST_CASE("adaptive_klt: the default context reconstructs what a hand computation gives", "[adaptive_klt]") {
  const int64_t d = 6;
  const std::vector<double> var = {0.05, 0.03, 0.02, 0.01, 0.004, 0.002};
  at::Tensor x = structured_rows(3000, d, var, 0.1, 2);
  AdaptiveKLT q(d, small_options(20));
  q.fit(x);
  auto st = q.state();
  at::Tensor rows = structured_rows(5, d, var, 0.1, 3);
  at::Tensor idx = q.encode(rows);
  at::Tensor got = q.decode(idx);
  const double step = st.at("default_step").item<double>();
  const int64_t a_max = q.options().max_symbol;
  at::Tensor u = st.at("basis").to(at::kDouble), m = st.at("mean").to(at::kDouble);
  at::Tensor cen = st.at("bank_centroids").to(at::kDouble), cls = st.at("default_classes");
  for (int64_t r = 0; r < rows.size(0); ++r) {
    at::Tensor xr = rows[r].to(at::kDouble);
    xr = xr / xr.norm();
    at::Tensor y = at::matmul(xr - m, u);
    at::Tensor yh = at::zeros({d}, at::kDouble);
    for (int64_t j = 0; j < d; ++j) {
      const int64_t c = cls[j].item<int64_t>();
      if (c == 0) {
        CHECK(idx[r][j].item<int64_t>() == 0);
        continue;
      }
      const double v = y[j].item<double>();
      const int64_t a = std::min<int64_t>(a_max, static_cast<int64_t>(std::floor(std::abs(v) / step + 0.5 - q.options().deadzone)));
      const int64_t qv = v < 0 ? -std::max<int64_t>(a, 0) : std::max<int64_t>(a, 0);
      CHECK(idx[r][j].item<int64_t>() == qv + a_max);
      const double mag = cen[c][std::abs(qv)].item<double>() * step;
      yh[j] = qv < 0 ? -mag : mag;
    }
    at::Tensor ref = m + at::matmul(u, yh);
    ref = ref / ref.norm();
    CHECK(at::allclose(got[r].to(at::kDouble), ref, 1e-5, 1e-5));
  }
}

TEST_CASE("adaptive_klt: a planned stream meets its rate, counted from its bytes and tables", "[adaptive_klt]") {
  const int64_t d = 16;
  std::vector<double> var_train(d), var_stream(d);
  for (int64_t j = 0; j < d; ++j) {
    var_train[j] = 0.02 * std::pow(0.7, j);
    var_stream[j] = 0.02 * std::pow(0.7, d - 1 - j);  // the stream's variance sits where training's is small
  }
  at::Tensor train = structured_rows(4000, d, var_train, 0.0, 4);
  for (double bits : {24.0, 48.0}) {
    AdaptiveKLT q(d, small_options(bits));
    q.fit(train);
    at::Tensor stream = structured_rows(1500, d, var_stream, 0.4, 5);
    auto side = q.plan_stream(stream);
    at::Tensor idx = q.encode(stream, *side);
    REQUIRE(idx.size(1) == side->slots);
    // Rate: side-information bytes + -log2 p of every index under the slot's table.
    double code = 0;
    for (int64_t j = 0; j < side->slots; ++j) {
      const auto& counts = side->slot_counts[static_cast<size_t>(j)];
      double total = 0;
      for (uint64_t c : counts) total += static_cast<double>(c);
      for (int64_t r = 0; r < idx.size(0); ++r) {
        const int64_t v = idx[r][j].item<int64_t>();
        REQUIRE(v < side->alphabet_sizes[static_cast<size_t>(j)]);
        code += -std::log2(static_cast<double>(counts[static_cast<size_t>(v)]) / total);
      }
    }
    const double rate = (8.0 * static_cast<double>(side->bytes.size()) + code) / static_cast<double>(stream.size(0));
    CHECK(rate <= bits * 1.0001);
    CHECK(rate >= bits * 0.97);
    // The stream's own directions beat the training basis at the same rate.
    at::Tensor xs = stream / stream.norm(2, {1}, true);
    const double mse_stream = (q.decode(idx, *side) - xs).pow(2).sum(1).mean().item<double>();
    at::Tensor didx = q.encode(stream);
    const double mse_default = (q.decode(didx) - xs).pow(2).sum(1).mean().item<double>();
    CHECK(mse_stream < mse_default);
  }
}

TEST_CASE("adaptive_klt: side information parses back to the same context", "[adaptive_klt]") {
  const int64_t d = 12;
  std::vector<double> var(d);
  for (int64_t j = 0; j < d; ++j) var[j] = 0.03 * std::pow(0.75, j);
  AdaptiveKLT q(d, small_options(40));
  q.fit(structured_rows(3000, d, var, 0.0, 6));
  at::Tensor stream = structured_rows(800, d, var, 0.3, 7);
  auto side = q.plan_stream(stream);
  auto back = q.read_side_info(side->bytes.data(), side->bytes.size());
  CHECK(back->bytes == side->bytes);
  CHECK(back->slots == side->slots);
  CHECK(back->alphabet_sizes == side->alphabet_sizes);
  CHECK(back->slot_counts == side->slot_counts);
  at::Tensor idx = q.encode(stream, *side);
  // The decoder's basis is built from the bytes alone: identical reconstructions.
  CHECK(at::equal(q.decode(idx, *side), q.decode(idx, *back)));
}

TEST_CASE("adaptive_klt: malformed side information is refused", "[adaptive_klt]") {
  const int64_t d = 10;
  std::vector<double> var(d);
  for (int64_t j = 0; j < d; ++j) var[j] = 0.03 * std::pow(0.7, j);
  AdaptiveKLT q(d, small_options(40));
  q.fit(structured_rows(3000, d, var, 0.0, 8));
  auto side = q.plan_stream(structured_rows(600, d, var, 0.2, 9));
  const std::vector<uint8_t>& good = side->bytes;
  auto refuse = [&](std::vector<uint8_t> b, const char* what) {
    CHECK_THROWS_WITH(q.read_side_info(b.data(), b.size()), Catch::Contains(what));
  };
  std::vector<uint8_t> b = good;
  b[0] = 9;
  refuse(b, "version");
  b = good;
  b.resize(b.size() - 1);
  refuse(b, "adaptive_klt side information");
  b = good;
  b.push_back(0);
  refuse(b, "trailing");
  b = good;
  b[5] = 0xff, b[6] = 0xff;  // 65535 stream directions for D = 10
  refuse(b, "stream directions");
  b = good;
  const float nan = std::nanf("");
  std::memcpy(b.data() + 1, &nan, 4);
  refuse(b, "step");
  CHECK_THROWS_WITH(q.read_side_info(good.data(), 3), Catch::Contains("at least 7"));
}

TEST_CASE("adaptive_klt: the state round-trips and bad states are refused", "[adaptive_klt]") {
  const int64_t d = 6;
  const std::vector<double> var = {0.05, 0.03, 0.02, 0.01, 0.004, 0.002};
  AdaptiveKLT q(d, small_options(20));
  q.fit(structured_rows(2000, d, var, 0.1, 10));
  AdaptiveKLT r(d, small_options(20));
  r.load_state(q.state(), "test");
  at::Tensor rows = structured_rows(50, d, var, 0.1, 11);
  CHECK(at::equal(q.encode(rows), r.encode(rows)));
  CHECK(at::equal(q.decode(q.encode(rows)), r.decode(r.encode(rows))));
  auto st = q.state();
  st.at("bank_counts") = st.at("bank_counts").clone();
  st.at("bank_counts")[3][0] = 0;
  AdaptiveKLT bad(d, small_options(20));
  CHECK_THROWS_WITH(bad.load_state(st, "ckpt.safetensors"), Catch::Contains("bank_counts"));
  st = q.state();
  st.erase("basis");
  CHECK_THROWS_WITH(bad.load_state(st, "ckpt.safetensors"), Catch::Contains("ckpt.safetensors"));
}
