#include "models/quantizers/adaptive_klt.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "codec/entropy/bit_io.h"
#include "models/method_registry.h"
#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

// One stream's decoding context (the default context is one too). Everything
// a decoder needs is derived from the side-information bytes alone.
struct AdaptiveKLT::Context : StreamSideInfo {
  double step = 0;
  bool has_mean = false;
  std::vector<int64_t> mean_offset;              // D, in kMeanStep units from m0
  at::Tensor mean;                               // [D] float32: m0 + offset * kMeanStep
  std::vector<int> basis_exponent;               // per stream direction: its step 2^((e - 192) / 8)
  std::vector<std::vector<int64_t>> basis_code;  // per stream direction: D integers
  at::Tensor stream_basis;                       // [D, k] float32, orthonormal columns
  std::vector<uint8_t> complement_mask;          // per training direction: used for the complement (k > 0)
  at::Tensor complement;                         // [D, D - k] float32: the training directions kept, made
                                                 // orthogonal to the stream's and to each other
  std::vector<int> classes;                      // per slot (k + D)
  double basis_precision = 0;                    // the encoder's beta (not sent)
  int64_t k() const { return static_cast<int64_t>(basis_code.size()); }
};

namespace {

constexpr int kBasisExponentOffset = 192;
constexpr int kBasisExponentScale = 8;

double basis_step(int exponent) {
  return std::exp2(static_cast<double>(exponent - kBasisExponentOffset) / kBasisExponentScale);
}

int basis_exponent_for(double step) {
  const double e = std::round(kBasisExponentScale * std::log2(step)) + kBasisExponentOffset;
  return static_cast<int>(std::clamp(e, 0.0, 255.0));
}

// The Rice parameter that codes `values` in the fewest bits, and that count.
std::pair<int, int64_t> best_rice(const std::vector<int64_t>& values) {
  int best_r = 0;
  int64_t best = std::numeric_limits<int64_t>::max();
  for (int r = 0; r <= kMaxRiceParameter; ++r) {
    int64_t bits = 0;
    for (int64_t v : values) bits += rice_bits(v, r);
    if (bits < best) best = bits, best_r = r;
  }
  return {best_r, best};
}

// Deterministic modified Gram-Schmidt, applied twice, in double with a fixed
// summation order: encoder and decoder run exactly these operations on the
// same integers, so they agree on the basis (IEEE-754 +, *, /, sqrt are
// correctly rounded; the file is compiled without floating-point contraction).
// Directions are added one at a time, so the encoder can stop at the first one
// that is (nearly) a combination of those before it.
class Orthonormalizer {
 public:
  explicit Orthonormalizer(int64_t d) : d_(d) {}
  // Adds a direction; false (and nothing added) when less than `min_residual`
  // of its squared norm is left once made orthogonal to the directions before it.
  bool add(std::vector<double> v, double min_residual = 1e-6) {
    double n0 = 0;
    for (double x : v) n0 += x * x;
    for (int pass = 0; pass < 2; ++pass)
      for (const std::vector<double>& ui : u_) {
        double dot = 0;
        for (int64_t t = 0; t < d_; ++t) dot += ui[static_cast<size_t>(t)] * v[static_cast<size_t>(t)];
        for (int64_t t = 0; t < d_; ++t) v[static_cast<size_t>(t)] -= dot * ui[static_cast<size_t>(t)];
      }
    double n = 0;
    for (double x : v) n += x * x;
    if (!(n0 > 0 && n > min_residual * n0)) return false;
    const double inv = 1.0 / std::sqrt(n);
    for (double& x : v) x *= inv;
    u_.push_back(std::move(v));
    return true;
  }
  int64_t size() const { return static_cast<int64_t>(u_.size()); }
  // Directions [from, size()) as [D, size() - from] float32 columns.
  at::Tensor columns(int64_t from = 0) const {
    const int64_t k = size() - from;
    at::Tensor out = at::empty({d_, k}, at::kDouble);
    double* p = out.data_ptr<double>();
    for (int64_t t = 0; t < d_; ++t)
      for (int64_t j = 0; j < k; ++j) p[t * k + j] = u_[static_cast<size_t>(from + j)][static_cast<size_t>(t)];
    return out.to(at::kFloat);
  }

