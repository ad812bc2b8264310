// PQVAE-shared (paper Sec. 3), the method pqvae_shared: the PQ-VAE with ONE
// codebook shared by all 25 positions and all c / d_sub sub-spaces
// (SharedCodebookPQ), learned by gradient with dead-code restarts.
#pragma once
#include <memory>
#include <string>

#include "models/pqvae/pqvae.h"
#include "models/quantizers/shared_codebook_pq.h"

namespace semcodec {

struct Checkpoint;

class PQVAEShared : public PQVAE {
 public:
  explicit PQVAEShared(const ModelConfig& cfg);
  SharedCodebookPQ pq;  // the PQ module, registered as "pq"

 private:
  PQVAEShared(const ModelConfig& cfg, SharedCodebookPQ pq_module);
};

// The checkpoint's PQVAE-shared with its weights, in evaluation mode on the
// CPU; Error when the checkpoint holds another method.
std::shared_ptr<PQVAEShared> load_pqvae_shared(const Checkpoint& ckpt, const std::string& source);

}  // namespace semcodec
