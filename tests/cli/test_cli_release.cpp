// The paper release's files through the real binary: import its feature
// files, convert its checkpoint, and get its own outputs (the goldens its
// code computed, tests/fixtures/README.md) back from fit-entropy + compress +
// decompress.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <filesystem>

#include "cli_runner.h"
#include "data/feature_store.h"
#include "data/npy.h"
#include "test_support.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
std::string fixture(const std::string& name) { return semcodec::test::fixture_path(name); }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("import reads the release's (features, labels) and text-feature .pt files", "[cli][release]") {
  TempDir dir("cli_release_import");
  const std::string pt = fixture("release_features_cuda_fp16.pt");
  auto r = test::run_cli("import --features " + pt + " --labels " + pt + " --text-embeddings " +
                         fixture("release_text_features.pt") + " --no-normalize -o " + dir.file("a.h5"));
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "20 features x 768 dims, 5 classes with text embeddings"));
  r = test::run_cli("import --features " + pt + ":0 --labels " + pt + ":1 --no-normalize -o " + dir.file("b.h5"));
  REQUIRE(r.code == 0);
  const auto want = read_npz(fixture("release_features_expected.npz"));
  const FeatureSet a = read_feature_file(dir.file("a.h5")), b = read_feature_file(dir.file("b.h5"));
  CHECK(at::equal(a.features, npy_to_tensor(want.at("features"), false, "features")));
  CHECK(at::equal(b.labels, npy_to_tensor(want.at("labels"), false, "labels")));
  CHECK(at::equal(a.class_embeddings, npy_to_tensor(want.at("text"), false, "text")));
  r = test::run_cli("import --features " + pt + ":7 --labels " + pt + " -o " + dir.file("c.h5"));
  CHECK(r.code == 1);
  CHECK(contains(r.output, "release_features_cuda_fp16.pt: no tensor named '7' (the features); it holds 0, 1"));
  CHECK_FALSE(std::filesystem::exists(dir.file("c.h5")));
}

TEST_CASE("convert-release: the converted checkpoint compresses the release's inputs to its own outputs",
          "[cli][release]") {
  const std::string sd = fixture("release_state_dict_d16_k4.pt");
  TempDir dir("cli_release_convert");
  // The golden inputs as a feature file: 8 rows, 4 classes.
  write_npy(dir.file("labels.npy"), at::tensor({0, 0, 1, 1, 2, 2, 3, 3}, at::kLong));
  auto r = test::run_cli("import --features " + fixture("golden_d16_k4.npz") + ":input --labels " +
                         dir.file("labels.npy") + " --no-normalize -o " + dir.file("in.h5"));
  INFO(r.output);
  REQUIRE(r.code == 0);
  const std::string ck = dir.file("release.safetensors");
  r = test::run_cli("convert-release --state-dict " + sd + " -o " + ck + " --features " + dir.file("in.h5") +
                    " --set data.split.mode=all");
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "d_sub 16, K 4, 200 indices x 2 bits = 400 bits per item"));
  r = test::run_cli("fit-entropy -q --checkpoint " + ck);
  REQUIRE(r.code == 0);
  r = test::run_cli("compress -q --checkpoint " + ck + " --features " + dir.file("in.h5") + " -o " + dir.file("s.scb"));
  REQUIRE(r.code == 0);
  r = test::run_cli("decompress -q " + dir.file("s.scb") + " --checkpoint " + ck + " -o " + dir.file("out.h5"));
  REQUIRE(r.code == 0);
  const auto golden = read_npz(fixture("golden_d16_k4.npz"));
  const at::Tensor want = npy_to_tensor(golden.at("eval_output"), false, "eval_output");
  CHECK((read_feature_file(dir.file("out.h5")).features - want).abs().max().item<double>() <= 1e-5);
  r = test::run_cli("eval --checkpoint " + ck + " --features " + dir.file("in.h5") + " -o " + dir.file("eval.json"));
  CHECK(r.code == 0);

  // A file that is not a release state dict: a clear error, nothing written.
  r = test::run_cli("convert-release --state-dict " + fixture("release_state_dict_fp32_small.pt") + " -o " +
                    dir.file("bad.safetensors"));
  CHECK(r.code == 1);
  CHECK(contains(r.output, "release_state_dict_fp32_small.pt: no tensor 'encoder.initial_conv1.weight'"));
  CHECK_FALSE(std::filesystem::exists(dir.file("bad.safetensors")));
}

TEST_CASE("scripts/reproduce_release.sh runs import, convert, fit-entropy and eval on release-format files",
          "[cli][release]") {
  const std::string sd = fixture("release_state_dict_d16_k4.pt");
  TempDir dir("cli_release_script");
  namespace fs = std::filesystem;
  fs::create_directories(dir.file("features"));
  fs::create_directories(dir.file("checkpoints"));
  fs::create_symlink(fixture("release_features_cuda_fp16.pt"), dir.file("features/imagenet.pt"));
  fs::create_symlink(fixture("release_text_features.pt"), dir.file("features/imagenet_text_features.pt"));
  fs::create_symlink(fixture("release_features_cuda_fp16.pt"), dir.file("features/other.pt"));  // no text: ncm
  fs::create_symlink(sd, dir.file("checkpoints/pqvae_d16_k4.pt"));
  const std::string env = "SEMCODEC_RELEASE_FEATURES=" + dir.file("features") + " SEMCODEC_RELEASE_CHECKPOINTS=" +
                          dir.file("checkpoints") + " SEMCODEC_RELEASE_OUT=" + dir.file("out") +
                          " SEMCODEC_BIN=" + SEMCODEC_CLI_PATH;
  // 5 classes here, so a seeded 3/2 split instead of the paper's 800/200 lists.
  const std::string cmd = "env " + env + " bash " + std::string(SEMCODEC_SOURCE_DIR) +
                          "/scripts/reproduce_release.sh --set data.split.mode=seed --set data.split.heldout_classes=2 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  const int status = pclose(p);
  INFO(output);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  for (const char* name : {"imagenet", "other"}) {
    const std::string json = dir.file(std::string("out/eval/pqvae_d16_k4/") + name + ".json");
    REQUIRE(fs::exists(json));
    std::ifstream f(json);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    CHECK(contains(text, "\"raw_bits\""));
  }
}