 private:
  int64_t d_;
  std::vector<std::vector<double>> u_;
};

// A training direction joins the complement when at least this share of it is
// orthogonal to the directions already chosen (the encoder's choice, sent as a
// mask; the decoder only rebuilds what the mask says).
constexpr double kComplementMinResidual = 0.05;

std::vector<double> column_of(const at::Tensor& basis, int64_t i) {
  at::Tensor c = basis.select(1, i).to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// The complement the mask names: the masked training directions, in order,
// made orthogonal to the stream's directions (already in `stream`) and to each
// other. Encoder and decoder both build it here.
at::Tensor complement_basis(Orthonormalizer stream, const at::Tensor& training_basis,
                            const std::vector<uint8_t>& mask, const char* what) {
  const int64_t k = stream.size();
  for (size_t i = 0; i < mask.size(); ++i)
    if (mask[i])
      require(stream.add(column_of(training_basis, static_cast<int64_t>(i))),
              "{}: training direction {} of the complement lies in the span of the others", what, i);
  return stream.columns(k);
}

// A stream's coefficients, each slot's magnitudes sorted apart by sign, so
// that the symbol counts of a slot at any step come from a few binary searches
// per symbol instead of a pass over the rows: the rate search of plan_stream
// evaluates some 30 steps per basis. Counts equal quantize()'s exactly: its
// magnitude floor(|v| / step + 1/2 - deadzone) is monotone in |v|.
class SortedCoefficients {
 public:
  explicit SortedCoefficients(const at::Tensor& y_in) {
    const at::Tensor y = y_in.to(at::kFloat).contiguous();
    const int64_t n = y.size(0), s = y.size(1);
    const float* py = y.data_ptr<float>();
    pos_.resize(static_cast<size_t>(s));
    neg_.resize(static_cast<size_t>(s));
    for (int64_t j = 0; j < s; ++j) {
      auto& p = pos_[static_cast<size_t>(j)];
      auto& q = neg_[static_cast<size_t>(j)];
      for (int64_t r = 0; r < n; ++r) {
        const float v = py[r * s + j];
        if (v < 0) q.push_back(-v); else p.push_back(v);
      }
      std::sort(p.begin(), p.end());
      std::sort(q.begin(), q.end());
    }
  }

  // counts[a_max + a] (positive a), counts[a_max - a] (negative), a in [0, a_max].
  void symbol_counts(int64_t slot, double inv, double off, int64_t a_max, std::vector<int64_t>& counts) const {
    counts.assign(static_cast<size_t>(2 * a_max + 1), 0);
    side(pos_[static_cast<size_t>(slot)], inv, off, a_max, counts, +1);
    side(neg_[static_cast<size_t>(slot)], inv, off, a_max, counts, -1);
  }

 private:
  static void side(const std::vector<float>& mags, double inv, double off, int64_t a_max, std::vector<int64_t>& counts,
                   int sign) {
    const int64_t total = static_cast<int64_t>(mags.size());
    int64_t below = 0;  // values whose magnitude symbol is < a
    for (int64_t a = 1; a <= a_max && below < total; ++a) {
      const auto first = std::partition_point(mags.begin() + below, mags.end(), [&](float v) {
        return std::floor(static_cast<double>(v) * inv + off) < static_cast<double>(a);
      });
      const int64_t at_least = static_cast<int64_t>(first - mags.begin());
      counts[static_cast<size_t>(a_max + sign * (a - 1))] += at_least - below;
      below = at_least;
    }
    counts[static_cast<size_t>(below < total ? a_max + sign * a_max : a_max)] += total - below;
  }

  std::vector<std::vector<float>> pos_, neg_;
};

void put_f32(std::vector<uint8_t>& out, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(u >> (8 * i)));
}

float get_f32(const uint8_t* p) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u |= uint32_t(p[i]) << (8 * i);
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

std::vector<double> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

AdaptiveKLT::AdaptiveKLT(int64_t embed_dim, AdaptiveKLTOptions options)
    : embed_dim_(embed_dim), options_(std::move(options)) {
  require(embed_dim_ >= 2, "adaptive_klt: embedding dimension {} < 2", embed_dim_);
  require(options_.target_bits > 0, "adaptive_klt: klt_target_bits must be > 0, got {}", options_.target_bits);
  require(options_.deadzone >= 0 && options_.deadzone < 0.5, "adaptive_klt: klt_deadzone {} outside [0, 0.5)",
          options_.deadzone);
  require(options_.max_symbol >= 1 && options_.max_symbol <= 32767,
          "adaptive_klt: klt_max_symbol {} outside [1, 32767]", options_.max_symbol);
  require(options_.max_stream_directions >= 0, "adaptive_klt: klt_max_stream_directions {} < 0",
          options_.max_stream_directions);
  require(options_.fit_rows >= 1, "adaptive_klt: klt_fit_rows must be >= 1");
  basis_precisions_ = parse_basis_precisions(options_.basis_precisions, "adaptive_klt");
}

std::vector<double> parse_basis_precisions(const std::string& text, const std::string& source) {
  std::vector<double> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    require(!item.empty() && end == item.c_str() + item.size() && std::isfinite(v) && v > 0 && v <= 64,
            "{}: model.klt_basis_precisions: '{}' is not a number in (0, 64] (expected e.g. \"0.5,1,2\")", source,
            item);
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

int AdaptiveKLT::table_class(double sigma, double step) {
  if (!(sigma > 0) || !(step > 0)) return 0;
  const double v = std::floor(kClassesPerOctave * std::log2(sigma / step) + kClassOffset + 0.5);
  if (v < 1) return 0;
  return static_cast<int>(std::min<double>(v, kClasses - 1));
}

int64_t AdaptiveKLT::alphabet_size(int64_t slot) const {
  require(is_trained(), "adaptive_klt: not fitted");
  require(slot >= 0 && slot < embed_dim_, "adaptive_klt: slot {} out of range", slot);
  return default_context_->alphabet_sizes[static_cast<size_t>(slot)];
}

// ---------------------------------------------------------------- fitting

void AdaptiveKLT::fit(const at::Tensor& x_in) {
  const int64_t d = embed_dim_;
  at::Tensor x = unit_rows_cpu(x_in, d, "adaptive_klt fit").to(at::kDouble);
  const int64_t n = x.size(0);
  require(n >= 2, "adaptive_klt fit: needs at least 2 training rows, got {}", n);
  at::Tensor m0 = x.mean(0);
  at::Tensor xc = x - m0;
  at::Tensor cov = at::matmul(xc.t(), xc) / static_cast<double>(n);
  auto [evals, evecs] = at::linalg_eigh(cov);
  evals = evals.flip(0).clamp_min(0);
  evecs = evecs.flip(1);
  // Sign convention: each direction's largest entry is positive (LAPACKs differ).
  at::Tensor idx = evecs.abs().argmax(0);
  at::Tensor signs = evecs.gather(0, idx.unsqueeze(0)).sign().squeeze(0);
  signs = at::where(signs == 0, at::ones_like(signs), signs);
  evecs = evecs * signs.unsqueeze(0);

  // The table bank: coefficients of (a stride of) the training rows, quantized at
  // steps that sweep every component through every class.
  const int64_t stride = std::max<int64_t>(1, n / options_.fit_rows);
  at::Tensor sample = xc.slice(0, 0, n, stride);
  // Component-major |y| / 1: each component's values contiguous for the sweep below.
  at::Tensor y = at::matmul(sample, evecs).abs().t().contiguous();  // [D, Ns] double
  const int64_t ns = y.size(1);
  std::vector<double> sigma = to_vector(evals.sqrt());
  double sigma_max = 0;
  for (double s : sigma) sigma_max = std::max(sigma_max, s);
  require(sigma_max > 0, "adaptive_klt fit: the training rows are all the same vector");
  const double sigma_min = std::max(*std::min_element(sigma.begin(), sigma.end()), sigma_max * 1e-4);
  const int64_t a_max = options_.max_symbol, alpha = alphabet();
  std::vector<std::vector<double>> counts(kClasses, std::vector<double>(static_cast<size_t>(alpha), 0.0));
  std::vector<std::vector<double>> cen_sum(kClasses, std::vector<double>(static_cast<size_t>(a_max + 1), 0.0));
  std::vector<std::vector<double>> cen_n(kClasses, std::vector<double>(static_cast<size_t>(a_max + 1), 0.0));
  const double lo = std::log2(sigma_min) - double(kClasses - 1 - kClassOffset) / kClassesPerOctave - 0.5;
  const double hi = std::log2(sigma_max) + double(kClassOffset - 1) / kClassesPerOctave + 0.5;
  const double* py = y.data_ptr<double>();
  const double theta = options_.deadzone;
  for (double e = lo; e <= hi; e += 1.0 / kClassesPerOctave) {
    const double step = std::exp2(e);
    for (int64_t i = 0; i < d; ++i) {
      const int c = table_class(sigma[static_cast<size_t>(i)], step);
      if (c == 0) continue;
      std::vector<double>& h = counts[static_cast<size_t>(c)];
      std::vector<double>& cs = cen_sum[static_cast<size_t>(c)];
      std::vector<double>& cn = cen_n[static_cast<size_t>(c)];
      const double inv = 1.0 / step;
      for (int64_t r = 0; r < ns; ++r) {
        const double v = py[i * ns + r] * inv;
        const int64_t a = std::min<int64_t>(a_max, static_cast<int64_t>(std::max(0.0, std::floor(v + 0.5 - theta))));
        // Symmetric tables: each value counts half for +a and half for -a.
        h[static_cast<size_t>(a_max + a)] += 0.5;
        h[static_cast<size_t>(a_max - a)] += 0.5;
        cs[static_cast<size_t>(a)] += v;
        cn[static_cast<size_t>(a)] += 1;
      }
    }
  }
  std::vector<int64_t> bank_counts(static_cast<size_t>(kClasses * alpha));
  std::vector<float> bank_centroids(static_cast<size_t>(kClasses * (a_max + 1)));
  for (int c = 0; c < kClasses; ++c) {
    double total = 0;
    for (double v : counts[static_cast<size_t>(c)]) total += v + 1;
    // Integer counts (+1 smoothing) with a total below 2^40.
    const double scale = total > 1e12 ? 1e12 / total : 1.0;
    for (int64_t s = 0; s < alpha; ++s)
      bank_counts[static_cast<size_t>(c * alpha + s)] =
          std::max<int64_t>(1, static_cast<int64_t>(std::llround((counts[static_cast<size_t>(c)][static_cast<size_t>(s)] + 1) * scale)));
    for (int64_t a = 0; a <= a_max; ++a) {
      const double nn = cen_n[static_cast<size_t>(c)][static_cast<size_t>(a)];
      const double fallback = a == 0 ? 0.0 : static_cast<double>(a) + theta;
      bank_centroids[static_cast<size_t>(c * (a_max + 1) + a)] =
          static_cast<float>(a == 0 ? 0.0 : (nn > 0 ? cen_sum[static_cast<size_t>(c)][static_cast<size_t>(a)] / nn : fallback));
    }
  }
  mean_ = m0.to(at::kFloat).contiguous();
  basis_ = evecs.to(at::kFloat).contiguous();
  variance_ = evals.to(at::kFloat).contiguous();
  bank_counts_ = at::tensor(bank_counts, at::kLong).view({kClasses, alpha}).contiguous();
  bank_centroids_ = at::tensor(bank_centroids, at::kFloat).view({kClasses, a_max + 1}).contiguous();

  // Default step: per-item code length of the training rows equals target_bits.
  default_classes_ = at::zeros({d}, at::kLong);
  default_step_ = 1.0;
  set_derived();
  at::Tensor probe = at::matmul(sample.to(at::kFloat), basis_);
  double s_lo = std::log2(sigma_min) - 16, s_hi = std::log2(sigma_max) + 8;
  for (int it = 0; it < 40; ++it) {
    const double mid = 0.5 * (s_lo + s_hi);
    const double step = std::exp2(mid);
    std::vector<int64_t> cls(static_cast<size_t>(d));
    for (int64_t i = 0; i < d; ++i) cls[static_cast<size_t>(i)] = table_class(sigma[static_cast<size_t>(i)], step);
    default_classes_ = at::tensor(cls, at::kLong);
    default_step_ = step;
    set_derived();
    const double bits = code_bits(quantize(probe, *default_context_), *default_context_) / ns;
    if (bits > options_.target_bits) s_lo = mid; else s_hi = mid;
  }
  const double step = std::exp2(s_hi);
  std::vector<int64_t> cls(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) cls[static_cast<size_t>(i)] = table_class(sigma[static_cast<size_t>(i)], step);
  default_classes_ = at::tensor(cls, at::kLong);
  default_step_ = step;
  set_derived();
}

// Code lengths, class entropies and the default context, from the state.
void AdaptiveKLT::set_derived() {
  const int64_t alpha = alphabet();
  const int64_t* pc = bank_counts_.data_ptr<int64_t>();
  code_length_.assign(kClasses, std::vector<double>(static_cast<size_t>(alpha), 0.0));
  class_entropy_.assign(kClasses, 0.0);
  for (int c = 1; c < kClasses; ++c) {
    double total = 0;
    for (int64_t s = 0; s < alpha; ++s) total += static_cast<double>(pc[c * alpha + s]);
    double h = 0;
    for (int64_t s = 0; s < alpha; ++s) {
      const double p = static_cast<double>(pc[c * alpha + s]) / total;
      code_length_[static_cast<size_t>(c)][static_cast<size_t>(s)] = -std::log2(p);
      h -= p * std::log2(p);
    }
    class_entropy_[static_cast<size_t>(c)] = h;
  }
  auto ctx = std::make_shared<Context>();
  ctx->step = default_step_;
  ctx->mean = mean_;
  ctx->stream_basis = at::zeros({embed_dim_, 0}, at::kFloat);
  ctx->complement = basis_;
  const int64_t* dc = default_classes_.data_ptr<int64_t>();
  ctx->classes.assign(dc, dc + default_classes_.numel());
  ctx->slots = embed_dim_;
  for (int c : ctx->classes) {
    ctx->alphabet_sizes.push_back(c == 0 ? 1 : alpha);
    if (c == 0)
      ctx->slot_counts.push_back({1});
    else
      ctx->slot_counts.emplace_back(pc + c * alpha, pc + (c + 1) * alpha);
  }
  default_context_ = std::move(ctx);
}

// ---------------------------------------------------------------- coding

at::Tensor AdaptiveKLT::coefficients(const at::Tensor& x, const Context& ctx) const {
  at::Tensor xc = x - ctx.mean;
  if (ctx.k() == 0) return at::matmul(xc, ctx.complement);
  return at::matmul(xc, at::cat({ctx.stream_basis, ctx.complement}, 1)).contiguous();
}

at::Tensor AdaptiveKLT::quantize(const at::Tensor& y_in, const Context& ctx) const {
  at::Tensor y = y_in.to(at::kFloat).contiguous();
  const int64_t n = y.size(0), s = y.size(1);
  at::Tensor out = at::empty({n, s}, at::kLong);
  const float* py = y.data_ptr<float>();
  int64_t* po = out.data_ptr<int64_t>();
  const double inv = 1.0 / ctx.step, off = 0.5 - options_.deadzone;
  const int64_t a_max = options_.max_symbol;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < s; ++j) {
      if (ctx.classes[static_cast<size_t>(j)] == 0) {
        po[r * s + j] = 0;
        continue;
      }
      const double v = static_cast<double>(py[r * s + j]);
      const int64_t a = std::min<int64_t>(a_max, static_cast<int64_t>(std::max(0.0, std::floor(std::abs(v) * inv + off))));
      po[r * s + j] = a_max + (v < 0 ? -a : a);
    }
  return out;
}

at::Tensor AdaptiveKLT::reconstruct(const at::Tensor& indices, const Context& ctx) const {
  const int64_t n = indices.size(0), s = ctx.slots, a_max = options_.max_symbol;
  at::Tensor idx = indices.to(at::kLong).contiguous();
  const int64_t* pi = idx.data_ptr<int64_t>();
  at::Tensor yh = at::empty({n, s}, at::kFloat);
  float* py = yh.data_ptr<float>();
  const float* cen = bank_centroids_.data_ptr<float>();
  const float step = static_cast<float>(ctx.step);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < s; ++j) {
      const int c = ctx.classes[static_cast<size_t>(j)];
      if (c == 0) {
        py[r * s + j] = 0;
        continue;
      }
      const int64_t q = pi[r * s + j] - a_max;
      const float mag = cen[c * (a_max + 1) + std::abs(q)] * step;
      py[r * s + j] = q < 0 ? -mag : mag;
    }
  at::Tensor x = ctx.k() == 0 ? at::matmul(yh, ctx.complement.t())
                              : at::matmul(yh, at::cat({ctx.stream_basis, ctx.complement}, 1).t());
  x = x + ctx.mean;
  return (x / x.norm(2, {1}, true).clamp_min(1e-12)).contiguous();
}

