// Sweep files: expansion into cells, cell keys, and errors (no training here;
// tests/cli/test_cli_sweep.cpp runs sweeps end to end).
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "models/quantizers/scalar_quantizer.h"
#include "test_support.h"
#include "train/sweep.h"
#include "util/config.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string spec(const TempDir& d, const std::string& extra = "") {
  return "base: " + d.file("base.yaml") + "\nout: " + d.file("out") +
         "\nseeds: [0, 1]\n"
         "datasets:\n  - name: A\n  - name: B\n    eval_features: other.h5\n"
         "methods:\n"
         "  - label: PQVAE\n    set: [model.d_sub=16]\n"
         "    vary: {model.codebook_size: [4, 8, 16], train.lr: [0.001, 0.003]}\n"
         "  - label: SQ\n    set: [model.method=learned_sq]\n    vary: {model.sq_bits: [1, 2]}\n" +
         extra;
}
}  // namespace

TEST_CASE("a sweep file expands into datasets x methods x varied values x seeds", "[train][sweep]") {
  TempDir d("sweep-expand");
  write(d.file("base.yaml"), "data:\n  features: a.h5\n");
  write(d.file("s.yaml"), spec(d));
  const SweepSpec s = load_sweep(d.file("s.yaml"));
  // 2 datasets x (3 x 2 + 2) settings x 2 seeds.
  REQUIRE(s.cells.size() == 2 * 8 * 2);
  CHECK(s.name == "s");
  // First varied key slowest, then seeds; dataset A before B.
  const SweepCell& c0 = s.cells[0];
  CHECK(c0.dataset == "A");
  CHECK(c0.label == "PQVAE");
  CHECK(c0.settings == nlohmann::json{{"model.codebook_size", 4}, {"train.lr", 0.001}});
  CHECK(c0.seed == 0);
  CHECK(c0.config.model.codebook_size == 4);
  CHECK(c0.config.model.d_sub == 16);
  CHECK(c0.config.train.seed == 0);
  CHECK(s.cells[1].seed == 1);
  CHECK(s.cells[1].config.train.seed == 1);
  CHECK(s.cells[2].settings == nlohmann::json{{"model.codebook_size", 4}, {"train.lr", 0.003}});
  CHECK(s.cells[4].config.model.codebook_size == 8);
  CHECK(s.cells[12].config.model.method == "learned_sq");
  CHECK(s.cells[12].config.model.options<ScalarQuantizerOptions>().bits == 1);
  // Dataset A evaluates the training file's held-out classes; B another file, all classes.
  // Relative paths resolve against the sweep file's folder (it lies outside any configs/ folder).
  CHECK(c0.eval_features == d.file("a.h5"));
  CHECK(c0.eval_classes == "heldout");
  const SweepCell& b0 = s.cells[16];
  CHECK(b0.dataset == "B");
  CHECK(b0.eval_features == d.file("other.h5"));
  CHECK(b0.eval_classes == "all");
  // B trains exactly what A trains: same key (one run), different evaluation.
  CHECK(b0.key == c0.key);
  CHECK(b0.eval_id != c0.eval_id);
  CHECK(b0.dir() == c0.dir());
  std::set<std::string> keys;
  for (const SweepCell& c : s.cells) keys.insert(c.key);
  CHECK(keys.size() == 16);
  CHECK(c0.dir() == d.file("out") + "/cells/" + c0.key);
}

TEST_CASE("cell keys follow the resolved config, not the device or output directory", "[train][sweep]") {
  TempDir d("sweep-keys");
  write(d.file("base.yaml"), "data:\n  features: a.h5\n");
  write(d.file("s.yaml"), spec(d));
  const SweepSpec a = load_sweep(d.file("s.yaml"));
  const SweepSpec same = load_sweep(d.file("s.yaml"), {"train.device=cpu", "train.threads=1"});
  const SweepSpec other = load_sweep(d.file("s.yaml"), {"train.epochs=3"});
  for (size_t i = 0; i < a.cells.size(); ++i) {
    CHECK(a.cells[i].key == same.cells[i].key);
    CHECK(a.cells[i].key != other.cells[i].key);
  }
  // Editing the base config changes every key.
  write(d.file("base.yaml"), "data:\n  features: a.h5\nloss:\n  alpha: 5\n");
  CHECK(load_sweep(d.file("s.yaml")).cells[0].key != a.cells[0].key);
}

