// Per-method fit (training) time and encode / decode throughput of every
// registered method (docs/baselines.md) on the built-in synthetic CLIP-like
// data: 800 classes x 50 = 40,000 training rows, 10,000 held-out rows,
// D = 768. The fitted methods are fitted once on all training rows; the
// network methods report training samples/s of their optimizer steps (they
// train for epochs).
// Usage: see kUsage (or run with --help).
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <chrono>
#include <sstream>
#include <string>

#include "bench_args.h"
#include "data/device.h"
#include "data/synthetic.h"
#include "eval/classifiers.h"
#include "models/method_registry.h"
#include "models/pqvae/pqvae.h"
#include "models/quantizers/faiss_quantizer.h"
#include "models/quantizers/scalar_quantizer.h"
#include "train/adam.h"
#include "train/pqvae_objective.h"
#include "util/error.h"

using namespace semcodec;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

ModelConfig method_config(const std::string& method, int64_t rq_beam) {
  ModelConfig m;
  m.method = method;
  m.options<ScalarQuantizerOptions>().bits = 1;
  m.options<FaissOptions>().bits = 400;
  m.options<FaissOptions>().nbits = 8;
  m.options<FaissOptions>().rq_beam = rq_beam;
  return m;
}

// A network method: its codebooks fitted to the encoder outputs of 800 rows,
// then `steps` optimizer steps with the PQ module's own update after each.
void bench_network(const std::string& method, const at::Tensor& train, const at::Tensor& test, int64_t steps) {
  auto model = std::dynamic_pointer_cast<PQVAE>(make_quantizer(method_config(method, 1)));
  {
    at::NoGradGuard g;
    model->pq_module().fit(model->forward(train.narrow(0, 0, 800), true).latent, "kmeans", 0, 0);
  }
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  Adam adam(params, AdamOptions{});
  LossConfig lc;
  const int64_t batch = 64, n_train = train.size(0);
  double t0 = now();
  for (int64_t s = 0; s < steps; ++s) {
    at::Tensor x = train.narrow(0, (s * batch) % (n_train - batch), batch);
    adam.zero_grad();
    PQVAEForward fwd = model->forward(x);
    pqvae_loss(x, fwd, lc).total.backward();
    adam.step();
    const CodebookUpdate u = model->pq_module().update_after_step(fwd.latent, fwd.pq, s + 1, 0, {});
    if (!u.parameter.empty()) adam.reset_rows("pq." + u.parameter, u.rows);
  }
  const double train_rate = steps * batch / (now() - t0);
  model->eval();
  at::Tensor x = test.narrow(0, 0, std::min<int64_t>(2048, test.size(0)));
  double t1 = now();
  at::Tensor idx = model->encode(x);
  double t2 = now();
  at::Tensor rec = model->decode(idx);
  double t3 = now();
  fmt::print("| {} | {} | {:.0f} train samples/s | {:.0f} | {:.0f} | {:.4f} (after {} steps) |\n", method,
             model->raw_bits(), train_rate, x.size(0) / (t2 - t1), x.size(0) / (t3 - t2), mean_cosine(rec, x), steps);
}
}  // namespace

constexpr const char* kUsage =
    "usage: bench_baselines [--classes C] [--threads T] [--methods a,b,...] [--rq-beam B] "
    "[--network-steps N]";

int main(int argc, char** argv) {
  if (int rc = check_bench_args(argc, argv, kUsage); rc >= 0) return rc;
  int64_t classes = 1000, threads = 0, rq_beam = 5, network_steps = 20;
  std::string methods;  // default: every registered method
  for (const std::string& m : method_names()) methods += (methods.empty() ? "" : ",") + m;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--classes") classes = std::stoll(argv[i + 1]);
    else if (a == "--threads") threads = std::stoll(argv[i + 1]);
    else if (a == "--methods") methods = argv[i + 1];
    else if (a == "--rq-beam") rq_beam = std::stoll(argv[i + 1]);
    else if (a == "--network-steps") network_steps = std::stoll(argv[i + 1]);
    else { fmt::print(stderr, "unknown option {}\n", a); return 2; }
  }
  configure_threads(threads);
  SyntheticOptions so;
  so.num_classes = classes;
  FeatureSet set = make_synthetic(so);
  const int64_t n_train = set.size() * 4 / 5;  // rows are class-major: the first 80% of classes train
  at::Tensor train = set.features.narrow(0, 0, n_train), test = set.features.narrow(0, n_train, set.size() - n_train);
  fmt::print("# Baselines on synthetic data: {} training rows, {} test rows, D = {}, threads {}\n", train.size(0),
             test.size(0), set.dim(), at::get_num_threads());
  fmt::print("| method | raw bits | fit s | encode items/s | decode items/s | test cosine |\n|---|---|---|---|---|---|\n");
  std::stringstream list(methods);
  for (std::string method; std::getline(list, method, ',');) {
    if (method_info(method).kind == MethodKind::network) {
      bench_network(method, train, test, network_steps);
      continue;
    }
    std::shared_ptr<FittedQuantizer> q;
    try {
      q = make_fitted_quantizer(method_config(method, rq_beam));
    } catch (const Error& e) {  // e.g. the FAISS methods in a build without FAISS
      fmt::print("| {} | - | {} | | | |\n", method, e.what());
      continue;
    }
    double t0 = now();
    q->fit(train);
    double t1 = now();
    at::Tensor idx = q->encode(test);
    double t2 = now();
    at::Tensor rec = q->decode(idx);
    double t3 = now();
    fmt::print("| {} | {} | {:.2f} | {:.0f} | {:.0f} | {:.4f} |\n", method, q->raw_bits(), t1 - t0,
               test.size(0) / (t2 - t1), test.size(0) / (t3 - t2), mean_cosine(rec, test));
    std::fflush(stdout);
  }
  return 0;
}