double AdaptiveKLT::code_bits(const at::Tensor& indices, const Context& ctx) const {
  const int64_t n = indices.size(0), s = indices.size(1);
  const int64_t* pi = indices.data_ptr<int64_t>();
  double bits = 0;
  for (int64_t j = 0; j < s; ++j) {
    const int c = ctx.classes[static_cast<size_t>(j)];
    if (c == 0) continue;
    const std::vector<double>& len = code_length_[static_cast<size_t>(c)];
    for (int64_t r = 0; r < n; ++r) bits += len[static_cast<size_t>(pi[r * s + j])];
  }
  return bits;
}

at::Tensor AdaptiveKLT::encode(const at::Tensor& x_in) {
  require(is_trained(), "adaptive_klt: encode before fit");
  at::Tensor x = unit_rows_cpu(x_in, embed_dim_, "adaptive_klt encode");
  return quantize(coefficients(x, *default_context_), *default_context_);
}

at::Tensor AdaptiveKLT::decode(const at::Tensor& indices) {
  require(is_trained(), "adaptive_klt: decode before fit");
  return decode(indices, *default_context_);  // packets: the default context, same checks
}

const StreamSideInfo& AdaptiveKLT::packet_context() const {
  require(is_trained(), "adaptive_klt: no packet tables before fit");
  return *default_context_;
}

