// What compresses: the method (a name registered in models/method_registry.h),
// the embedding dimension, the PQ-VAE network that the network methods share
// (docs/architecture.md), and every registered method's own options. The
// model: section of a run config (models/run_config.h); the YAML and JSON
// keys stay flat (model.faiss_bits, ...), so configs and checkpoints of every
// version read the same.
#pragma once
#include <cstdint>
#include <string>
#include <typeinfo>
#include <vector>

#include "util/config_fields.h"
#include "util/error.h"

namespace semcodec {

// The registered method names, in registry order, and every registered
// method's options with their defaults (both in method_registry.cpp).
std::vector<std::string> method_names();
const OptionGroups& registered_method_options();

struct ModelConfig {
  ModelConfig();
  std::string method = "pqvae_shared";
  int64_t embed_dim = 768;
  int64_t hidden_channels = 512;       // first (transposed) conv output
  int64_t body_channels = 256;         // channels of the residual stack
  int64_t residual_layers = 3;
  int64_t residual_channels = 128;     // bottleneck inside each residual layer
  int64_t latent_channels = 128;       // c
  int64_t d_sub = 16;                  // sub-vector size; 25 * c / d_sub indices per item
  int64_t codebook_size = 4;           // K
  bool center_features = true;         // encode the direction from the training mean (see docs/architecture.md)
  std::string compute_dtype = "float32";  // float32 | bfloat16 | auto: type of the networks' convolutions
  std::string codebook_init = "kmeans";  // kmeans | sample | uniform (paper)
  int64_t init_samples = 20000;        // sub-vectors drawn for kmeans/sample init
  int64_t quantizer_warmup_steps = 100;  // steps trained without quantization before the codebook is initialized
  bool dead_code_restart = true;
  int64_t dead_code_after_steps = 100; // a codeword unused this many steps is re-seeded
  // Every registered method's own options (the kmeans_*, sq_*, faiss_* keys,
  // ...), each type once: registered_method_options() copied.
  OptionGroups method_options;

  // The options of type T (e.g. FaissOptions); Error when no registered method has them.
  template <class T>
  T& options() {
    T* o = method_options.get<T>();
    require(o != nullptr, "model config: no registered method has options of type {}", typeid(T).name());
    return *o;
  }
  template <class T>
  const T& options() const {
    return const_cast<ModelConfig*>(this)->options<T>();
  }

  template <class V> void visit(V& v) {
    v.field("method", method,
            "compression method: the paper's network or a baseline (docs/baselines.md)",
            Limits::one_of(method_names()));
    v.field("embed_dim", embed_dim, "CLIP embedding dimension D", Limits::range(8, 65536));
    v.field("hidden_channels", hidden_channels, "channels after the first transposed conv", Limits::range(1, 65536));
    v.field("body_channels", body_channels, "channels of the residual stack", Limits::range(1, 65536));
    v.field("residual_layers", residual_layers, "number of residual layers", Limits::range(0, 64));
    v.field("residual_channels", residual_channels, "bottleneck channels inside a residual layer", Limits::range(1, 65536));
    v.field("latent_channels", latent_channels, "latent channels c at each of the 25 positions", Limits::range(1, 65536));
    v.field("d_sub", d_sub, "sub-vector dimension: divides latent_channels, or for pqvae_shared the 25 x latent_channels "
            "latent values (sub-vectors then run across positions, as in the paper's release)", Limits::range(1, 65536));
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
    method_options.visit(v);
  }
};

inline ModelConfig::ModelConfig() : method_options(registered_method_options()) {}

}  // namespace semcodec
