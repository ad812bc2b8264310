// Rates and speeds of the real bitstreams for the paper's Table 1 settings
// (d_sub 16; K = 4, 8, 16, 32, 64, 1024) on synthetic CLIP-like data.
//
// Model: PQVAE-shared with the default layer sizes. With --train-steps N > 0
// (default 150) it is briefly trained by `train_run` (quantizer warm-up, then
// the k-means codebook, batch 64, lr 3e-3); with 0 it is freshly initialized
// with a k-means codebook on encoder sub-vectors (near-degenerate indices: a
// random encoder barely depends on its input). Tables are fitted on the
// training classes' indices; every rate is measured on the held-out classes'
// rows from the bytes of real streams.
//
// Usage: see kUsage (or run with --help).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <chrono>
#include <sstream>
#include <string>

#include "bench_args.h"
#include "codec/codec.h"
#include "codec/entropy/rate.h"
#include "data/device.h"
#include "data/feature_set.h"
#include "data/feature_store.h"
#include "data/synthetic.h"
#include "models/checkpoint.h"
#include "models/pqvae/pqvae_shared.h"
#include "train/trainer.h"
#include "util/atomic_file.h"

using namespace semcodec;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Calls f repeatedly for at least `min_s` seconds; returns seconds per call.
template <class F>
double time_per_call(F&& f, double min_s = 0.3) {
  int reps = 0;
  const double t0 = now();
  double t = t0;
  do {
    f();
    ++reps;
    t = now();
  } while (t - t0 < min_s);
  return (t - t0) / reps;
}

std::vector<int32_t> rows_of(const std::vector<int32_t>& idx, int64_t slots, int64_t first, int64_t count) {
  return {idx.begin() + first * slots, idx.begin() + (first + count) * slots};
}
}  // namespace

constexpr const char* kUsage =
    "usage: bench_codec [--classes C] [--per-class P] [--heldout H] [--threads T] "
    "[--k 4,8,...] [--train-steps N] [--workdir DIR]";