const AdaptiveKLT::Context& AdaptiveKLT::context_of(const StreamSideInfo& side) const {
  const auto* ctx = dynamic_cast<const Context*>(&side);
  require(ctx != nullptr, "adaptive_klt: side information made by another method");
  require(ctx->mean.defined() && ctx->mean.numel() == embed_dim_,
          "adaptive_klt: side information for another embedding dimension");
  return *ctx;
}

at::Tensor AdaptiveKLT::encode(const at::Tensor& x_in, const StreamSideInfo& side) {
  require(is_trained(), "adaptive_klt: encode before fit");
  const Context& ctx = context_of(side);
  at::Tensor x = unit_rows_cpu(x_in, embed_dim_, "adaptive_klt encode");
  return quantize(coefficients(x, ctx), ctx);
}

at::Tensor AdaptiveKLT::decode(const at::Tensor& indices, const StreamSideInfo& side) {
  require(is_trained(), "adaptive_klt: decode before fit");
  const Context& ctx = context_of(side);
  at::Tensor idx = checked_indices_cpu(indices, ctx.slots, alphabet(), "adaptive_klt decode");
  const int64_t* pi = idx.data_ptr<int64_t>();
  for (int64_t r = 0; r < idx.size(0); ++r)
    for (int64_t j = 0; j < ctx.slots; ++j)
      require(pi[r * ctx.slots + j] < ctx.alphabet_sizes[static_cast<size_t>(j)],
              "adaptive_klt decode: index {} of slot {} outside its alphabet of {}", pi[r * ctx.slots + j], j,
              ctx.alphabet_sizes[static_cast<size_t>(j)]);
  return reconstruct(idx, ctx);
}