TEST_CASE("a dataset can name its classifier and the reference of its class means", "[train][sweep]") {
  TempDir d("sweep-classifier");
  write(d.file("base.yaml"), "data:\n  features: a.h5\n");
  write(d.file("s.yaml"), "base: " + d.file("base.yaml") + "\nout: " + d.file("out") +
                              "\ndatasets:\n  - name: plain\n    eval_features: t.h5\n"
                              "  - name: ncm\n    eval_features: t.h5\n    classifier: ncm\n"
                              "    reference_features: a.h5\n"
                              "methods:\n  - label: SQ\n    set: [model.method=learned_sq]\n");
  const SweepSpec s = load_sweep(d.file("s.yaml"));
  REQUIRE(s.cells.size() == 2);
  CHECK(s.cells[0].classifier == "auto");
  CHECK(s.cells[0].reference_features.empty());
  CHECK(s.cells[1].classifier == "ncm");
  CHECK(s.cells[1].reference_features == d.file("a.h5"));  // beside the sweep file
  CHECK(s.cells[0].key == s.cells[1].key);          // one training run
  CHECK(s.cells[0].eval_id != s.cells[1].eval_id);  // two evaluations
  // Without the new keys the id is the hash of file and classes alone, as before they existed.
  CHECK(s.cells[0].eval_id == config_detail::fnv1a64_hex("t.h5\nall").substr(0, 8));
  write(d.file("bad.yaml"), "base: " + d.file("base.yaml") + "\nout: " + d.file("out") +
                                "\ndatasets:\n  - name: x\n    classifier: knn\n"
                                "methods:\n  - label: SQ\n    set: [model.method=learned_sq]\n");
  CHECK_THROWS_WITH(load_sweep(d.file("bad.yaml")), Catch::Contains("bad.yaml") && Catch::Contains("knn"));
}

TEST_CASE("bad sweep files are errors naming the file and the key", "[train][sweep]") {
  TempDir d("sweep-bad");
  write(d.file("base.yaml"), "data:\n  features: a.h5\n");
  write(d.file("typo.yaml"), spec(d, "reprot: {table1: true}\n"));
  CHECK_THROWS_WITH(load_sweep(d.file("typo.yaml")), Catch::Contains("typo.yaml") && Catch::Contains("reprot"));
  write(d.file("badkey.yaml"), spec(d) + "set: [model.codebok_size=4]\n");
  CHECK_THROWS_WITH(load_sweep(d.file("badkey.yaml")),
                    Catch::Contains("badkey.yaml") && Catch::Contains("codebok_size"));
  write(d.file("badval.yaml"), spec(d) + "set: [model.codebook_size=1]\n");
  CHECK_THROWS_WITH(load_sweep(d.file("badval.yaml")),
                    Catch::Contains("badval.yaml") && Catch::Contains("model.codebook_size"));
  write(d.file("nobase.yaml"), "out: x\ndatasets: [{name: a}]\nmethods: [{label: m}]\n");
  CHECK_THROWS_WITH(load_sweep(d.file("nobase.yaml")), Catch::Contains("nobase.yaml") && Catch::Contains("base"));
  write(d.file("novary.yaml"), spec(d, "report: {figures: [{name: f, x: pixels}]}\n"));
  CHECK_THROWS_WITH(load_sweep(d.file("novary.yaml")), Catch::Contains("pixels"));
  CHECK_THROWS_WITH(load_sweep(d.file("missing.yaml")), Catch::Contains("missing.yaml"));
}
