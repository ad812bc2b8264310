#include "models/pqvae/vqvae_kmeans_pq.h"

#include "models/method_registry.h"

namespace semcodec {

VQVAEKMeansPQ::VQVAEKMeansPQ(const ModelConfig& cfg)
    : VQVAEKMeansPQ(cfg, EmaCodebookPQ(cfg.latent_channels, cfg.d_sub, cfg.codebook_size, kLatentPositions,
                                       cfg.options<EmaCodebookOptions>(),
                                       DeadCodeOptions{cfg.dead_code_restart, cfg.dead_code_after_steps})) {}

VQVAEKMeansPQ::VQVAEKMeansPQ(const ModelConfig& cfg, EmaCodebookPQ pq_module)
    : PQVAE(cfg, pq_module.ptr(), "vqvae_kmeans_pq", "VQ-VAE k-means PQ"), pq(std::move(pq_module)) {}

MethodInfo vqvae_kmeans_pq_method() {
  MethodInfo m;
  m.name = "vqvae_kmeans_pq";
  m.kind = MethodKind::network;
  m.summary = "VQ-VAE k-means PQ baseline: PQVAE-shared's network with one EMA codebook per sub-space";
  m.options = make_option_group<EmaCodebookOptions>;
  m.make = [](const ModelConfig& c) -> std::shared_ptr<Quantizer> { return std::make_shared<VQVAEKMeansPQ>(c); };
  return m;
}

}  // namespace semcodec
