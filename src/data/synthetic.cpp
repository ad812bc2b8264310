#include "data/synthetic.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "util/error.h"

namespace semcodec {
namespace {

// ---- Deterministic random numbers -------------------------------------------------
// Every consumer gets its own stream, keyed by (seed, purpose, index), so the result
// does not depend on the order or the threads in which rows are generated.

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

enum Stream : uint64_t {
  kBasis = 1,
  kAssign = 2,
  kSuperclass = 3,
  kClass = 4,
  kDifficulty = 5,
  kText = 6,
  kImage = 7,
};

class Rng {
 public:
  Rng(uint64_t seed, Stream stream, uint64_t index) {
    uint64_t sm = seed;
    uint64_t a = splitmix64(sm);
    sm = a ^ (static_cast<uint64_t>(stream) * 0xD1B54A32D192ED03ULL);
    uint64_t b = splitmix64(sm);
    sm = b ^ (index * 0x8CB92BA72F3D8DD7ULL + 0x632BE59BD9B4E019ULL);
    for (auto& w : s_) w = splitmix64(sm);
  }

  // xoshiro256**
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in (0, 1]: never 0, so log() below is finite.
  double uniform_open0() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // Integer in [0, n) by multiply-shift (deterministic; bias < n / 2^64).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }

  // Standard normal by Box-Muller; the second value of each pair is kept for the next call.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform_open0()));
    const double theta = 6.283185307179586476925 * uniform();  // 2 pi
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return r * std::cos(theta);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// ---- Model pieces -----------------------------------------------------------------

// Power-law variance profile lambda_j ∝ (j+1)^-decay, normalised to sum 1.
std::vector<double> power_law(int64_t n, double decay) {
  std::vector<double> v(static_cast<size_t>(n));
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += (v[j] = std::pow(static_cast<double>(j + 1), -decay));
  for (auto& x : v) x /= sum;
  return v;
}

// k orthonormal rows in R^D (k <= D): Gaussian rows, modified Gram-Schmidt run twice,
// all in double with plain loops so the result is the same on every machine.
std::vector<double> orthonormal_rows(int64_t k, int64_t D, uint64_t seed) {
  std::vector<double> q(static_cast<size_t>(k * D));
  for (int64_t i = 0; i < k; ++i) {
    Rng rng(seed, kBasis, static_cast<uint64_t>(i));
    double* row = &q[i * D];
    for (int64_t d = 0; d < D; ++d) row[d] = rng.normal();
    for (int pass = 0; pass < 2; ++pass) {
      for (int64_t j = 0; j < i; ++j) {
        const double* prev = &q[j * D];
        double dot = 0.0;
        for (int64_t d = 0; d < D; ++d) dot += row[d] * prev[d];
        for (int64_t d = 0; d < D; ++d) row[d] -= dot * prev[d];
      }
      double norm = 0.0;
      for (int64_t d = 0; d < D; ++d) norm += row[d] * row[d];
      norm = std::sqrt(norm);
      require(norm > 1e-8, "make_synthetic: degenerate basis (dim too small for the ranks)");
      for (int64_t d = 0; d < D; ++d) row[d] /= norm;
    }
  }
  return q;
}

void check_fraction(double v, const char* name) {
  require(std::isfinite(v) && v >= 0.0 && v <= 1.0, "make_synthetic: {} must be in [0, 1], got {}", name, v);
}

at::Tensor normalize_rows(const at::Tensor& x) { return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12); }

}  // namespace

FeatureSet make_synthetic(const SyntheticOptions& o) {
  require(o.num_classes >= 1, "make_synthetic: num_classes must be >= 1, got {}", o.num_classes);
  require(o.per_class >= 1, "make_synthetic: per_class must be >= 1, got {}", o.per_class);
  require(o.dim >= 16, "make_synthetic: dim must be >= 16, got {}", o.dim);
  require(o.num_superclasses >= 0, "make_synthetic: num_superclasses must be >= 0, got {}", o.num_superclasses);
  require(o.semantic_rank >= 1, "make_synthetic: semantic_rank must be >= 1, got {}", o.semantic_rank);
  require(o.nuisance_rank >= 0, "make_synthetic: nuisance_rank must be >= 0, got {}", o.nuisance_rank);
  require(std::isfinite(o.spectrum_decay) && o.spectrum_decay >= 0.0,
          "make_synthetic: spectrum_decay must be >= 0, got {}", o.spectrum_decay);
  require(std::isfinite(o.nuisance_decay) && o.nuisance_decay >= 0.0,
          "make_synthetic: nuisance_decay must be >= 0, got {}", o.nuisance_decay);
  require(std::isfinite(o.offset_jitter) && o.offset_jitter >= 0.0,
          "make_synthetic: offset_jitter must be >= 0, got {}", o.offset_jitter);
  require(std::isfinite(o.difficulty_spread) && o.difficulty_spread >= 0.0 && o.difficulty_spread <= 3.0,
          "make_synthetic: difficulty_spread must be in [0, 3], got {}", o.difficulty_spread);
  require(std::isfinite(o.offset_cosine) && o.offset_cosine >= -1.0 && o.offset_cosine <= 1.0,
          "make_synthetic: offset_cosine must be in [-1, 1], got {}", o.offset_cosine);
  check_fraction(o.superclass_share, "superclass_share");
  check_fraction(o.image_offset, "image_offset");
  check_fraction(o.image_class, "image_class");
  check_fraction(o.image_text_alignment, "image_text_alignment");
  check_fraction(o.image_within, "image_within");
  check_fraction(o.image_nuisance, "image_nuisance");
  check_fraction(o.text_offset, "text_offset");
  check_fraction(o.text_class, "text_class");
  check_fraction(o.text_specific, "text_specific");
  const double image_noise = 1.0 - o.image_offset - o.image_class - o.image_within - o.image_nuisance;
  const double text_noise = 1.0 - o.text_offset - o.text_class - o.text_specific;
  require(image_noise >= -1e-12, "make_synthetic: image_offset + image_class + image_within + image_nuisance must be <= 1");
  require(text_noise >= -1e-12, "make_synthetic: text_offset + text_class + text_specific must be <= 1");

  const int64_t C = o.num_classes, P = o.per_class, D = o.dim, N = C * P;
  const uint64_t seed = o.seed;
  // Basis rows: 0 = image offset, 1 = text offset's component orthogonal to it,
  // then the r_s directions of the text semantic subspace U, r_s directions of the
  // image-only copy W, and r_n nuisance directions.
  const int64_t rs = std::min(o.semantic_rank, (D - 2) / 3);
  const int64_t rn = std::min(o.nuisance_rank, D - 2 - 2 * rs);
  const int64_t K = 2 + 2 * rs + rn;
  const int64_t S = std::min(o.num_superclasses, C);

  const std::vector<double> basis = orthonormal_rows(K, D, seed);
  at::Tensor Q = at::empty({K, D}, at::kFloat);
  {
    float* q = Q.data_ptr<float>();
    for (int64_t i = 0; i < K * D; ++i) q[i] = static_cast<float>(basis[i]);
  }
  const std::vector<double> lam_s = power_law(rs, o.spectrum_decay);
  const std::vector<double> lam_n = power_law(rn, o.nuisance_decay);
  std::vector<double> sd_s(lam_s.size()), sd_n(lam_n.size());
  for (size_t j = 0; j < lam_s.size(); ++j) sd_s[j] = std::sqrt(lam_s[j]);
  for (size_t j = 0; j < lam_n.size(); ++j) sd_n[j] = std::sqrt(lam_n[j]);

  // Superclass of each class: a seeded shuffle dealt round-robin (balanced sizes).
  std::vector<int64_t> superclass(static_cast<size_t>(C), 0);
  if (S > 0) {
    std::vector<int64_t> perm(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) perm[c] = c;
    Rng rng(seed, kAssign, 0);
    for (int64_t i = C - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(static_cast<uint64_t>(i + 1))]);
    for (int64_t i = 0; i < C; ++i) superclass[perm[i]] = i % S;
  }

