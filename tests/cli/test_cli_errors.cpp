// Bad input through the real binary: each case must exit non-zero with a
// message that names the file and the problem, and leave no output behind.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sys/wait.h>

#include "cli_runner.h"
#include "data/feature_store.h"
#include "data/synthetic.h"
#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "models/pqvae/pqvae_shared.h"
#include "test_support.h"
#include "util/atomic_file.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
using test::Run;
Run run(const std::string& args) { return test::run_cli(args); }
void write(const std::string& path, const std::string& text) { test::write_text(path, text); }
std::string small_set(const TempDir& d, const std::string& name, int64_t dim = 64) {
  return test::small_feature_file(d, name, dim);
}
const char* kSmallModel = test::kSmallModelYaml;
}  // namespace

TEST_CASE("a config with a typo names the file and the key", "[cli]") {
  TempDir d("cli-typo");
  write(d.file("bad.yaml"), "train:\n  epohcs: 3\n");
  Run r = run("train -c " + d.file("bad.yaml") + " -o " + d.file("run"));
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Catch::Contains("bad.yaml") && Catch::Contains("train.epohcs") && Catch::Contains("epochs"));
  CHECK_FALSE(file_exists(d.file("run/last.safetensors")));
  Run r2 = run("train -c " + d.file("missing.yaml"));
  CHECK(r2.code != 0);
  CHECK_THAT(r2.output, Catch::Contains("missing.yaml"));
}

TEST_CASE("missing, corrupt and NaN feature files are named", "[cli]") {
  TempDir d("cli-features");
  write(d.file("model.yaml"), kSmallModel);
  Run missing = run("train -c " + d.file("model.yaml") + " --features " + d.file("none.h5") + " -o " + d.file("run"));
  CHECK(missing.code != 0);
  CHECK_THAT(missing.output, Catch::Contains("none.h5"));

  write(d.file("garbage.h5"), "this is not an HDF5 file at all");
  Run garbage = run("train -c " + d.file("model.yaml") + " --features " + d.file("garbage.h5") + " -o " + d.file("run"));
  CHECK(garbage.code != 0);
  CHECK_THAT(garbage.output, Catch::Contains("garbage.h5"));

  SyntheticOptions o;
  o.num_classes = 10, o.per_class = 3, o.dim = 64, o.semantic_rank = 8, o.nuisance_rank = 8, o.num_superclasses = 2;
  FeatureSet s = make_synthetic(o);
  s.features[4][7] = std::nan("");
  write_feature_file(d.file("nan.h5"), s);
  Run nan = run("train -c " + d.file("model.yaml") + " --features " + d.file("nan.h5") + " -o " + d.file("run"));
  CHECK(nan.code != 0);
  CHECK_THAT(nan.output, Catch::Contains("nan.h5") && Catch::Contains("4"));
  CHECK_FALSE(file_exists(d.file("run/last.safetensors")));
}

TEST_CASE("overlapping split files are rejected", "[cli]") {
  TempDir d("cli-split");
  const std::string data = small_set(d, "s.h5");
  write(d.file("train.txt"), "0\n1\n2\n3\n");
  write(d.file("held.txt"), "3\n4\n");
  write(d.file("model.yaml"), kSmallModel);
  Run r = run("train -c " + d.file("model.yaml") + " --features " + data + " -o " + d.file("run") +
              " --set data.split.mode=files --set data.split.train_classes_file=" + d.file("train.txt") +
              " --set data.split.heldout_classes_file=" + d.file("held.txt"));
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Catch::Contains("3"));
  CHECK_FALSE(file_exists(d.file("run/last.safetensors")));
}

TEST_CASE("a checkpoint whose dimension differs from the features is refused", "[cli]") {
  TempDir d("cli-mismatch");
  const std::string data768 = small_set(d, "wide.h5", 128);
  ModelConfig mc;
  mc.embed_dim = 64, mc.hidden_channels = 16, mc.body_channels = 8, mc.residual_channels = 8;
  mc.latent_channels = 8, mc.d_sub = 4, mc.codebook_size = 4;
  PQVAEShared model(mc);
  Checkpoint ck;
  ck.config.model = mc;
  ck.model = module_state(model);
  save_checkpoint(d.file("c.safetensors"), ck);
  Run r = run("eval --checkpoint " + d.file("c.safetensors") + " --features " + data768 + " -o " + d.file("e.json"));
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Catch::Contains("wide.h5") && Catch::Contains("128") && Catch::Contains("64"));
  CHECK_FALSE(file_exists(d.file("e.json")));

  write(d.file("trunc.safetensors"), read_file(d.file("c.safetensors")).substr(0, 100));
  Run t = run("eval --checkpoint " + d.file("trunc.safetensors") + " --features " + data768);
  CHECK(t.code != 0);
  CHECK_THAT(t.output, Catch::Contains("trunc.safetensors"));
}

TEST_CASE("train then eval through the CLI writes results", "[cli]") {
  TempDir d("cli-ok");
  const std::string data = small_set(d, "s.h5");
  write(d.file("model.yaml"), kSmallModel);
  Run tr = run("train -q -c " + d.file("model.yaml") + " --features " + data + " -o " + d.file("run"));
  INFO(tr.output);
  REQUIRE(tr.code == 0);
  CHECK(file_exists(d.file("run/best.safetensors")));
  CHECK(file_exists(d.file("run/config.resolved.yaml")));
  CHECK(file_exists(d.file("run/metrics.jsonl")));
  Run ev = run("eval --checkpoint " + d.file("run/best.safetensors") + " --features " + data + " -o " + d.file("e.json"));
  INFO(ev.output);
  REQUIRE(ev.code == 0);
  CHECK(file_exists(d.file("e.json")));
  CHECK(file_exists(d.file("e.md")));
}

TEST_CASE("config without a file lists every key and every registered method with its summary", "[cli]") {
  const Run r = run("config");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("train.lr") && Catch::Contains("model.method (docs/baselines.md"));
  for (const MethodInfo& m : methods()) {
    INFO(m.name);
    CHECK_FALSE(m.summary.empty());
    CHECK_THAT(r.output, Catch::Contains(m.name) && Catch::Contains(m.summary));
  }
}
