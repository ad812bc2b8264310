// Training and inference throughput of PQVAE-shared in the paper's
// configuration (d_sub 16; K 4 and 8; batch 64) on random unit-norm inputs.
// Usage: see kUsage (or run with --help).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "bench_args.h"
#include "data/device.h"
#include "models/pqvae/pqvae_shared.h"
#include "train/adam.h"
#include "train/pqvae_objective.h"

using namespace semcodec;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}

constexpr const char* kUsage =
    "usage: bench_pqvae [--steps N] [--batch B] [--infer-batch B] [--threads T] [--device cpu|cuda] "
    "[--compute-dtype float32|bfloat16] [--adam fused|foreach]";

int main(int argc, char** argv) {
  if (int rc = check_bench_args(argc, argv, kUsage); rc >= 0) return rc;
  prefer_avx512_blas(argv);
  int64_t steps = 30, batch = 64, threads = 0, infer_batch = 1024;
  std::string device = "cpu", compute = "float32", adam_impl = "fused";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--steps") steps = std::stoll(argv[i + 1]);
    else if (a == "--batch") batch = std::stoll(argv[i + 1]);
    else if (a == "--threads") threads = std::stoll(argv[i + 1]);
    else if (a == "--infer-batch") infer_batch = std::stoll(argv[i + 1]);
    else if (a == "--device") device = argv[i + 1];
    else if (a == "--compute-dtype") compute = argv[i + 1];
    else if (a == "--adam") adam_impl = argv[i + 1];
    else { fmt::print(stderr, "unknown option {}\n", a); return 2; }
  }
  if (adam_impl != "fused" && adam_impl != "foreach") {
    fmt::print(stderr, "--adam must be fused or foreach, got {}\n", adam_impl);
    return 2;
  }
  configure_threads(threads, compute == "bfloat16" ? GemmBackend::OneDnn : GemmBackend::Blas);
  at::Device dev(device);
  fmt::print("# PQVAE-shared throughput: device {}, compute {}, threads {} (OpenMP {}), batch {}, Adam {}\n", device,
             compute, threads, at::get_num_threads(), batch, adam_impl);
  fmt::print("| K | d_sub | raw bits | train samples/s | infer (encode+decode) features/s |\n|---|---|---|---|---|\n");
  for (int64_t k : {4, 8}) {
    ModelConfig mc;
    mc.codebook_size = k;
    mc.d_sub = 16;
    mc.compute_dtype = compute;
    auto model = std::make_shared<PQVAEShared>(mc);
    model->to(dev);
    std::vector<std::pair<std::string, at::Tensor>> params;
    for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
    AdamOptions ao;
    ao.weight_decay = 5e-4;
    ao.fused = adam_impl == "fused";
    Adam adam(params, ao);
    at::Tensor data = at::randn({batch * 8, mc.embed_dim}).to(dev);
    data = data / data.norm(2, {1}, true);
    LossConfig lc;
    auto train_step = [&](int64_t i) {
      at::Tensor x = data.narrow(0, (i % 8) * batch, batch);
      adam.zero_grad();
      auto fwd = model->forward(x);
      auto loss = pqvae_loss(x, fwd, lc);
      loss.total.backward();
      adam.step();
    };
    auto wait_for_device = [&] { params.front().second.sum().item<float>(); };
    for (int i = 0; i < 3; ++i) train_step(i);  // warm-up
    wait_for_device();
    double t0 = now();
    for (int64_t i = 0; i < steps; ++i) train_step(i);
    wait_for_device();  // CUDA queues the steps asynchronously
    double train_rate = steps * batch / (now() - t0);

    at::Tensor big = at::randn({infer_batch, mc.embed_dim}).to(dev);
    model->decode(model->encode(big)).sum().item<float>();
    double t1 = now();
    int reps = 5;
    for (int r = 0; r < reps; ++r) model->decode(model->encode(big)).sum().item<float>();
    double infer_rate = reps * infer_batch / (now() - t1);
    fmt::print("| {} | 16 | {} | {:.0f} | {:.0f} |\n", k, pqvae_raw_bits(mc), train_rate, infer_rate);
  }
  return 0;
}
