#include "models/quantizers/faiss_quantizer.h"

#include <ATen/ATen.h>

#include <cstring>

#include "models/method_registry.h"
#include "util/error.h"
#include "util/fmt_shape.h"

#ifdef SEMCODEC_HAVE_FAISS
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/ProductQuantizer.h>
#include <faiss/impl/LocalSearchQuantizer.h>
#include <faiss/impl/ResidualQuantizer.h>
#endif

namespace semcodec {

int64_t faiss_padded_dim(int64_t embed_dim, int64_t m, bool pad_dims) {
  require(m >= 1, "FAISS: {} sub-quantizers", m);
  if (embed_dim % m == 0) return embed_dim;
  require(pad_dims, "FAISS: {} sub-quantizers do not divide D = {} (enable model.faiss_pad_dims)", m, embed_dim);
  return m * ((embed_dim + m - 1) / m);
}

at::Tensor unpack_codes(const uint8_t* codes, int64_t n, int64_t code_size, int64_t m, int64_t nbits) {
  require(m * nbits <= code_size * 8, "unpack_codes: {} x {} bits do not fit {} bytes", m, nbits, code_size);
  at::Tensor out = at::empty({n, m}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * code_size;
    int64_t bit = 0;
    for (int64_t j = 0; j < m; ++j) {
      int64_t v = 0;
      for (int64_t b = 0; b < nbits; ++b, ++bit) v |= static_cast<int64_t>((c[bit >> 3] >> (bit & 7)) & 1) << b;
      o[i * m + j] = v;
    }
  }
  return out;
}

std::vector<uint8_t> pack_codes(const at::Tensor& indices, int64_t code_size, int64_t nbits) {
  at::Tensor idx = indices.to(at::kCPU, at::kLong).contiguous();
  const int64_t n = idx.size(0), m = idx.size(1);
  require(m * nbits <= code_size * 8, "pack_codes: {} x {} bits do not fit {} bytes", m, nbits, code_size);
  std::vector<uint8_t> out(static_cast<size_t>(n * code_size), 0);
  const int64_t* p = idx.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* c = out.data() + i * code_size;
    int64_t bit = 0;
    for (int64_t j = 0; j < m; ++j)
      for (int64_t b = 0; b < nbits; ++b, ++bit)
        if ((p[i * m + j] >> b) & 1) c[bit >> 3] |= static_cast<uint8_t>(1u << (bit & 7));
  }
  return out;
}

#ifndef SEMCODEC_HAVE_FAISS

bool faiss_available() { return false; }
std::shared_ptr<FittedQuantizer> make_faiss_quantizer(const FaissQuantizerOptions& o) {
  fail("model.method faiss_{}: semcodec was built without FAISS (install libfaiss-dev and re-run cmake)", o.kind);
}

#else

namespace {

std::vector<float> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
at::Tensor to_tensor(const std::vector<float>& v, at::IntArrayRef shape) {
  return at::from_blob(const_cast<float*>(v.data()), shape, at::kFloat).clone();
}

class FaissQuantizer : public FittedQuantizer {
 public:
  explicit FaissQuantizer(const FaissQuantizerOptions& o) : o_(o) {
    require(o.kind == "pq" || o.kind == "opq" || o.kind == "rq" || o.kind == "lsq",
            "FAISS: unknown kind '{}' (pq, opq, rq or lsq)", o.kind);
    require(o.nbits >= 1 && o.nbits <= 16, "FAISS: nbits {} outside [1, 16]", o.nbits);
    require(o.opq_iterations >= 1, "FAISS: OPQ needs at least one iteration, got {}", o.opq_iterations);
    require(o.embed_dim >= 1 && o.m >= 1, "FAISS: bad sizes D = {}, M = {}", o.embed_dim, o.m);
    if (additive()) {
      padded_ = o.embed_dim;
    } else {
      require(o.m <= o.embed_dim, "FAISS: M = {} sub-quantizers for D = {}", o.m, o.embed_dim);
      padded_ = faiss_padded_dim(o.embed_dim, o.m, o.pad_dims);
    }
    positions_ = at::div(at::arange(o.embed_dim, at::kLong) * padded_, o.embed_dim, "floor");
  }