  // Class centres with a two-level hierarchy: centre = sqrt(rho) g_{s(c)} + sqrt(1 - rho) h_c,
  // g and h ~ N(0, diag(lambda)), so E|centre|^2 = 1. m_c lives in the semantic subspace
  // coordinates (images and texts share them).
  const double rho = S > 0 ? o.superclass_share : 0.0;
  auto hierarchical = [&](int64_t rank, const std::vector<double>& sd, Stream sup_stream, Stream cls_stream) {
    std::vector<double> sup(static_cast<size_t>(S * rank));
    for (int64_t s = 0; s < S; ++s) {
      Rng rng(seed, sup_stream, static_cast<uint64_t>(s));
      for (int64_t j = 0; j < rank; ++j) sup[s * rank + j] = sd[j] * rng.normal();
    }
    std::vector<double> out(static_cast<size_t>(C * rank));
    for (int64_t c = 0; c < C; ++c) {
      Rng rng(seed, cls_stream, static_cast<uint64_t>(c));
      for (int64_t j = 0; j < rank; ++j) {
        const double own = sd[j] * rng.normal();
        const double shared = S > 0 ? sup[superclass[c] * rank + j] : 0.0;
        out[c * rank + j] = std::sqrt(rho) * shared + std::sqrt(1.0 - rho) * own;
      }
    }
    return out;
  };
  const std::vector<double> centre = hierarchical(rs, sd_s, kSuperclass, kClass);

  // Per-class scale of within-class variation and noise, log-normal with E[a^2] = 1.
  std::vector<double> difficulty(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    Rng rng(seed, kDifficulty, static_cast<uint64_t>(c));
    const double sp = o.difficulty_spread;
    difficulty[c] = std::exp(sp * rng.normal() - sp * sp);
  }

