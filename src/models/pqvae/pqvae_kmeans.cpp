#include "models/pqvae/pqvae_kmeans.h"

#include "models/method_registry.h"

namespace semcodec {

MethodInfo vqvae_kmeans_pq_method() {
  MethodInfo m;
  m.name = "vqvae_kmeans_pq";
  m.kind = MethodKind::network;
  m.summary = "VQ-VAE k-means PQ baseline: PQVAE-shared's network with one EMA codebook per sub-space";
  m.options = make_option_group<EmaCodebookOptions>;
  m.make = [](const ModelConfig& c) -> std::shared_ptr<Quantizer> { return std::make_shared<PQVAEKMeans>(c); };
  return m;
}

}  // namespace semcodec