  std::string name() const override { return "faiss_" + o_.kind; }
  int64_t slots() const override { return o_.m; }
  int64_t alphabet_size(int64_t) const override { return int64_t{1} << o_.nbits; }
  int64_t embed_dim() const override { return o_.embed_dim; }
  bool is_trained() const override { return trained_; }

  void fit(const at::Tensor& x_in) override {
    at::Tensor x = unit_rows_cpu(x_in, o_.embed_dim, "FAISS fit");
    require(x.size(0) > 0, "FAISS fit: no training rows");
    if (o_.train_rows > 0 && x.size(0) > o_.train_rows)  // evenly strided subset
      x = x.index_select(0, at::div(at::arange(o_.train_rows, at::kLong) * x.size(0), o_.train_rows, "floor")).contiguous();
    const int64_t n = x.size(0);
    try {
      if (additive()) {
        aq_ = make_additive();
        aq_->train(n, x.data_ptr<float>());
      } else {
        at::Tensor y = pad(x);
        if (o_.kind == "opq") {
          faiss::OPQMatrix opq(static_cast<int>(padded_), static_cast<int>(o_.m), static_cast<int>(padded_));
          opq.verbose = false;
          // FAISS's 50 outer iterations take ~30 min for 768-d, 50 x 8 bits on one
          // core, hence the lower default of model.faiss_opq_iterations.
          opq.niter = static_cast<int>(o_.opq_iterations);
          // OPQ alternates rotation and a PQ of the final shape (else it trains an 8-bit one).
          faiss::ProductQuantizer inner(padded_, o_.m, o_.nbits);
          inner.cp.seed = static_cast<int>(o_.seed);
          opq.pq = &inner;
          opq.train(n, y.data_ptr<float>());
          // OPQ's output space is D'; the matrix acts on the padded input.
          rotation_ = to_tensor(opq.A, {padded_, padded_});
          y = at::mm(y, rotation_.t()).contiguous();
        }
        pq_ = std::make_unique<faiss::ProductQuantizer>(padded_, o_.m, o_.nbits);
        pq_->cp.seed = static_cast<int>(o_.seed);
        pq_->verbose = false;
        pq_->train(n, y.data_ptr<float>());
      }
    } catch (const faiss::FaissException& e) {
      fail("FAISS {} training failed: {}", o_.kind, e.what());
    }
    trained_ = true;
  }

  at::Tensor encode(const at::Tensor& x_in) override {
    require(trained_, "{}: encode before fit", name());
    at::Tensor x = unit_rows_cpu(x_in, o_.embed_dim, "FAISS encode");
    const int64_t n = x.size(0);
    std::vector<uint8_t> codes(static_cast<size_t>(n * code_size()));
    if (n == 0) return at::empty({0, o_.m}, at::kLong);
    if (aq_) {
      aq_->compute_codes(x.data_ptr<float>(), codes.data(), n);
    } else {
      at::Tensor y = pad(x);
      if (rotation_.defined()) y = at::mm(y, rotation_.t()).contiguous();
      pq_->compute_codes(y.data_ptr<float>(), codes.data(), n);
    }
    return unpack_codes(codes.data(), n, code_size(), o_.m, o_.nbits);
  }

  at::Tensor decode(const at::Tensor& indices) override {
    require(trained_, "{}: decode before fit", name());
    at::Tensor idx = checked_indices_cpu(indices, o_.m, alphabet_size(0), "FAISS decode");
    const int64_t n = idx.size(0);
    std::vector<uint8_t> codes = pack_codes(idx, code_size(), o_.nbits);
    if (aq_) {
      at::Tensor out = at::empty({n, o_.embed_dim}, at::kFloat);
      if (n) aq_->decode(codes.data(), out.data_ptr<float>(), n);
      return out;
    }
    at::Tensor y = at::empty({n, padded_}, at::kFloat);
    if (n) pq_->decode(codes.data(), y.data_ptr<float>(), n);
    // The rotation is orthogonal: its transpose undoes it.
    if (rotation_.defined()) y = at::mm(y, rotation_);
    return y.index_select(1, positions_).contiguous();
  }

