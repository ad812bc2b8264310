// Speed of the best codec (adaptive_klt) next to FAISS PQ on the same machine:
// fit (training) rows/s, and encode / decode items/s at batch 1 (packets) and
// batch 1,024 (a stream), with the FLOPs each item costs and the share of the
// machine's float32 GEMM peak (measured here with a 2,048^3 at::mm) they reach.
// Rows are unit vectors with a decaying spectrum (CLIP-like; D = 512), the
// training set 13,000 rows as on the real-data gauge.
// Usage: see kUsage (or run with --help).
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <chrono>
#include <string>

#include "bench_args.h"
#include "codec/codec.h"
#include "data/device.h"
#include "models/quantizers/adaptive_klt.h"
#include "models/quantizers/faiss_quantizer.h"

using namespace semcodec;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

at::Tensor rows(int64_t n, int64_t d, int64_t seed, double shift) {
  at::manual_seed(seed);
  at::Tensor spread = at::pow(at::full({d}, 0.99, at::kFloat), at::arange(d, at::kFloat));
  at::Tensor x = at::randn({n, d}) * spread;
  x.select(1, 0).add_(static_cast<float>(shift));
  return x / x.norm(2, {1}, true);
}

double gemm_peak_gflops() {
  at::Tensor a = at::randn({2048, 2048}), b = at::randn({2048, 2048});
  at::mm(a, b);
  const int reps = 5;
  const double t0 = now();
  for (int i = 0; i < reps; ++i) at::mm(a, b).sum().item<float>();
  return reps * 2.0 * 2048.0 * 2048.0 * 2048.0 / (now() - t0) / 1e9;
}

// Items/s of f over `n` items, repeated until at least 0.5 s.
template <class F>
double rate(int64_t n, F&& f) {
  f();  // warm-up
  int reps = 0;
  const double t0 = now();
  do {
    f();
    ++reps;
  } while (now() - t0 < 0.5);
  return static_cast<double>(reps * n) / (now() - t0);
}

void row(const std::string& method, double fit_rows_s, double e1, double d1, double e1024, double d1024,
         double flop_enc, double flop_dec, double peak) {
  auto share = [&](double items_s, double flop) { return 100.0 * items_s * flop / (peak * 1e9); };
  fmt::print("| {} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.2f} / {:.2f} | {:.1f}% / {:.1f}% |\n", method,
             fit_rows_s, e1, d1, e1024, d1024, flop_enc / 1e6, flop_dec / 1e6, share(e1024, flop_enc),
             share(d1024, flop_dec));
}
}  // namespace

constexpr const char* kUsage = "bench_codec_speed [--threads T] [--bits 400]";

int main(int argc, char** argv) {
  if (int rc = check_bench_args(argc, argv, kUsage); rc >= 0) return rc;
  prefer_avx512_blas(argv);
  int64_t threads = 0, bits = 400;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--threads") threads = std::stoll(argv[i + 1]);
    else if (a == "--bits") bits = std::stoll(argv[i + 1]);
    else {
      fmt::print(stderr, "unknown option {}\n{}\n", a, kUsage);
      return 2;
    }
  }
  configure_threads(threads);
  const int64_t d = 512, n_train = 13000, n_stream = 1024;
  const at::Tensor train = rows(n_train, d, 1, 3.0);
  const at::Tensor stream = rows(n_stream, d, 2, 2.0);
  const at::Tensor one = stream.narrow(0, 0, 1);
  const double peak = gemm_peak_gflops();
  fmt::print("# codec speed, D = {}, {} bits, threads {}: float32 GEMM peak {:.1f} GFLOP/s (2048^3 at::mm)\n", d, bits,
             at::get_num_threads(), peak);
  fmt::print("| method | fit rows/s | encode items/s (batch 1) | decode items/s (batch 1) | encode items/s (batch 1,024) "
             "| decode items/s (batch 1,024) | MFLOP/item encode / decode | GEMM-peak share at 1,024 enc / dec |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|\n");

  {
    AdaptiveKLTOptions o;
    o.target_bits = static_cast<double>(bits);
    auto q = std::make_shared<AdaptiveKLT>(d, o);
    double t0 = now();
    q->fit(train);
    const double fit_rows_s = n_train / (now() - t0);
    const StreamSideInfo& p = q->packet_context();
    EntropyModel em = EntropyModel::from_counts(p.slots, p.alphabet_sizes, TableMode::per_slot, 0, 0, p.slot_counts);
    Codec codec(q, em, CoderId::rans, codec_fingerprint(decoding_tensors(*q), CoderId::rans, em));
    std::vector<uint8_t> packet = codec.encode_packet(one);
    const double e1 = rate(1, [&] { codec.encode_packet(one); });
    const double d1 = rate(1, [&] { codec.decode_packet(packet); });
    std::vector<uint8_t> bytes = codec.encode(stream);
    const double e1024 = rate(n_stream, [&] { codec.encode(stream); });
    const double d1024 = rate(n_stream, [&] { codec.decode(bytes); });
    // Per item: the projection onto the D x D basis (2 D^2) each way; a
    // stream's planning adds its covariance (2 D^2 per row) and an
    // eigendecomposition (~9 D^3, spread over the stream's rows).
    const double dd = static_cast<double>(d);
    row("adaptive_klt (rANS, side information included)", fit_rows_s, e1, d1, e1024, d1024,
        2 * dd * dd + 2 * dd * dd + 9 * dd * dd * dd / n_stream, 2 * dd * dd, peak);
  }
  if (faiss_available()) {
    FaissQuantizerOptions o;
    o.kind = "pq";
    o.embed_dim = d;
    o.nbits = 8;
    o.m = bits / 8;
    auto q = make_faiss_quantizer(o);
    double t0 = now();
    q->fit(train);
    const double fit_rows_s = n_train / (now() - t0);
    at::Tensor idx1 = q->encode(one), idx = q->encode(stream);
    const double e1 = rate(1, [&] { q->encode(one); });
    const double d1 = rate(1, [&] { q->decode(idx1); });
    const double e1024 = rate(n_stream, [&] { q->encode(stream); });
    const double d1024 = rate(n_stream, [&] { q->decode(idx); });
    // Distances of each sub-vector to its 256 centroids: 2 K D' per item; decoding copies.
    const double padded = static_cast<double>(faiss_padded_dim(d, o.m, true));
    row(fmt::format("FAISS PQ ({} x 8 bits, codes only)", o.m), fit_rows_s, e1, d1, e1024, d1024, 2 * 256 * padded,
        padded, peak);
  }
  return 0;
}
