// Typed configuration of a training run. Each struct lists its fields once in
// visit(); the YAML reader, the resolved-config writer, `--set` overrides and
// the documentation all walk that list (see util/config.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "util/error.h"

namespace semcodec {

// visit(v) calls, for every field:
//   v.field("key", member, "help text", Limits)  for scalars (bool, int64_t, double, std::string)
//   v.section("key", sub_struct)                for nested structs (which have their own visit)
// Limits: numeric range and/or allowed string values.
struct Limits {
  double min = -1e300, max = 1e300;
  std::vector<std::string> choices;  // for strings; empty = any
  static Limits range(double lo, double hi) { Limits l; l.min = lo; l.max = hi; return l; }
  static Limits at_least(double lo) { Limits l; l.min = lo; return l; }
  static Limits one_of(std::vector<std::string> c) { Limits l; l.choices = std::move(c); return l; }
};

struct SplitConfig {
  std::string mode = "seed";           // seed: random class split; files: class-index lists; all: no split
  int64_t seed = 0;
  int64_t heldout_classes = 200;       // mode=seed: number of held-out classes
  std::string train_classes_file;      // mode=files: .npy / .txt / .yaml list of class indices
  std::string heldout_classes_file;
  template <class V> void visit(V& v) {
    v.field("mode", mode, "how classes are split: seed | files | all", Limits::one_of({"seed", "files", "all"}));
    v.field("seed", seed, "seed of the random class split (mode=seed)", Limits::at_least(0));
    v.field("heldout_classes", heldout_classes, "number of held-out classes (mode=seed)", Limits::at_least(1));
    v.field("train_classes_file", train_classes_file, "class-index list for training (mode=files)", {});
    v.field("heldout_classes_file", heldout_classes_file, "class-index list held out (mode=files)", {});
  }
};

struct DataConfig {
  std::string features;                // feature file (HDF5) for training and validation
  SplitConfig split;
  double max_device_memory_gb = 4.0;   // load the whole set on the device below this size, else stream
  template <class V> void visit(V& v) {
    v.field("features", features, "feature file (.h5) to train on", {});
    v.section("split", split);
    v.field("max_device_memory_gb", max_device_memory_gb, "keep the set on the device when it fits in this", Limits::range(0, 1e6));
  }
};

struct ModelConfig {
  std::string method = "pqvae_shared";
  int64_t embed_dim = 768;
  int64_t hidden_channels = 512;       // first (transposed) conv output
  int64_t body_channels = 256;         // channels of the residual stack
  int64_t residual_layers = 3;
  int64_t residual_channels = 128;     // bottleneck inside each residual layer
  int64_t latent_channels = 128;       // c
  int64_t d_sub = 16;                  // sub-vector size; c / d_sub indices per position
  int64_t codebook_size = 4;           // K
  bool center_features = true;         // encode the direction from the training mean (see docs/architecture.md)
  std::string compute_dtype = "float32";  // float32 | bfloat16 | auto: type of the networks' convolutions
  std::string codebook_init = "kmeans";  // kmeans | sample | uniform (paper)
  int64_t init_samples = 20000;        // sub-vectors drawn for kmeans/sample init
  int64_t quantizer_warmup_steps = 100;  // steps trained without quantization before the codebook is initialized
  bool dead_code_restart = true;
  int64_t dead_code_after_steps = 100; // a codeword unused this many steps is re-seeded
  // vqvae_kmeans_pq (docs/baselines.md): codebooks updated by EMA of assigned means.
  double kmeans_ema_decay = 0.99;
  double kmeans_ema_epsilon = 1e-5;    // Laplace smoothing of the EMA counts
  bool kmeans_per_position = false;    // one codebook per (position, sub-space) instead of per sub-space
  // learned_sq, learned_sq_per_dim.
  int64_t sq_bits = 1;                 // b: 2^b levels per dimension
  int64_t sq_iterations = 100;         // Lloyd-Max iterations (stops earlier when the levels settle)
  // int8, int4.
  std::string uniform_scale = "per_dim";  // per_dim | global: max |x| fitted on the training features
  // faiss_pq, faiss_opq, faiss_rq.
  int64_t faiss_bits = 0;              // bit budget M * nbits (0 = take faiss_m)
  int64_t faiss_m = 0;                 // sub-quantizers (PQ) or stages (RQ); 0 = faiss_bits / faiss_nbits
  int64_t faiss_nbits = 8;             // bits per sub-quantizer index
  bool faiss_pad_dims = true;          // PQ/OPQ: pad D with zero dims to a multiple of M
  int64_t faiss_rq_beam = 5;           // residual quantizer beam size (training and encoding)
  int64_t faiss_opq_iterations = 10;   // OPQ outer iterations (FAISS's own default is 50)
  int64_t faiss_train_rows = 0;        // rows used to fit FAISS (0 = all training rows)
  template <class V> void visit(V& v) {
    v.field("method", method,
            "compression method: the paper's network or a baseline (docs/baselines.md)",
            Limits::one_of({"pqvae_shared", "vqvae_kmeans_pq", "learned_sq", "learned_sq_per_dim", "faiss_pq",
                            "faiss_opq", "faiss_rq", "float16", "int8", "int4"}));
    v.field("embed_dim", embed_dim, "CLIP embedding dimension D", Limits::range(8, 65536));
    v.field("hidden_channels", hidden_channels, "channels after the first transposed conv", Limits::range(1, 65536));
    v.field("body_channels", body_channels, "channels of the residual stack", Limits::range(1, 65536));
    v.field("residual_layers", residual_layers, "number of residual layers", Limits::range(0, 64));
    v.field("residual_channels", residual_channels, "bottleneck channels inside a residual layer", Limits::range(1, 65536));
    v.field("latent_channels", latent_channels, "latent channels c at each of the 25 positions", Limits::range(1, 65536));
    v.field("d_sub", d_sub, "sub-vector dimension (must divide latent_channels)", Limits::range(1, 65536));
    v.field("codebook_size", codebook_size, "shared codebook size K", Limits::range(2, 65536));
    v.field("center_features", center_features,
            "subtract the training-set mean direction before encoding and add it back after decoding "
            "(false = the paper's network exactly)", {});
    v.field("compute_dtype", compute_dtype,
            "type the encoder and decoder convolutions compute in: float32; bfloat16 (trains ~1.7x faster on CPUs "
            "with AMX / AVX512-BF16; also runs on GPUs; weights, optimizer, normalizations, quantizer and loss stay "
            "float32); auto = bfloat16 when training on a CPU that computes it natively, else float32 (GPUs included)",
            Limits::one_of({"float32", "bfloat16", "auto"}));
    v.field("codebook_init", codebook_init, "kmeans | sample (encoder outputs) | uniform (paper, collapses)",
            Limits::one_of({"kmeans", "sample", "uniform"}));
    v.field("quantizer_warmup_steps", quantizer_warmup_steps,
            "steps trained without quantization before the codebook is fitted to the encoder outputs "
            "(0 = initialize at step 0; the encoder's outputs barely depend on the input at initialization)",
            Limits::range(0, 1e9));
    v.field("init_samples", init_samples, "encoder sub-vectors used to initialize the codebook", Limits::range(1, 1e8));
    v.field("dead_code_restart", dead_code_restart, "re-seed codewords that stay unused", {});
    v.field("dead_code_after_steps", dead_code_after_steps, "steps without use before a restart", Limits::range(1, 1e9));
    v.field("kmeans_ema_decay", kmeans_ema_decay, "vqvae_kmeans_pq: EMA decay of the codebook statistics",
            Limits::range(0, 0.99999));
    v.field("kmeans_ema_epsilon", kmeans_ema_epsilon, "vqvae_kmeans_pq: Laplace smoothing of the EMA counts",
            Limits::range(0, 1));
    v.field("kmeans_per_position", kmeans_per_position,
            "vqvae_kmeans_pq: one codebook per (position, sub-space) instead of one per sub-space", {});
    v.field("sq_bits", sq_bits, "learned_sq*: bits per dimension b (2^b Lloyd-Max levels in [-0.5, 0.5])",
            Limits::range(1, 8));
    v.field("sq_iterations", sq_iterations, "learned_sq*: maximum Lloyd-Max iterations", Limits::range(1, 1e6));
    v.field("uniform_scale", uniform_scale, "int8 / int4: per_dim | global max |x| (fitted on the training rows)",
            Limits::one_of({"per_dim", "global"}));
    v.field("faiss_bits", faiss_bits, "faiss_*: bit budget M * nbits (0 = use faiss_m)", Limits::range(0, 1e6));
    v.field("faiss_m", faiss_m, "faiss_*: sub-quantizers (PQ, OPQ) or stages (RQ); 0 = faiss_bits / faiss_nbits",
            Limits::range(0, 65536));
    v.field("faiss_nbits", faiss_nbits, "faiss_*: bits per index (2^nbits centroids each)", Limits::range(1, 16));
    v.field("faiss_pad_dims", faiss_pad_dims,
            "faiss_pq / faiss_opq: when M does not divide D, spread D over a multiple of M dims with zeros "
            "(false = error)", {});
    v.field("faiss_rq_beam", faiss_rq_beam, "faiss_rq: beam size of training and encoding", Limits::range(1, 1024));
    v.field("faiss_opq_iterations", faiss_opq_iterations,
            "faiss_opq: outer iterations alternating rotation and PQ (FAISS's default is 50; the rotation "
            "changes little after ~10)",
            Limits::range(1, 10000));
    v.field("faiss_train_rows", faiss_train_rows, "faiss_*: training rows used to fit (0 = all)",
            Limits::range(0, 1e12));
  }
};

// Cross-field checks of the method-specific model keys.
inline void validate_method_keys(const ModelConfig& m, const std::string& source) {
  const bool faiss = m.method == "faiss_pq" || m.method == "faiss_opq" || m.method == "faiss_rq";
  if (faiss) {
    require(m.faiss_bits > 0 || m.faiss_m > 0, "{}: model.faiss_bits: method {} needs faiss_bits or faiss_m", source,
            m.method);
    if (m.faiss_bits > 0)
      require(m.faiss_bits % m.faiss_nbits == 0, "{}: model.faiss_bits: {} is not a multiple of faiss_nbits ({})",
              source, m.faiss_bits, m.faiss_nbits);
    if (m.faiss_bits > 0 && m.faiss_m > 0)
      require(m.faiss_m * m.faiss_nbits == m.faiss_bits,
              "{}: model.faiss_m: {} x faiss_nbits {} = {} bits, but faiss_bits is {}", source, m.faiss_m,
              m.faiss_nbits, m.faiss_m * m.faiss_nbits, m.faiss_bits);
    const int64_t sub = m.faiss_m > 0 ? m.faiss_m : m.faiss_bits / m.faiss_nbits;
    if (m.method != "faiss_rq") {
      require(sub <= m.embed_dim, "{}: model.faiss_m: {} sub-quantizers for D = {}", source, sub, m.embed_dim);
      require(m.faiss_pad_dims || m.embed_dim % sub == 0,
              "{}: model.faiss_m: {} sub-quantizers do not divide D = {} (set model.faiss_pad_dims: true to pad)",
              source, sub, m.embed_dim);
    }
  }
}

struct LossConfig {
  double alpha = 10.0;  // weight of (1 - cos)
  double beta = 0.25;   // commitment weight
  template <class V> void visit(V& v) {
    v.field("alpha", alpha, "weight of the cosine distortion term", Limits::range(0, 1e6));
    v.field("beta", beta, "weight of the commitment term", Limits::range(0, 1e6));
  }
};

struct TrainConfig {
  int64_t epochs = 30;
  int64_t batch_size = 64;
  double lr = 1e-3;
  double weight_decay = 5e-4;
  std::string weight_decay_mode = "decoupled";  // decoupled (AdamW) | l2 (torch.optim.Adam, the release)
  int64_t lr_step_epochs = 20;
  double lr_gamma = 0.1;
  int64_t lr_warmup_steps = 100;  // linear ramp: without it lr 1e-3 kills the ReLUs on real CLIP features
  int64_t seed = 0;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int64_t threads = 0;          // CPU intra-op threads, 0 = all cores
  int64_t max_steps_per_epoch = 0;  // 0 = full epochs
  int64_t val_max_rows = 0;         // 0 = validate on every held-out row
  double dist_timeout_s = 300;      // collectives of multi-process runs (docs/distributed.md)
  double dist_bucket_mb = 25;       // gradient all-reduce bucket size (MiB)
  std::string dist_backend = "auto";  // auto | gloo | nccl
  template <class V> void visit(V& v) {
    v.field("epochs", epochs, "training epochs", Limits::range(1, 1e7));
    v.field("batch_size", batch_size, "samples per step", Limits::range(1, 1e7));
    v.field("lr", lr, "Adam learning rate", Limits::range(0, 10));
    v.field("weight_decay", weight_decay, "Adam weight decay", Limits::range(0, 10));
    v.field("weight_decay_mode", weight_decay_mode,
            "decoupled (AdamW) | l2 (the release's Adam; with lr >= 1e-3 it kills the network)",
            Limits::one_of({"decoupled", "l2"}));
    v.field("lr_step_epochs", lr_step_epochs, "decay the learning rate every this many epochs", Limits::range(1, 1e7));
    v.field("lr_gamma", lr_gamma, "learning-rate decay factor", Limits::range(0, 1));
    v.field("lr_warmup_steps", lr_warmup_steps, "ramp the learning rate linearly from 0 over this many first steps",
            Limits::range(0, 1e12));
    v.field("seed", seed, "seed of initialization, shuffling and restarts", Limits::at_least(0));
    v.field("device", device, "auto | cpu | cuda | cuda:N", {});
    v.field("threads", threads, "CPU threads (0 = all cores)", Limits::range(0, 4096));
    v.field("max_steps_per_epoch", max_steps_per_epoch, "cap on steps per epoch (0 = whole epoch)", Limits::range(0, 1e12));
    v.field("val_max_rows", val_max_rows,
            "per-epoch validation on at most this many held-out rows, an even stride (0 = all; eval always uses all)",
            Limits::range(0, 1e12));
    v.field("dist_timeout_s", dist_timeout_s,
            "multi-process runs: seconds a rank waits for the others before failing (rendezvous and every collective)",
            Limits::range(1, 1e7));
    v.field("dist_bucket_mb", dist_bucket_mb,
            "multi-process runs: MiB of gradients per all-reduce bucket; a bucket is sent as soon as backward has "
            "produced all of its gradients, overlapping communication with the rest of backward",
            Limits::range(0.001, 4096));
    v.field("dist_backend", dist_backend,
            "multi-process runs: c10d backend; auto = nccl when train.device is CUDA and the build has NCCL, else "
            "gloo (CUDA tensors then go through host copies)",
            Limits::one_of({"auto", "gloo", "nccl"}));
  }
};

struct OutputConfig {
  std::string dir = "runs/default";
  template <class V> void visit(V& v) { v.field("dir", dir, "run directory (checkpoints, logs, resolved config)", {}); }
};

struct RunConfig {
  DataConfig data;
  ModelConfig model;
  LossConfig loss;
  TrainConfig train;
  OutputConfig output;
  template <class V> void visit(V& v) {
    v.section("data", data);
    v.section("model", model);
    v.section("loss", loss);
    v.section("train", train);
    v.section("output", output);
  }
};

}  // namespace semcodec