  std::map<std::string, at::Tensor> state() const override {
    require(trained_, "{}: no state before fit", name());
    if (aq_) return {{o_.kind + ".codebooks", to_tensor(aq_->codebooks, {o_.m, alphabet_size(0), o_.embed_dim})}};
    std::map<std::string, at::Tensor> s{
        {"pq.centroids", to_tensor(pq_->centroids, {o_.m, alphabet_size(0), padded_ / o_.m})}};
    if (rotation_.defined()) s["opq.rotation"] = rotation_;
    return s;
  }

  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) override {
    const int64_t k = alphabet_size(0);
    auto finite = [&](const at::Tensor& t, const char* what) {
      require(at::isfinite(t).all().item<bool>(), "{}: tensor '{}' holds non-finite values", source, what);
    };
    if (additive()) {
      const std::string key = o_.kind + ".codebooks";
      require(state.size() == 1, "{}: faiss_{} state must hold exactly '{}' ({} tensors)", source, o_.kind, key,
              state.size());
      at::Tensor cb = state_tensor(state, key, {o_.m, k, o_.embed_dim}, at::kFloat, source);
      finite(cb, key.c_str());
      aq_ = make_additive();
      aq_->codebooks = to_vector(cb);
      aq_->is_trained = true;
    } else {
      const size_t expected = o_.kind == "opq" ? 2 : 1;
      require(state.size() == expected, "{}: faiss_{} state must hold {} tensors, got {}", source, o_.kind, expected,
              state.size());
      at::Tensor c = state_tensor(state, "pq.centroids", {o_.m, k, padded_ / o_.m}, at::kFloat, source);
      finite(c, "pq.centroids");
      if (o_.kind == "opq") {
        at::Tensor r = state_tensor(state, "opq.rotation", {padded_, padded_}, at::kFloat, source);
        finite(r, "opq.rotation");
        // decode() inverts the rotation by its transpose.
        const double err = (at::mm(r, r.t()) - at::eye(padded_)).abs().max().item<double>();
        require(err < 1e-3, "{}: tensor 'opq.rotation' is not orthogonal (max |R R^T - I| = {})", source, err);
        rotation_ = r;
      }
      pq_ = std::make_unique<faiss::ProductQuantizer>(padded_, o_.m, o_.nbits);
      pq_->centroids = to_vector(c);
    }
    trained_ = true;
  }

 private:
  int64_t code_size() const { return (o_.m * o_.nbits + 7) / 8; }
  // RQ and LSQ: additive quantizers (a sum of one codeword per codebook) on D.
  bool additive() const { return o_.kind == "rq" || o_.kind == "lsq"; }
  std::unique_ptr<faiss::AdditiveQuantizer> make_additive() const {
    if (o_.kind == "rq") {
      auto rq = std::make_unique<faiss::ResidualQuantizer>(o_.embed_dim, o_.m, o_.nbits);
      rq->max_beam_size = static_cast<int>(o_.rq_beam);
      rq->train_type |= faiss::ResidualQuantizer::Skip_codebook_tables;  // LUTs of (M K)^2 floats
      rq->cp.seed = static_cast<int>(o_.seed);
      rq->verbose = false;
      return rq;
    }
    auto lsq = std::make_unique<faiss::LocalSearchQuantizer>(o_.embed_dim, o_.m, o_.nbits);
    lsq->train_iters = static_cast<size_t>(o_.lsq_train_iters);
    lsq->encode_ils_iters = static_cast<size_t>(o_.lsq_encode_ils_iters);
    lsq->random_seed = static_cast<int>(o_.seed);
    lsq->verbose = false;
    return lsq;
  }
  at::Tensor pad(const at::Tensor& x) const {
    if (padded_ == o_.embed_dim) return x.contiguous();
    return at::zeros({x.size(0), padded_}, at::kFloat).index_copy_(1, positions_, x).contiguous();
  }

