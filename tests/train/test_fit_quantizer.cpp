// Training every baseline through `train_run` (the path of `semcodec train`)
// and reading it back through make_quantizer (the path of `semcodec eval`).
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "codec/checkpoint_codec.h"
#include "data/feature_store.h"
#include "eval/evaluate.h"
#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "models/quantizers/faiss_quantizer.h"
#include "models/quantizers/scalar_quantizer.h"
#include "train/one_pass_fit.h"
#include "train/trainer.h"
#include "train_fixture.h"
#include "util/atomic_file.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
using test::quiet;
using test::read_metrics;
RunConfig fitted_run(const std::string& data, const std::string& out, const std::string& method) {
  RunConfig cfg = test::small_run(data, out);
  cfg.model.method = method;
  cfg.model.options<ScalarQuantizerOptions>().bits = 2;
  cfg.model.options<FaissOptions>().bits = 32;  // D = 64: 8 x 4 bits
  cfg.model.options<FaissOptions>().nbits = 4;
  return cfg;
}
}  // namespace

TEST_CASE("fit path: every fitted method writes best/last, metrics and config, and round-trips exactly",
          "[train][baselines]") {
  TempDir dir("fit-quantizer");
  const std::string data = test::write_small_synthetic(dir);
  FeatureSet set = read_feature_file(data);
  std::vector<std::string> methods = {"learned_sq", "learned_sq_per_dim", "float16", "int8", "int4"};
  if (faiss_available()) {
    for (const char* m : {"faiss_pq", "faiss_opq", "faiss_rq", "faiss_lsq"}) methods.push_back(m);
  } else {
    WARN("built without FAISS: faiss_* skipped");
  }
  const std::map<std::string, double> bits = {{"learned_sq", 128},      {"learned_sq_per_dim", 128}, {"float16", 1024},
                                              {"int8", 512},            {"int4", 256},               {"faiss_pq", 32},
                                              {"faiss_opq", 32},        {"faiss_rq", 32},            {"faiss_lsq", 32}};
  for (const std::string& method : methods) {
    INFO(method);
    RunConfig cfg = fitted_run(data, dir.file(method), method);
    TrainResult r = train_run(cfg, quiet());
    REQUIRE(file_exists(r.best_checkpoint));
    REQUIRE(file_exists(r.last_checkpoint));
    REQUIRE(file_exists(dir.file(method + "/config.resolved.yaml")));
    auto m = read_metrics(r.metrics_log);
    REQUIRE(m.size() == 1);
    CHECK(m[0]["raw_bits"].get<double>() == bits.at(method));
    CHECK(m[0]["val_top1"].get<double>() == Approx(r.best_top1));
    // Far above chance (1/20) on the held-out classes.
    CHECK(m[0]["val_top1"].get<double>() > 0.3);
    CHECK(m[0]["val_mean_cosine"].get<double>() > 0.5);
    // Without --overwrite a finished run is kept; --resume finds it done.
    CHECK_THROWS_WITH(train_run(cfg, quiet()), Catch::Contains("--resume"));
    TrainOptions resume = quiet();
    resume.resume = true;
    CHECK(train_run(cfg, resume).best_top1 == Approx(r.best_top1));

    // A quantizer rebuilt from the checkpoint encodes and decodes exactly as
    // one fitted again from scratch (fits are deterministic).
    Checkpoint ck = load_checkpoint(r.best_checkpoint);
    auto loaded = load_quantizer(ck, r.best_checkpoint);
    auto refit = make_fitted_quantizer(cfg.model);
    FeatureSet train = select_classes(set, ck.train_classes);
    refit->fit(train.features);
    at::Tensor x = set.features.narrow(0, 0, 200);
    at::Tensor a = loaded->encode(x), b = refit->encode(x);
    CHECK(at::equal(a, b));
    CHECK(at::equal(loaded->decode(a), refit->decode(b)));
    CHECK(loaded->raw_bits() == bits.at(method));

    // What `semcodec eval` computes from the checkpoint.
    FeatureSet held = select_classes(set, ck.heldout_classes);
    EvalSpec spec;
    spec.classes = ck.heldout_classes;
    nlohmann::json e = evaluate_quantizer(*loaded, held, spec);
    CHECK(e["top1"].get<double>() == Approx(r.best_top1).margin(1e-9));
  }
}

TEST_CASE("fit path: a corrupt state tensor is an error naming the file", "[train][baselines]") {
  TempDir dir("fit-corrupt");
  const std::string data = test::write_small_synthetic(dir);
  TrainResult r = train_run(fitted_run(data, dir.file("sq"), "learned_sq"), quiet());
  Checkpoint ck = load_checkpoint(r.best_checkpoint);
  ck.model["levels"] = at::zeros({1, 3});
  save_checkpoint(dir.file("bad.safetensors"), ck);
  CHECK_THROWS_WITH(load_quantizer(load_checkpoint(dir.file("bad.safetensors")), "bad.safetensors"),
                    Catch::Contains("bad.safetensors") && Catch::Contains("levels"));
  ck.model = {{"levels", at::tensor({0.3f, 0.1f, 0.2f, 0.4f}).view({1, 4})}};
  CHECK_THROWS_WITH(load_quantizer(ck, "x"), Catch::Contains("ascending"));
}