// ---------------------------------------------------------------- side information

// Layout (docs/adaptive_klt.md): version (u8), step (f32 LE), k (u16 LE), then
// MSB-first bits: mean flag; [Rice parameter (5), D mean offsets]; per stream
// direction: exponent (8), Rice parameter (5), D integers; when k > 0 the
// complement mask (D bits, D - k of them set); classes: first (6), Rice
// parameter (5), the other D - 1 as differences; zero padding.
std::vector<uint8_t> AdaptiveKLT::write_side_info(const Context& ctx) const {
  std::vector<uint8_t> out;
  out.push_back(static_cast<uint8_t>(kSideInfoVersion));
  put_f32(out, static_cast<float>(ctx.step));
  const int64_t k = ctx.k();
  out.push_back(static_cast<uint8_t>(k & 255));
  out.push_back(static_cast<uint8_t>(k >> 8));
  detail::BitWriter bits(out);
  bits.put(ctx.has_mean ? 1 : 0, 1);
  if (ctx.has_mean) {
    const int r = best_rice(ctx.mean_offset).first;
    bits.put(static_cast<uint32_t>(r), 5);
    for (int64_t v : ctx.mean_offset) put_rice(bits, v, r);
  }
  for (int64_t j = 0; j < k; ++j) {
    const std::vector<int64_t>& code = ctx.basis_code[static_cast<size_t>(j)];
    const int r = best_rice(code).first;
    bits.put(static_cast<uint32_t>(ctx.basis_exponent[static_cast<size_t>(j)]), 8);
    bits.put(static_cast<uint32_t>(r), 5);
    for (int64_t v : code) put_rice(bits, v, r);
  }
  if (k > 0)
    for (uint8_t m : ctx.complement_mask) bits.put(m, 1);
  std::vector<int64_t> diffs;
  for (size_t j = 1; j < ctx.classes.size(); ++j) diffs.push_back(ctx.classes[j] - ctx.classes[j - 1]);
  const int r = best_rice(diffs).first;
  bits.put(static_cast<uint32_t>(ctx.classes.empty() ? 0 : ctx.classes[0]), 6);
  bits.put(static_cast<uint32_t>(r), 5);
  for (int64_t v : diffs) put_rice(bits, v, r);
  bits.flush();
  return out;
}

std::shared_ptr<StreamSideInfo> AdaptiveKLT::finish_side_info(std::shared_ptr<Context> ctx) const {
  const int64_t alpha = alphabet();
  const int64_t* pc = bank_counts_.data_ptr<int64_t>();
  ctx->slots = static_cast<int64_t>(ctx->classes.size());
  ctx->alphabet_sizes.clear();
  ctx->slot_counts.clear();
  for (int c : ctx->classes) {
    if (c == 0) {
      ctx->alphabet_sizes.push_back(1);
      ctx->slot_counts.push_back({1});
    } else {
      ctx->alphabet_sizes.push_back(alpha);
      ctx->slot_counts.emplace_back(pc + c * alpha, pc + (c + 1) * alpha);
    }
  }
  ctx->bytes = write_side_info(*ctx);
  return ctx;
}

