#include "train/quantizer_factory.h"

#include <ATen/ATen.h>

#include "data/device.h"
#include "models/pqvae/pqvae_kmeans.h"
#include "models/pqvae/pqvae_shared.h"
#include "models/quantizers/faiss_quantizer.h"
#include "models/quantizers/reference_quantizers.h"
#include "models/quantizers/scalar_quantizer.h"
#include "util/error.h"

namespace semcodec {

bool is_network_method(const std::string& m) { return m == "pqvae_shared" || m == "vqvae_kmeans_pq"; }

bool is_fitted_method(const std::string& m) {
  return m == "learned_sq" || m == "learned_sq_per_dim" || m == "faiss_pq" || m == "faiss_opq" || m == "faiss_rq" ||
         m == "float16" || m == "int8" || m == "int4";
}

std::shared_ptr<FittedQuantizer> make_fitted_quantizer(const ModelConfig& m) {
  validate_method_keys(m, "model");
  if (m.method == "learned_sq" || m.method == "learned_sq_per_dim")
    return std::make_shared<LearnedScalarQuantizer>(m.embed_dim, m.sq_bits, m.method == "learned_sq_per_dim",
                                                    m.sq_iterations);
  if (m.method == "float16") return std::make_shared<Float16Quantizer>(m.embed_dim);
  if (m.method == "int8" || m.method == "int4")
    return std::make_shared<UniformQuantizer>(m.embed_dim, m.method == "int8" ? 8 : 4, m.uniform_scale == "per_dim");
  if (m.method == "faiss_pq" || m.method == "faiss_opq" || m.method == "faiss_rq") {
    FaissQuantizerOptions o;
    o.kind = m.method.substr(6);
    o.embed_dim = m.embed_dim;
    o.nbits = m.faiss_nbits;
    o.m = m.faiss_m > 0 ? m.faiss_m : m.faiss_bits / m.faiss_nbits;
    o.pad_dims = m.faiss_pad_dims;
    o.rq_beam = m.faiss_rq_beam;
    o.opq_iterations = m.faiss_opq_iterations;
    o.train_rows = m.faiss_train_rows;
    return make_faiss_quantizer(o);
  }
  fail("model.method '{}' is not a fitted quantizer (it is trained by `semcodec train` as a network)", m.method);
}

std::shared_ptr<Quantizer> make_quantizer(const Checkpoint& ckpt, const std::string& source,
                                          const std::string& device) {
  const ModelConfig& m = ckpt.config.model;
  validate_method_keys(m, source);
  if (m.method == "pqvae_shared") {
    auto model = make_model(ckpt, source);
    model->to(resolve_device(device));
    return model;
  }
  if (m.method == "vqvae_kmeans_pq") {
    auto model = std::make_shared<PQVAEKMeans>(m);
    load_module_state(*model, ckpt.model, source);
    model->eval();
    model->to(resolve_device(device));
    return model;
  }
  std::shared_ptr<FittedQuantizer> q = make_fitted_quantizer(m);
  q->load_state(ckpt.model, source);
  return q;
}

}  // namespace semcodec
