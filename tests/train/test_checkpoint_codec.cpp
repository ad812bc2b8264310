// Entropy tables stored in checkpoints and Codecs loaded from them.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <cstring>

#include "codec/checkpoint_codec.h"
#include "codec/entropy_fit.h"
#include "data/feature_set.h"
#include "data/feature_store.h"
#include "data/safetensors.h"
#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "models/pqvae/pqvae.h"
#include "models/pqvae/pqvae_shared.h"
#include "test_support.h"
#include "train_fixture.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
// An untrained but valid checkpoint of the fixture's model, with a split.
std::string write_checkpoint(const TempDir& d, const std::string& features) {
  RunConfig cfg = test::small_run(features, d.file("run"));
  at::manual_seed(3);
  PQVAEShared model(cfg.model);
  model.pq->init_uniform(3);
  Checkpoint ck;
  ck.config = cfg;
  for (int64_t c = 0; c < 100; ++c) (c < 80 ? ck.train_classes : ck.heldout_classes).push_back(c);
  ck.dataset = {{"features", features}, {"num_classes", 100}, {"dataset", "synthetic"}};
  ck.model = module_state(model);
  std::string path = d.file("ck.safetensors");
  save_checkpoint(path, ck);
  return path;
}

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.numel() * ca.element_size())) == 0;
}
}  // namespace

TEST_CASE("a checkpoint without tables asks for fit-entropy", "[train][codec]") {
  TempDir d("ckcodec-missing");
  std::string ck = write_checkpoint(d, test::write_small_synthetic(d));
  try {
    load_codec(ck, "cpu");
    FAIL("loaded a codec without tables");
  } catch (const Error& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("fit-entropy") && Catch::Contains("ck.safetensors"));
  }
}

TEST_CASE("fit-entropy stores integer tables and the loaded codec decodes bit-exactly", "[train][codec]") {
  TempDir d("ckcodec-fit");
  const std::string features = test::write_small_synthetic(d);
  const std::string ck = write_checkpoint(d, features);
  EntropyFitOptions opt;
  opt.device = "cpu";
  opt.progress = false;
  opt.coder = "rans";
  for (const char* tables : {"auto", "shared", "per-subspace", "per-position", "per-slot"}) {
    INFO(tables);
    opt.tables = tables;
    EntropyFitReport rep = fit_entropy_from_features(ck, "", opt);
    CHECK(rep.items == 80 * 20);  // the training classes' rows only
    CHECK(rep.slots == 25 * 4);
    CHECK(rep.raw_bits == 300);
    if (std::string(tables) != "auto") CHECK(rep.table_mode == tables);
    // Gibbs: coding the indices with any tables costs at least their plug-in entropy.
    CHECK(rep.model_bits >= rep.entropy_bits.at(rep.table_mode) - 1e-9);
    CHECK(rep.model_bits <= rep.raw_bits + 1e-9);
    CHECK(rep.heldout_bits.size() == 4);

    Checkpoint loaded = load_checkpoint(ck);
    REQUIRE(loaded.entropy.count("tables"));
    CHECK(loaded.entropy.at("tables").scalar_type() == at::kLong);
    CHECK_THAT(loaded.extra_metadata.at("entropy"), Catch::Contains("\"coder\":\"rans\""));
    auto codec = load_codec(ck, "cpu");
    CHECK(codec->fingerprint() == rep.fingerprint);
    CHECK(codec->coder_id() == CoderId::rans);

    auto model = load_pqvae_shared(loaded, ck);
    FeatureSet set = read_feature_file(features);
    at::Tensor x = set.features.narrow(0, 0, 300);
    std::vector<uint8_t> bytes = codec->encode(x);
    CodecDecoded dec = codec->decode(bytes);
    CHECK(bit_equal(dec.indices, model->encode(x)));
    CHECK(bit_equal(dec.features, model->decode(model->encode(x))));
  }
  // Refitting with another coder changes the fingerprint: old streams are refused.
  auto rans = load_codec(ck, "cpu");
  FeatureSet set = read_feature_file(features);
  std::vector<uint8_t> old_stream = rans->encode(set.features.narrow(0, 0, 10));
  opt.coder = "huffman";
  fit_entropy_from_features(ck, features, opt);
  auto huff = load_codec(ck, "cpu");
  CHECK(huff->fingerprint() != rans->fingerprint());
  CHECK_THROWS_WITH(huff->decode(old_stream), Catch::Contains("another checkpoint"));

  // auto keeps an entropy coder only when it saves over 1% of the measured fixed-length bytes.
  opt.coder = "auto";
  opt.tables = "auto";
  const EntropyFitReport a = fit_entropy_from_features(ck, "", opt);
  const double raw = a.coder_bits.at("raw"), huffman = a.coder_bits.at("huffman"), rans_bits = a.coder_bits.at("rans");
  CHECK(raw == 8.0 * 38);  // 300 bits per item, byte-aligned
  const std::string smaller = huffman < rans_bits ? "huffman" : "rans";
  CHECK(a.coder == (std::min(huffman, rans_bits) < 0.99 * raw ? smaller : std::string("raw")));
  CHECK(load_codec(ck, "cpu")->coder_id() == parse_coder_id(a.coder));
}