TEST_CASE("vqvae_kmeans_pq: a short training run raises held-out cosine and round-trips", "[train][baselines]") {
  TempDir dir("train-kmeans-pq");
  const std::string data = test::write_small_synthetic(dir);
  RunConfig cfg = test::small_run(data, dir.file("run"));
  cfg.model.method = "vqvae_kmeans_pq";
  cfg.train.epochs = 6;
  const auto [r, m0, m] = test::check_training_improves(cfg, dir.file("first"));
  // 32 / 8 = 4 sub-space codebooks of 8 codewords.
  CHECK(m.back()["codebook_size"].get<int64_t>() == 32);
  CHECK(m.back()["raw_bits"].get<int64_t>() == 25 * 4 * 3);
  CHECK(m.back()["codebook_used"].get<int64_t>() > 24);

  Checkpoint ck = load_checkpoint(r.best_checkpoint);
  CHECK(ck.model.count("pq.codebook"));
  CHECK(ck.model.count("pq.ema_count"));
  auto a = load_quantizer(ck, r.best_checkpoint);
  auto b = load_quantizer(load_checkpoint(r.best_checkpoint), r.best_checkpoint);
  FeatureSet set = read_feature_file(data);
  at::Tensor x = set.features.narrow(0, 0, 100);
  at::Tensor ia = a->encode(x);
  CHECK(at::equal(ia, b->encode(x)));
  CHECK(at::equal(a->decode(ia), b->decode(ia)));
  CHECK(a->name() == "vqvae_kmeans_pq");

  // Resume continues the same run exactly (EMA state is in the checkpoint).
  RunConfig part = cfg;
  part.output.dir = dir.file("part");
  part.train.epochs = 3;
  part.train.max_steps_per_epoch = 5;
  RunConfig full = part;
  full.output.dir = dir.file("full");
  train_run(full, quiet());
  part.train.epochs = 1;
  train_run(part, quiet());
  part.train.epochs = 3;
  TrainOptions resume = quiet();
  resume.resume = true;
  train_run(part, resume);
  Checkpoint pa = load_checkpoint(dir.file("full/last.safetensors")), pb = load_checkpoint(dir.file("part/last.safetensors"));
  for (auto& [name, t] : pa.model) {
    INFO(name);
    CHECK(at::equal(t, pb.model.at(name)));
  }
}

TEST_CASE("train_run: method-specific keys are checked", "[train][baselines]") {
  RunConfig cfg;
  cfg.model.method = "faiss_pq";
  CHECK_THROWS_WITH(validate_method_keys(cfg.model, "c.yaml"), Catch::Contains("faiss_bits"));
  cfg.model.options<FaissOptions>().bits = 100;
  cfg.model.options<FaissOptions>().nbits = 8;
  CHECK_THROWS_WITH(validate_method_keys(cfg.model, "c.yaml"), Catch::Contains("multiple"));
  cfg.model.options<FaissOptions>().bits = 400;
  cfg.model.options<FaissOptions>().m = 40;
  CHECK_THROWS_WITH(validate_method_keys(cfg.model, "c.yaml"), Catch::Contains("faiss_m"));
  cfg.model.options<FaissOptions>().m = 50;
  CHECK_NOTHROW(validate_method_keys(cfg.model, "c.yaml"));
  cfg.model.options<FaissOptions>().pad_dims = false;
  CHECK_THROWS_WITH(validate_method_keys(cfg.model, "c.yaml"), Catch::Contains("faiss_pad_dims"));
  cfg.model.method = "pqvae_shared";
  CHECK_THROWS_WITH(make_fitted_quantizer(cfg.model), Catch::Contains("not a fitted"));
}

TEST_CASE("every method's run carries entropy tables, and its bitstream decodes to the in-memory reconstruction",
          "[train][baselines][codec]") {
  TempDir dir("codec-all-methods");
  const std::string data = test::write_small_synthetic(dir);
  const at::Tensor x = read_feature_file(data).features.narrow(0, 0, 120);
  std::vector<std::string> methods = {"learned_sq", "learned_sq_per_dim", "float16", "int8", "vqvae_kmeans_pq"};
  if (faiss_available()) methods.push_back("faiss_pq");
  std::map<std::string, std::vector<uint8_t>> streams;
  std::map<std::string, std::string> checkpoints;
  for (const std::string& method : methods) {
    INFO(method);
    RunConfig cfg = fitted_run(data, dir.file(method), method);
    if (method == "vqvae_kmeans_pq") cfg.train.epochs = 1, cfg.train.max_steps_per_epoch = 3;
    TrainResult r = train_run(cfg, quiet());
    checkpoints[method] = r.best_checkpoint;
    REQUIRE(has_entropy_tables(load_checkpoint(r.best_checkpoint)));
    auto codec = load_codec(r.best_checkpoint, "cpu");
    auto q = load_quantizer(load_checkpoint(r.best_checkpoint), r.best_checkpoint, "cpu");
    const at::Tensor idx = q->encode(x);
    std::vector<uint8_t> bytes = codec->encode(x);
    CodecDecoded dec = codec->decode(bytes);
    CHECK(at::equal(dec.indices, idx.cpu()));
    CHECK(at::equal(dec.features, q->decode(idx).cpu()));
    // Coded payload never exceeds the raw rate by more than the coder's framing.
    CHECK(static_cast<double>(dec.rate.payload_bytes) * 8.0 / 120 <= q->raw_bits() + 64);
    streams[method] = bytes;
  }
  // A stream only decodes with the checkpoint that made it.
  auto int8 = load_codec(checkpoints.at("int8"), "cpu");
  CHECK_THROWS_WITH(int8->decode(streams.at("learned_sq")), Catch::Contains("another checkpoint"));
  auto sq = load_codec(checkpoints.at("learned_sq"), "cpu");
  CHECK_THROWS_WITH(sq->decode(streams.at("vqvae_kmeans_pq")), Catch::Contains("another checkpoint"));
}