  const double oc = o.offset_cosine, os = std::sqrt(std::max(0.0, 1.0 - oc * oc));

  // Text embeddings.
  at::Tensor text_coef = at::zeros({C, K}, at::kFloat);
  at::Tensor text_noise_t = at::empty({C, D}, at::kFloat);
  {
    float* tc = text_coef.data_ptr<float>();
    float* tn = text_noise_t.data_ptr<float>();
    const double a_off = std::sqrt(o.text_offset), a_cls = std::sqrt(o.text_class);
    const double a_spec = std::sqrt(o.text_specific);
    const double a_noise = std::sqrt(std::max(0.0, text_noise) / static_cast<double>(D));
    at::parallel_for(0, C, 64, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        Rng rng(seed, kText, static_cast<uint64_t>(c));
        float* row = tc + c * K;
        row[0] = static_cast<float>(a_off * oc);
        row[1] = static_cast<float>(a_off * os);
        for (int64_t j = 0; j < rs; ++j)
          row[2 + j] = static_cast<float>(a_cls * centre[c * rs + j] + a_spec * sd_s[j] * rng.normal());
        float* nrow = tn + c * D;
        for (int64_t d = 0; d < D; ++d) nrow[d] = static_cast<float>(a_noise * rng.normal());
      }
    });
  }
  at::Tensor text = normalize_rows(at::matmul(text_coef, Q) + text_noise_t);

  // Image features, class-major.
  // Image basis (K_img = 1 + r_s + r_n rows): the image offset, the rotated semantic
  // directions U cos(theta) + W sin(theta), and the nuisance directions.
  const double rot_c = o.image_text_alignment, rot_s = std::sqrt(1.0 - rot_c * rot_c);
  const int64_t Ki = 1 + rs + rn;
  at::Tensor Qi = at::empty({Ki, D}, at::kFloat);
  {
    float* q = Qi.data_ptr<float>();
    for (int64_t d = 0; d < D; ++d) q[d] = static_cast<float>(basis[d]);
    for (int64_t j = 0; j < rs; ++j)
      for (int64_t d = 0; d < D; ++d)
        q[(1 + j) * D + d] = static_cast<float>(rot_c * basis[(2 + j) * D + d] + rot_s * basis[(2 + rs + j) * D + d]);
    for (int64_t j = 0; j < rn; ++j)
      for (int64_t d = 0; d < D; ++d) q[(1 + rs + j) * D + d] = static_cast<float>(basis[(2 + 2 * rs + j) * D + d]);
  }
  at::Tensor image_coef = at::empty({N, Ki}, at::kFloat);
  at::Tensor image = at::empty({N, D}, at::kFloat);  // holds the isotropic noise, then the features
  {
    float* ic = image_coef.data_ptr<float>();
    float* in = image.data_ptr<float>();
    const double a_off = std::sqrt(o.image_offset), a_cls = std::sqrt(o.image_class);
    const double a_within = std::sqrt(o.image_within), a_nuis = std::sqrt(o.image_nuisance);
    const double a_noise = std::sqrt(std::max(0.0, image_noise) / static_cast<double>(D));
    at::parallel_for(0, N, 256, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t c = i / P;
        const double dc = difficulty[c];
        Rng rng(seed, kImage, static_cast<uint64_t>(i));
        float* row = ic + i * Ki;
        row[0] = static_cast<float>(a_off * (1.0 + o.offset_jitter * rng.normal()));
        for (int64_t j = 0; j < rs; ++j) {
          // Semantic coordinates, in the rotated copy of the text semantic subspace.
          row[1 + j] = static_cast<float>(a_cls * centre[c * rs + j] + a_within * dc * sd_s[j] * rng.normal());
        }
        for (int64_t j = 0; j < rn; ++j) row[1 + rs + j] = static_cast<float>(a_nuis * sd_n[j] * rng.normal());
        float* nrow = in + i * D;
        for (int64_t d = 0; d < D; ++d) nrow[d] = static_cast<float>(a_noise * dc * rng.normal());
      }
    });
  }
  image.add_(at::matmul(image_coef, Qi));
  image = normalize_rows(image).contiguous();

  FeatureSet set;
  set.features = image;
  set.labels = at::empty({N}, at::kLong);
  {
    int64_t* l = set.labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < N; ++i) l[i] = i / P;
  }
  set.ids.reserve(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) set.ids.push_back("synthetic/" + std::to_string(i));
  set.class_names.reserve(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) set.class_names.push_back("synthetic class " + std::to_string(c));
  set.class_embeddings = text.contiguous();
  set.attrs.encoder_model = "synthetic-clip-v1";
  set.attrs.dataset = "synthetic";
  set.attrs.split = "all";
  set.attrs.preprocessing = "none";
  return set;
}

}  // namespace semcodec