TEST_CASE("corrupt entropy tables in a checkpoint are a clean error", "[train][codec]") {
  TempDir d("ckcodec-corrupt");
  const std::string features = test::write_small_synthetic(d);
  const std::string ck = write_checkpoint(d, features);
  EntropyFitOptions opt;
  opt.device = "cpu";
  opt.progress = false;
  fit_entropy_from_features(ck, features, opt);
  Checkpoint c = load_checkpoint(ck);
  at::Tensor t = c.entropy.at("tables").clone();
  t[t.numel() - 1] = 0;  // a zero count is invalid
  c.entropy["tables"] = t;
  save_checkpoint(ck, c);
  CHECK_THROWS_WITH(load_codec(ck, "cpu"), Catch::Contains("entropy.tables"));
  c.entropy["tables"] = t.narrow(0, 0, 5);
  save_checkpoint(ck, c);
  CHECK_THROWS_WITH(load_codec(ck, "cpu"), Catch::Contains("entropy.tables"));
}

TEST_CASE("a bounded fit uses an even stride of the training rows, and tables copy between equal checkpoints",
          "[train][codec]") {
  TempDir d("ckcodec-stride");
  const std::string features = test::write_small_synthetic(d);
  const std::string ck = write_checkpoint(d, features);
  Checkpoint a = load_checkpoint(ck), b = load_checkpoint(ck);
  auto model = load_pqvae_shared(a, ck);
  const at::Tensor x = read_feature_file(features).features.narrow(0, 0, 1000);
  EntropyFitOptions opt;
  opt.device = "cpu";
  opt.progress = false;
  opt.tables = "per-slot";
  opt.max_items = 40;
  EntropyFitReport sampled = fit_checkpoint_entropy(a, *model, x, opt);
  CHECK(sampled.items == 40);
  // Rows 0, 25, 50, ..., 975 picked by hand: the same tables.
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < 40; ++i) rows.push_back(i * 25);
  opt.max_items = 0;
  EntropyFitReport by_hand = fit_checkpoint_entropy(b, *model, x.index_select(0, at::tensor(rows)), opt);
  CHECK(by_hand.items == 40);
  CHECK(bit_equal(a.entropy.at("tables"), b.entropy.at("tables")));
  CHECK(sampled.fingerprint == by_hand.fingerprint);
  opt.max_items = -1;
  CHECK_THROWS_WITH(fit_checkpoint_entropy(b, *model, x, opt), Catch::Contains("max_items"));

  save_checkpoint(ck, a);
  const std::string twin = d.file("twin.safetensors");
  Checkpoint bare = load_checkpoint(ck);
  bare.entropy.clear();
  bare.extra_metadata.erase("entropy");
  save_checkpoint(twin, bare);
  copy_entropy_tables(ck, twin);
  CHECK(load_codec(twin, "cpu")->fingerprint() == load_codec(ck, "cpu")->fingerprint());
  CHECK_THROWS_WITH(copy_entropy_tables(d.file("twin.safetensors"), d.file("missing.safetensors")),
                    Catch::Contains("missing.safetensors"));
}

TEST_CASE("checkpoint metadata nested 16,000 levels deep is refused, not a stack overflow", "[train][hostile]") {
  TempDir d("ckpt-nested");
  Checkpoint ck;
  ck.model["w"] = at::zeros({2});
  save_checkpoint(d.file("ok.safetensors"), ck);
  SafetensorsFile f = read_safetensors(d.file("ok.safetensors"));
  for (const char* key : {"config", "split", "dataset", "state"}) {
    std::map<std::string, std::string> md = f.metadata;
    md[key] = std::string(16000, '[') + std::string(16000, ']');
    const std::string path = d.file(std::string(key) + ".safetensors");
    write_safetensors(path, f.tensors, md);
    INFO(key);
    const std::string message = test::error_of([&] { load_codec(path); });
    CHECK_THAT(message, Catch::Contains(path + ": metadata '" + key + "': JSON nested deeper than 64 levels"));
  }
}

TEST_CASE("a small checkpoint whose config describes a huge network is refused before it is built", "[train][hostile]") {
  TempDir d("ckpt-huge");
  Checkpoint ck;
  ck.config.model.latent_channels = 8192;
  ck.config.model.d_sub = 16;
  ck.model["pq.codebook"] = at::zeros({4, 16});
  save_checkpoint(d.file("huge.safetensors"), ck);
  // 2 x (9 x (768 x 512 + 512 x 256 + 256 x 8192) + 3 x (9 x 256 x 128 + 256 x 128)), by hand.
  const int64_t needed = 2 * (9 * (768 * 512 + 512 * 256 + 256 * 8192) + 3 * (9 * 256 * 128 + 256 * 128));
  CHECK(pqvae_weight_elements_lower_bound(ck.config.model) == needed);
  const std::string path = d.file("huge.safetensors");
  CHECK_THROWS_WITH(load_quantizer(load_checkpoint(path), path),
                    Catch::Contains(path + ": the config describes a pqvae_shared network of at least " +
                                    std::to_string(needed) + " weights but the checkpoint holds 64 values"));
}