std::shared_ptr<const StreamSideInfo> AdaptiveKLT::read_side_info(const uint8_t* data, size_t size) {
  require(is_trained(), "adaptive_klt: not fitted");
  const char* what = "adaptive_klt side information";
  const int64_t d = embed_dim_;
  require(size >= 7, "{}: {} bytes, needs at least 7", what, size);
  require(data[0] == kSideInfoVersion, "{}: version {} (this build reads {})", what, int(data[0]), kSideInfoVersion);
  auto ctx = std::make_shared<Context>();
  const float step = get_f32(data + 1);
  require(std::isfinite(step) && step >= 1e-9f && step <= 1e3f, "{}: step {} outside [1e-9, 1e3]", what, step);
  ctx->step = step;
  const int64_t k = int64_t(data[5]) | (int64_t(data[6]) << 8);
  require(k <= d, "{}: {} stream directions for D = {}", what, k, d);
  detail::BitReader bits(data + 7, size - 7);
  // Reads past the end return zeros; every loop below is bounded, and this
  // check after each section turns an overrun into an error.
  const uint64_t total_bits = 8 * static_cast<uint64_t>(size - 7);
  auto check = [&](const char* section) { require(!bits.overrun(), "{}: truncated in {}", what, section); };
  ctx->has_mean = bits.get(1) == 1;
  ctx->mean_offset.assign(static_cast<size_t>(d), 0);
  if (ctx->has_mean) {
    const int r = static_cast<int>(bits.get(5));
    require(r <= kMaxRiceParameter, "{}: Rice parameter {} > {}", what, r, kMaxRiceParameter);
    for (int64_t& v : ctx->mean_offset) {
      v = get_rice(bits, r);
      require(std::abs(v) <= 4096, "{}: mean offset {} outside [-4096, 4096]", what, v);
    }
    check("the mean");
  }
  Orthonormalizer ortho(d);
  for (int64_t j = 0; j < k; ++j) {
    // Each direction needs at least 13 + D bits: checked before allocating it.
    require(bits.position() + 13 + static_cast<uint64_t>(d) <= total_bits, "{}: truncated in stream direction {}",
            what, j);
    const int e = static_cast<int>(bits.get(8));
    const int r = static_cast<int>(bits.get(5));
    require(r <= kMaxRiceParameter, "{}: Rice parameter {} > {}", what, r, kMaxRiceParameter);
    std::vector<int64_t> code(static_cast<size_t>(d));
    for (int64_t& v : code) {
      v = get_rice(bits, r);
      require(std::abs(v) <= (int64_t(1) << 24), "{}: basis value {} out of range", what, v);
    }
    check("a stream direction");
    const double s = basis_step(e);
    std::vector<double> col(static_cast<size_t>(d));
    for (int64_t t = 0; t < d; ++t) col[static_cast<size_t>(t)] = static_cast<double>(code[static_cast<size_t>(t)]) * s;
    require(ortho.add(std::move(col)), "{}: stream direction {} is (nearly) a combination of the ones before it",
            what, j);
    ctx->basis_exponent.push_back(e);
    ctx->basis_code.push_back(std::move(code));
  }
  if (k > 0) {
    ctx->complement_mask.resize(static_cast<size_t>(d));
    int64_t kept = 0;
    for (uint8_t& m : ctx->complement_mask) kept += (m = static_cast<uint8_t>(bits.get(1)));
    check("the complement mask");
    require(kept == d - k, "{}: the complement mask keeps {} training directions, {} needed", what, kept, d - k);
  }
  const int64_t slots = d;
  ctx->classes.assign(static_cast<size_t>(slots), 0);
  int c = static_cast<int>(bits.get(6));
  const int r = static_cast<int>(bits.get(5));
  require(r <= kMaxRiceParameter, "{}: Rice parameter {} > {}", what, r, kMaxRiceParameter);
  for (int64_t j = 0; j < slots; ++j) {
    if (j > 0) {
      const int64_t diff = get_rice(bits, r);
      require(std::abs(diff) < kClasses, "{}: class step {} at slot {}", what, diff, j);
      c += static_cast<int>(diff);
    }
    require(c >= 0 && c < kClasses, "{}: class {} of slot {} outside [0, {})", what, c, j, kClasses);
    ctx->classes[static_cast<size_t>(j)] = c;
  }
  bits.finish(what);
  ctx->stream_basis = ortho.columns();
  ctx->complement = k == 0 ? basis_ : complement_basis(ortho, basis_, ctx->complement_mask, what);
  at::Tensor off = at::tensor(ctx->mean_offset, at::kLong).to(at::kDouble);
  ctx->mean = (mean_.to(at::kDouble) + off * kMeanStep).to(at::kFloat).contiguous();
  auto side = finish_side_info(ctx);
  require(side->bytes.size() == size && std::equal(side->bytes.begin(), side->bytes.end(), data),
          "{}: not in canonical form", what);
  return side;
}

// ---------------------------------------------------------------- rate control