  FaissQuantizerOptions o_;
  int64_t padded_ = 0;
  at::Tensor positions_, rotation_;  // rotation_ [D', D'] (opq only)
  std::unique_ptr<faiss::ProductQuantizer> pq_;
  std::unique_ptr<faiss::AdditiveQuantizer> aq_;  // rq, lsq
  bool trained_ = false;
};

}  // namespace

bool faiss_available() { return true; }
std::shared_ptr<FittedQuantizer> make_faiss_quantizer(const FaissQuantizerOptions& o) {
  return std::make_shared<FaissQuantizer>(o);
}

#endif

namespace {

// Cross-field checks of FaissOptions; Product: PQ and OPQ (sub-spaces of D).
template <bool Product>
void validate_faiss(const ModelConfig& c, const std::string& source) {
  const FaissOptions& o = c.options<FaissOptions>();
  require(o.bits > 0 || o.m > 0, "{}: model.faiss_bits: method {} needs faiss_bits or faiss_m", source, c.method);
  if (o.bits > 0)
    require(o.bits % o.nbits == 0, "{}: model.faiss_bits: {} is not a multiple of faiss_nbits ({})", source, o.bits,
            o.nbits);
  if (o.bits > 0 && o.m > 0)
    require(o.m * o.nbits == o.bits, "{}: model.faiss_m: {} x faiss_nbits {} = {} bits, but faiss_bits is {}", source,
            o.m, o.nbits, o.m * o.nbits, o.bits);
  const int64_t sub = o.m > 0 ? o.m : o.bits / o.nbits;
  if (Product) {
    require(sub <= c.embed_dim, "{}: model.faiss_m: {} sub-quantizers for D = {}", source, sub, c.embed_dim);
    require(o.pad_dims || c.embed_dim % sub == 0,
            "{}: model.faiss_m: {} sub-quantizers do not divide D = {} (set model.faiss_pad_dims: true to pad)", source,
            sub, c.embed_dim);
  }
}

// `kind`: pq | opq | rq | lsq, the method name's suffix.
std::shared_ptr<Quantizer> make_faiss(const ModelConfig& c, const char* kind) {
  const FaissOptions& f = c.options<FaissOptions>();
  FaissQuantizerOptions o;
  o.kind = kind;
  o.embed_dim = c.embed_dim;
  o.nbits = f.nbits;
  o.m = f.m > 0 ? f.m : f.bits / f.nbits;
  o.pad_dims = f.pad_dims;
  o.rq_beam = f.rq_beam;
  o.opq_iterations = f.opq_iterations;
  o.lsq_train_iters = f.lsq_train_iters;
  o.lsq_encode_ils_iters = f.lsq_encode_ils_iters;
  o.train_rows = f.train_rows;
  return make_faiss_quantizer(o);
}

template <bool Product>
MethodInfo faiss_entry(const char* name, const char* summary, std::shared_ptr<Quantizer> (*make)(const ModelConfig&)) {
  MethodInfo m;
  m.name = name;
  m.kind = MethodKind::fitted;
  m.summary = summary;
  m.options = make_option_group<FaissOptions>;
  m.validate = validate_faiss<Product>;
  m.make = make;
  return m;
}

}  // namespace

MethodInfo faiss_pq_method() {
  return faiss_entry<true>("faiss_pq", "FAISS product quantizer (needs a build with FAISS)",
                     [](const ModelConfig& c) { return make_faiss(c, "pq"); });
}
MethodInfo faiss_opq_method() {
  return faiss_entry<true>("faiss_opq", "FAISS OPQ rotation + product quantizer (needs a build with FAISS)",
                     [](const ModelConfig& c) { return make_faiss(c, "opq"); });
}
MethodInfo faiss_rq_method() {
  return faiss_entry<false>("faiss_rq", "FAISS residual quantizer with beam search (needs a build with FAISS)",
                     [](const ModelConfig& c) { return make_faiss(c, "rq"); });
}

}  // namespace semcodec

namespace semcodec {
MethodInfo faiss_lsq_method() {
  return faiss_entry<false>("faiss_lsq",
                            "FAISS local search quantizer (LSQ++, additive codebooks; needs a build with FAISS)",
                            [](const ModelConfig& c) { return make_faiss(c, "lsq"); });
}
}  // namespace semcodec
