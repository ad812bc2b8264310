// The anchors a practitioner reaches for first, from FAISS (docs/baselines.md),
// applied directly to the L2-normalized embedding:
//   pq  — product quantizer, M sub-quantizers of 2^nbits centroids each;
//   opq — a learned rotation (OPQ, Ge et al. 2013) followed by PQ;
//   rq  — residual quantizer, M stages of 2^nbits codewords, beam search;
//   lsq — local search quantizer (LSQ++, Martinez et al. 2018): M additive
//         codebooks on the whole of D, encoded jointly by iterated local search.
// Indices are the per-slot codes [N, M] (alphabet 2^nbits): raw rate M * nbits.
// When M does not divide D (768 = 2^8 * 3 has no divisor near the Table 1
// budgets) PQ and OPQ spread D over D' = M * ceil(D / M) dims with zeros
// (FAISS's uniform RemapDimensionsTransform layout), i.e. uneven sub-spaces.
//
// State is kept as plain float tensors (PQ centroids, the OPQ matrix, RQ / LSQ
// codebooks), so checkpoints never go through FAISS's own reader.
// FAISS is optional at build time: without it make_faiss_quantizer fails.
#pragma once
#include <memory>
#include <string>

#include "models/quantizers/fitted_quantizer.h"
#include "util/config_fields.h"

namespace semcodec {

// The methods faiss_pq, faiss_opq, faiss_rq and faiss_lsq's own options (model.faiss_* keys).
struct FaissOptions {
  int64_t bits = 0;            // bit budget M * nbits (0 = take m)
  int64_t m = 0;               // sub-quantizers (PQ) or stages (RQ); 0 = bits / nbits
  int64_t nbits = 8;           // bits per sub-quantizer index
  bool pad_dims = true;        // PQ/OPQ: pad D with zero dims to a multiple of M
  int64_t rq_beam = 5;         // residual quantizer beam size (training and encoding)
  int64_t opq_iterations = 10; // OPQ outer iterations (FAISS's own default is 50)
  int64_t lsq_train_iters = 25;      // LSQ codebook-update / encoding rounds (FAISS's default)
  int64_t lsq_encode_ils_iters = 16; // LSQ local-search iterations per encoding (FAISS's default)
  int64_t train_rows = 0;      // rows used to fit FAISS (0 = all training rows)
  template <class V> void visit(V& v) {
    v.field("faiss_bits", bits, "faiss_*: bit budget M * nbits (0 = use faiss_m)", Limits::range(0, 1e6));
    v.field("faiss_m", m, "faiss_*: sub-quantizers (PQ, OPQ) or stages (RQ); 0 = faiss_bits / faiss_nbits",
            Limits::range(0, 65536));
    v.field("faiss_nbits", nbits, "faiss_*: bits per index (2^nbits centroids each)", Limits::range(1, 16));
    v.field("faiss_pad_dims", pad_dims,
            "faiss_pq / faiss_opq: when M does not divide D, spread D over a multiple of M dims with zeros "
            "(false = error)", {});
    v.field("faiss_rq_beam", rq_beam, "faiss_rq: beam size of training and encoding", Limits::range(1, 1024));
    v.field("faiss_opq_iterations", opq_iterations,
            "faiss_opq: outer iterations alternating rotation and PQ (FAISS's default is 50; the rotation "
            "changes little after ~10)",
            Limits::range(1, 10000));
    v.field("faiss_lsq_train_iters", lsq_train_iters,
            "faiss_lsq: training rounds (codebook update + encoding; FAISS's default 25)",
            Limits::range(1, 10000).added_later());
    v.field("faiss_lsq_encode_ils_iters", lsq_encode_ils_iters,
            "faiss_lsq: iterated-local-search rounds per encoding (FAISS's default 16)",
            Limits::range(1, 10000).added_later());
    v.field("faiss_train_rows", train_rows, "faiss_*: training rows used to fit (0 = all)", Limits::range(0, 1e12));
  }
};

struct FaissQuantizerOptions {
  std::string kind = "pq";  // pq | opq | rq | lsq
  int64_t embed_dim = 768;
  int64_t m = 50;           // sub-quantizers (pq, opq) or stages (rq)
  int64_t nbits = 8;
  bool pad_dims = true;
  int64_t rq_beam = 5;
  int64_t opq_iterations = 10;
  int64_t lsq_train_iters = 25;
  int64_t lsq_encode_ils_iters = 16;
  int64_t train_rows = 0;   // 0 = every row given to fit()
  uint64_t seed = 1234;     // FAISS k-means seed
};

// True when this build has FAISS.
bool faiss_available();
std::shared_ptr<FittedQuantizer> make_faiss_quantizer(const FaissQuantizerOptions& options);

// D' for PQ/OPQ, and input dim i's position in it (FAISS's uniform remap: i * D' / D).
int64_t faiss_padded_dim(int64_t embed_dim, int64_t m, bool pad_dims);

// Codes of `m` fields of `nbits` bits each, packed LSB-first into `code_size`
// bytes per item (FAISS's PQEncoderGeneric / BitstringWriter layout).
at::Tensor unpack_codes(const uint8_t* codes, int64_t n, int64_t code_size, int64_t m, int64_t nbits);
std::vector<uint8_t> pack_codes(const at::Tensor& indices, int64_t code_size, int64_t nbits);

}  // namespace semcodec