std::shared_ptr<const StreamSideInfo> AdaptiveKLT::plan_stream(const at::Tensor& x_in) {
  require(is_trained(), "adaptive_klt: plan_stream before fit");
  const int64_t d = embed_dim_;
  at::Tensor x = unit_rows_cpu(x_in, d, "adaptive_klt plan_stream");
  const int64_t n = x.size(0);
  const double target = options_.target_bits;

  // The stream's mean, as the decoder will see it.
  auto base = std::make_shared<Context>();
  base->has_mean = n > 0 && options_.stream_mean;
  base->mean_offset.assign(static_cast<size_t>(d), 0);
  at::Tensor xd = x.to(at::kDouble);
  if (base->has_mean) {
    std::vector<double> off = to_vector(((xd.mean(0) - mean_.to(at::kDouble)) / kMeanStep).round().clamp(-4096, 4096));
    for (int64_t i = 0; i < d; ++i) base->mean_offset[static_cast<size_t>(i)] = static_cast<int64_t>(off[static_cast<size_t>(i)]);
  }
  base->mean = (mean_.to(at::kDouble) +
                at::tensor(base->mean_offset, at::kLong).to(at::kDouble) * kMeanStep).to(at::kFloat).contiguous();
  if (n == 0) {
    base->step = default_step_;
    base->classes.assign(static_cast<size_t>(d), 0);
    base->stream_basis = at::zeros({d, 0}, at::kFloat);
    base->complement = basis_;
    return finish_side_info(base);
  }

  // The stream's principal directions and their weight in the training basis.
  at::Tensor xc = xd - base->mean.to(at::kDouble);
  at::Tensor cov = at::matmul(xc.t(), xc) / static_cast<double>(n);
  auto [evals_t, evecs_t] = at::linalg_eigh(cov);
  std::vector<double> lambda = to_vector(evals_t.flip(0).clamp_min(0));
  at::Tensor evecs = evecs_t.flip(1).contiguous();
  at::Tensor u0 = basis_.to(at::kDouble);
  std::vector<double> diag0 = to_vector(at::matmul(u0.t(), at::matmul(cov, u0)).diagonal());  // residual spread, k = 0
  at::Tensor w2 = at::matmul(u0.t(), evecs).pow(2).contiguous();                                  // [D (train), D (stream)]
  const double* pw = w2.data_ptr<double>();
  const int64_t k_limit = std::min<int64_t>({options_.max_stream_directions, d, n - 1});
  // mean bits are fixed: count them once.
  std::shared_ptr<Context> mean_only = std::make_shared<Context>(*base);
  mean_only->classes.assign(static_cast<size_t>(d), 0);
  const double mean_bits = 8.0 * static_cast<double>(write_side_info(*mean_only).size());
  const double sigma_u = 1.0 / std::sqrt(static_cast<double>(d));

  // Fast estimate of the rate at (beta, step): model-based, no pass over the rows.
  auto estimate = [&](double beta, double step, int64_t* k_out) {
    int64_t k = 0;
    double basis_bits = 0;
    while (k < k_limit && lambda[static_cast<size_t>(k)] > 0) {
      const double s = beta * step / std::sqrt(lambda[static_cast<size_t>(k)] * static_cast<double>(d));
      if (s > 2 * sigma_u) break;
      basis_bits += 13 + static_cast<double>(d) * std::max(1.0, std::log2(sigma_u / s) + 2.05);
      ++k;
    }
    double code = 0;
    for (int64_t j = 0; j < k; ++j) code += class_entropy_[static_cast<size_t>(table_class(std::sqrt(lambda[static_cast<size_t>(j)]), step))];
    // The complement holds D - k directions: count the D - k largest residual spreads.
    std::vector<double> spread(static_cast<size_t>(d));
    for (int64_t i = 0; i < d; ++i) {
      double v = diag0[static_cast<size_t>(i)];
      for (int64_t j = 0; j < k; ++j) v -= lambda[static_cast<size_t>(j)] * pw[i * d + j];
      spread[static_cast<size_t>(i)] = std::max(v, 0.0);
    }
    std::nth_element(spread.begin(), spread.begin() + k, spread.end());
    for (int64_t i = k; i < d; ++i) code += class_entropy_[static_cast<size_t>(table_class(std::sqrt(spread[static_cast<size_t>(i)]), step))];
    *k_out = k;
    return (mean_bits + basis_bits + (k > 0 ? d : 0) + 3.0 * static_cast<double>(d)) / static_cast<double>(n) + code;
  };

  std::shared_ptr<Context> best;
  double best_mse = std::numeric_limits<double>::infinity();
  const double log_lo = std::log2(1e-7), log_hi = std::log2(10.0);
  for (double beta : basis_precisions_) {
    double lo = log_lo, hi = log_hi;
    int64_t k = 0;
    for (int it = 0; it < 50; ++it) {
      const double mid = 0.5 * (lo + hi);
      if (estimate(beta, std::exp2(mid), &k) > target) lo = mid; else hi = mid;
    }
    const double step0 = std::exp2(hi);
    estimate(beta, step0, &k);

    // The directions, quantized as sent; dropped from the end while degenerate.
    auto ctx = std::make_shared<Context>(*base);
    ctx->basis_precision = beta;
    Orthonormalizer ortho(d);
    for (int64_t j = 0; j < k; ++j) {
      const double s = beta * step0 / std::sqrt(lambda[static_cast<size_t>(j)] * static_cast<double>(d));
      const int e = basis_exponent_for(s);
      const double sq = basis_step(e);
      std::vector<double> v = to_vector(evecs.select(1, j));
      std::vector<int64_t> code(static_cast<size_t>(d));
      std::vector<double> col(static_cast<size_t>(d));
      for (int64_t t = 0; t < d; ++t) {
        code[static_cast<size_t>(t)] = static_cast<int64_t>(std::llround(std::clamp(v[static_cast<size_t>(t)] / sq, -16777216.0, 16777216.0)));
        col[static_cast<size_t>(t)] = static_cast<double>(code[static_cast<size_t>(t)]) * sq;
      }
      if (!ortho.add(std::move(col))) break;
      ctx->basis_exponent.push_back(e);
      ctx->basis_code.push_back(std::move(code));
    }
    ctx->stream_basis = ortho.columns();
    if (ctx->k() == 0) {
      ctx->complement = basis_;
    } else {
      // Greedy in training order: the directions most outside the stream's span.
      Orthonormalizer probe = ortho;
      ctx->complement_mask.assign(static_cast<size_t>(d), 0);
      int64_t kept = 0;
      for (int64_t i = 0; i < d && kept < d - ctx->k(); ++i)
        if (probe.add(column_of(basis_, i), kComplementMinResidual)) ctx->complement_mask[static_cast<size_t>(i)] = 1, ++kept;
      for (int64_t i = 0; i < d && kept < d - ctx->k(); ++i)
        if (!ctx->complement_mask[static_cast<size_t>(i)] && probe.add(column_of(basis_, i), 1e-3))
          ctx->complement_mask[static_cast<size_t>(i)] = 1, ++kept;
      require(kept == d - ctx->k(), "adaptive_klt plan_stream: no complement of the stream's {} directions", ctx->k());
      ctx->complement = complement_basis(ortho, basis_, ctx->complement_mask, "adaptive_klt plan_stream");
    }
    const int64_t slots = d;
    at::Tensor y = coefficients(x, *ctx);  // [N, slots] float
    std::vector<double> sigma = to_vector(y.to(at::kDouble).pow(2).mean(0).sqrt());

    // Exact rate at a step with this basis: side information bytes + ideal code
    // length, from the sorted coefficients (what code_bits(quantize(y)) counts).
    const SortedCoefficients sorted(y);
    const int64_t a_max = options_.max_symbol;
    std::vector<int64_t> counts;
    auto exact = [&](double step, Context& c, at::Tensor* q_out) {
      c.step = static_cast<double>(static_cast<float>(step));
      c.classes.assign(static_cast<size_t>(slots), 0);
      const double inv = 1.0 / c.step, off = 0.5 - options_.deadzone;
      double bits = 0;
      for (int64_t j = 0; j < slots; ++j) {
        int& cls = c.classes[static_cast<size_t>(j)];
        cls = table_class(sigma[static_cast<size_t>(j)], c.step);
        if (cls == 0) continue;
        sorted.symbol_counts(j, inv, off, a_max, counts);
        // A coded slot whose every coefficient rounds to zero is sent as class 0:
        // no bits, the same reconstruction.
        if (counts[static_cast<size_t>(a_max)] == n) {
          cls = 0;
          continue;
        }
        const std::vector<double>& len = code_length_[static_cast<size_t>(cls)];
        for (size_t sym = 0; sym < counts.size(); ++sym)
          if (counts[sym]) bits += static_cast<double>(counts[sym]) * len[sym];
      }
      if (q_out) *q_out = quantize(y, c);
      return (8.0 * static_cast<double>(write_side_info(c).size()) + bits) / static_cast<double>(n);
    };
    double elo = std::log2(step0) - 3, ehi = std::log2(step0) + 3;
    for (int it = 0; it < 30; ++it) {
      const double mid = 0.5 * (elo + ehi);
      if (exact(std::exp2(mid), *ctx, nullptr) > target) elo = mid; else ehi = mid;
    }
    at::Tensor q;
    exact(std::exp2(ehi), *ctx, &q);
    finish_side_info(ctx);
    at::Tensor xr = reconstruct(q, *ctx);
    const double mse = (xr - x).pow(2).sum(1).mean().item<double>();
    if (mse < best_mse) best_mse = mse, best = ctx;
  }
  return best;
}

