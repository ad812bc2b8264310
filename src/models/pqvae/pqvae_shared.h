// PQVAE-shared (paper Sec. 3): the PQ-VAE with ONE codebook shared by all 25
// positions and all c / d_sub sub-spaces (SharedCodebookPQ).
#pragma once
#include "models/pqvae/pqvae.h"
#include "models/quantizers/shared_codebook_pq.h"

namespace semcodec {

class PQVAEShared : public PQVAE<SharedCodebookPQ> {
 public:
  using PQVAE<SharedCodebookPQ>::PQVAE;
};

}  // namespace semcodec