int main(int argc, char** argv) {
  if (int rc = check_bench_args(argc, argv, kUsage); rc >= 0) return rc;
  int64_t classes = 100, per_class = 40, heldout = 20, threads = 0, train_steps = 150;
  std::string workdir = "/tmp/semcodec-bench-codec";
  std::vector<int64_t> ks = {4, 8, 16, 32, 64, 1024};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--classes") classes = std::stoll(v);
    else if (a == "--per-class") per_class = std::stoll(v);
    else if (a == "--heldout") heldout = std::stoll(v);
    else if (a == "--threads") threads = std::stoll(v);
    else if (a == "--train-steps") train_steps = std::stoll(v);
    else if (a == "--workdir") workdir = v;
    else if (a == "--k") {
      ks.clear();
      std::stringstream ss(v);
      for (std::string t; std::getline(ss, t, ',');) ks.push_back(std::stoll(t));
    } else {
      fmt::print(stderr, "unknown option {}\n", a);
      return 2;
    }
  }
  configure_threads(threads);
  SyntheticOptions so;
  so.num_classes = classes;
  so.per_class = per_class;
  FeatureSet set = make_synthetic(so);  // rows are class-major: the last `heldout` classes are held out
  std::vector<int64_t> train_classes, heldout_classes;
  for (int64_t c = 0; c < classes; ++c) (c < classes - heldout ? train_classes : heldout_classes).push_back(c);
  const std::string data = workdir + "/synthetic.h5";
  if (train_steps > 0) {
    ensure_dir(workdir);
    write_feature_file(data, set);
  }
  at::Tensor train = select_classes(set, train_classes).features, test = select_classes(set, heldout_classes).features;
  const int64_t n_train = train.size(0), n_test = test.size(0);
  fmt::print("# bench_codec: synthetic D=768, {} training rows ({} classes) fit the tables, {} held-out rows "
             "({} classes) are measured; model {}; CPU threads {}\n\n",
             n_train, classes - heldout, n_test, heldout,
             train_steps > 0 ? fmt::format("trained {} steps (batch 64)", train_steps) : "k-means init, untrained",
             at::get_num_threads());

  const TableMode modes[] = {TableMode::shared, TableMode::per_subspace, TableMode::per_position, TableMode::per_slot};
  std::string rates =
      "| K | raw | tables | entropy (plug-in) | ideal under tables | Huffman | rANS | rANS overhead/item |\n"
      "|---:|---:|---|---:|---:|---:|---:|---:|\n";
  std::string speed =
      "| K | coder | encode Mindex/s | decode Mindex/s | compress features/s | decompress features/s |\n"
      "|---:|---|---:|---:|---:|---:|\n";
  for (int64_t k : ks) {
    ModelConfig mc;
    mc.codebook_size = k;
    mc.d_sub = 16;
    at::manual_seed(k);
    auto model = std::make_shared<PQVAEShared>(mc);
    model->eval();
    if (train_steps > 0) {
      RunConfig cfg;
      cfg.data.features = data;
      cfg.data.split.mode = "files";
      cfg.model = mc;
      cfg.model.quantizer_warmup_steps = std::min<int64_t>(100, train_steps / 2);
      cfg.train.epochs = 1;
      cfg.train.batch_size = 64;
      cfg.train.lr = 3e-3;
      cfg.train.max_steps_per_epoch = train_steps;
      cfg.train.threads = threads;
      cfg.train.device = "cpu";
      cfg.output.dir = fmt::format("{}/k{}", workdir, k);
      write_file_atomic(workdir + "/train.txt", fmt::format("{}", fmt::join(train_classes, "\n")) + "\n");
      write_file_atomic(workdir + "/heldout.txt", fmt::format("{}", fmt::join(heldout_classes, "\n")) + "\n");
      cfg.data.split.train_classes_file = workdir + "/train.txt";
      cfg.data.split.heldout_classes_file = workdir + "/heldout.txt";
      TrainOptions topt;
      topt.overwrite = true;
      topt.progress = false;
      topt.config_source = "bench_codec";
      const double t0 = now();
      TrainResult r = train_run(cfg, topt);
      fmt::print(stderr, "K={}: trained {} steps in {:.0f} s\n", k, train_steps, now() - t0);
      model = load_pqvae_shared(load_checkpoint(r.best_checkpoint), r.best_checkpoint);
    } else {
      at::NoGradGuard g;
      at::Tensor unit = train / train.norm(2, {1}, true);
      model->set_feature_mean(unit.mean(0));
      at::Tensor sub = model->forward(train.narrow(0, 0, std::min<int64_t>(n_train, 400))).pq.subvectors;
      at::Tensor pick = at::randperm(sub.size(0)).narrow(0, 0, std::min<int64_t>(sub.size(0), 20000));
      model->pq->init_from_data(sub.index_select(0, pick), "kmeans", static_cast<uint64_t>(k));
    }
    const int64_t slots = model->slots(), subspaces = model->pq->subspaces();
    const double t_enc0 = now();
    std::vector<int32_t> tr_idx = indices_to_int32(model->encode(train));
    const double t_enc = now() - t_enc0;
    std::vector<int32_t> te_idx = indices_to_int32(model->encode(test));
    const int64_t raw = raw_bits_per_item(std::vector<int64_t>(static_cast<size_t>(slots), k));
    for (TableMode mode : modes) {
      EntropyModel em = EntropyModel::fit(tr_idx.data(), n_train, slots, {k}, mode, 25, subspaces);
      const double h = empirical_entropy_bits(te_idx.data(), n_test, slots, {k}, mode, 25, subspaces);
      const double ideal = model_code_bits(em, te_idx.data(), n_test);
      double bits[3] = {0, 0, 0};
      for (CoderId id : {CoderId::huffman, CoderId::rans}) {
        auto coder = make_coder(id, em);
        std::vector<uint8_t> s = encode_stream(*coder, Fingerprint{}, te_idx.data(), n_test);
        DecodedStream d = decode_stream(s.data(), s.size(), *coder, Fingerprint{});
        bits[static_cast<int>(id)] = stream_rate(d, s.size()).payload_bits_per_item();
        if (mode == TableMode::shared || mode == TableMode::per_slot) {
          const double enc = time_per_call([&] { encode_stream(*coder, Fingerprint{}, te_idx.data(), n_test); });
          const double dec = time_per_call([&] { decode_stream(s.data(), s.size(), *coder, Fingerprint{}); });
          const double nidx = static_cast<double>(n_test * slots);
          speed += fmt::format("| {} | {} ({}) | {:.1f} | {:.1f} | | |\n", k, coder_name(id), table_mode_name(mode),
                               nidx / enc / 1e6, nidx / dec / 1e6);
        }
      }
      rates += fmt::format("| {} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} |\n", k, raw,
                           table_mode_name(mode), h, ideal, bits[1], bits[2], bits[2] - ideal);
    }
    // End to end with the networks: rANS, per-slot tables.
    EntropyModel em = EntropyModel::fit(tr_idx.data(), n_train, slots, {k}, TableMode::per_slot, 25, subspaces);
    Codec codec(model, em, CoderId::rans, codec_fingerprint(decoding_tensors(*model), CoderId::rans, em));
    codec.set_batch_size(256);
    std::vector<uint8_t> stream;
    const double c0 = now();
    stream = codec.encode(test);
    const double comp = now() - c0;
    const double d0 = now();
    CodecDecoded dec = codec.decode(stream);
    const double decomp = now() - d0;
    speed += fmt::format("| {} | end to end (rANS per_slot, networks incl.) | | | {:.0f} | {:.0f} |\n", k,
                         n_test / comp, n_test / decomp);
    fmt::print(stderr, "K={} done (encoder on {} training rows: {:.1f} s)\n", k, n_train, t_enc);
  }
  fmt::print("## Bits per image (payload bits from real streams, held-out rows)\n\n{}\n", rates);
  fmt::print("## Throughput\n\n{}\n", speed);
  return 0;
}