AdaptiveKLT::StreamStats AdaptiveKLT::stream_stats(const StreamSideInfo& side) const {
  const Context& ctx = context_of(side);
  StreamStats s;
  s.basis_vectors = ctx.k();
  s.step = ctx.step;
  s.basis_precision = ctx.basis_precision;
  s.side_bits = 8.0 * static_cast<double>(ctx.bytes.size());
  return s;
}

// ---------------------------------------------------------------- state

std::map<std::string, at::Tensor> AdaptiveKLT::state() const {
  require(is_trained(), "adaptive_klt: no state before fit");
  return {{"mean", mean_},
          {"basis", basis_},
          {"variance", variance_},
          {"bank_counts", bank_counts_},
          {"bank_centroids", bank_centroids_},
          {"default_step", at::tensor({default_step_}, at::kDouble)},
          {"default_classes", default_classes_}};
}

void AdaptiveKLT::load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) {
  const int64_t d = embed_dim_, alpha = alphabet(), a_max = options_.max_symbol;
  require(state.size() == 7, "{}: adaptive_klt state must hold 7 tensors, found {}", source, state.size());
  at::Tensor mean = state_tensor(state, "mean", {d}, at::kFloat, source);
  at::Tensor basis = state_tensor(state, "basis", {d, d}, at::kFloat, source);
  at::Tensor variance = state_tensor(state, "variance", {d}, at::kFloat, source);
  at::Tensor counts = state_tensor(state, "bank_counts", {kClasses, alpha}, at::kLong, source);
  at::Tensor centroids = state_tensor(state, "bank_centroids", {kClasses, a_max + 1}, at::kFloat, source);
  at::Tensor step = state_tensor(state, "default_step", {1}, at::kDouble, source);
  at::Tensor classes = state_tensor(state, "default_classes", {d}, at::kLong, source);
  for (const auto& [name, t] : {std::pair<const char*, at::Tensor>{"mean", mean}, {"basis", basis},
                                {"variance", variance}, {"bank_centroids", centroids}})
    require(at::isfinite(t).all().item<bool>(), "{}: tensor '{}' holds non-finite values", source, name);
  require(counts.min().item<int64_t>() >= 1 && counts.sum(1).max().item<int64_t>() <= (int64_t(1) << 40),
          "{}: tensor 'bank_counts' needs counts >= 1 and table totals <= 2^40", source);
  const double s = step.item<double>();
  require(std::isfinite(s) && s > 0, "{}: default_step {} must be a positive number", source, s);
  require(classes.min().item<int64_t>() >= 0 && classes.max().item<int64_t>() < kClasses,
          "{}: default_classes outside [0, {})", source, kClasses);
  mean_ = mean, basis_ = basis, variance_ = variance, bank_counts_ = counts, bank_centroids_ = centroids;
  default_step_ = s;
  default_classes_ = classes;
  set_derived();
}

// ---------------------------------------------------------------- registry

MethodInfo adaptive_klt_method() {
  MethodInfo m;
  m.name = "adaptive_klt";
  m.kind = MethodKind::fitted;
  m.summary = "stream-adaptive KLT transform coder: each stream sends its mean and principal directions once "
              "(docs/adaptive_klt.md)";
  m.options = make_option_group<AdaptiveKLTOptions>;
  m.validate = [](const ModelConfig& c, const std::string& source) {
    parse_basis_precisions(c.options<AdaptiveKLTOptions>().basis_precisions, source);
  };
  m.make = [](const ModelConfig& c) -> std::shared_ptr<Quantizer> {
    return std::make_shared<AdaptiveKLT>(c.embed_dim, c.options<AdaptiveKLTOptions>());
  };
  return m;
}

}  // namespace semcodec
