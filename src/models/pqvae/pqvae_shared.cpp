#include "models/pqvae/pqvae_shared.h"

#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "util/error.h"

namespace semcodec {

PQVAEShared::PQVAEShared(const ModelConfig& cfg)
    : PQVAEShared(cfg, SharedCodebookPQ(cfg.latent_channels, cfg.d_sub, cfg.codebook_size,
                                        DeadCodeOptions{cfg.dead_code_restart, cfg.dead_code_after_steps})) {}

PQVAEShared::PQVAEShared(const ModelConfig& cfg, SharedCodebookPQ pq_module)
    : PQVAE(cfg, pq_module.ptr(), "pqvae_shared", "PQVAE-shared"), pq(std::move(pq_module)) {}

std::shared_ptr<PQVAEShared> load_pqvae_shared(const Checkpoint& ckpt, const std::string& source) {
  auto model = std::dynamic_pointer_cast<PQVAEShared>(load_quantizer(ckpt, source, "cpu"));
  require(model != nullptr, "{}: model.method is '{}', not pqvae_shared", source, ckpt.config.model.method);
  return model;
}

MethodInfo pqvae_shared_method() {
  MethodInfo m;
  m.name = "pqvae_shared";
  m.kind = MethodKind::network;
  m.subvectors_cross_positions = true;
  m.summary = "PQVAE-shared, the paper's network: one codebook shared by every latent position and sub-space";
  m.make = [](const ModelConfig& c) -> std::shared_ptr<Quantizer> { return std::make_shared<PQVAEShared>(c); };
  return m;
}

}  // namespace semcodec
