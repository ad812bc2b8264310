// `semcodec sweep` / `semcodec report` end to end through the real binary:
// cells run in child processes, finished cells are skipped, a changed cell
// reruns, a failing cell is recorded and makes the sweep exit non-zero.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "test_support.h"
#include "util/atomic_file.h"

using namespace semcodec;
using semcodec::test::Run;
using semcodec::test::TempDir;

namespace {
std::string spec_text(const TempDir& d, const std::string& sq_bits, const std::string& eval_features = "") {
  std::string s = "name: tiny\nbase: " + d.file("base.yaml") + "\nout: " + d.file("out") +
                  "\ndatasets:\n  - name: small\n";
  if (!eval_features.empty()) s += "    eval_features: " + eval_features + "\n";
  s += "methods:\n"
       "  - label: Learned SQ\n    set: [model.method=learned_sq]\n    vary: {model.sq_bits: " + sq_bits + "}\n";
  if (eval_features.empty())
    s += "  - label: PQVAE-shared\n    vary: {model.codebook_size: [4]}\n";
  s += "report:\n  table1: true\n  figures:\n    - {name: rd, title: tiny, x: bpd}\n";
  return s;
}

nlohmann::json results(const TempDir& d) { return nlohmann::json::parse(read_file(d.file("out/results.json"))); }
}  // namespace

TEST_CASE("sweep runs every cell once, skips finished cells and reruns a changed one", "[cli][sweep]") {
  TempDir d("cli-sweep");
  const std::string data = test::small_feature_file(d, "s.h5");
  test::write_text(d.file("base.yaml"), std::string(test::kSmallModelYaml) + "  device: cpu\n");
  // data.features comes from the dataset entry's set list.
  std::string spec = spec_text(d, "[1, 2]");
  spec.replace(spec.find("  - name: small\n"), 16, "  - name: small\n    set: [data.features=" + data + "]\n");
  test::write_text(d.file("sweep.yaml"), spec);

  Run r1 = test::run_cli("sweep -q " + d.file("sweep.yaml"));
  INFO(r1.output);
  REQUIRE(r1.code == 0);
  CHECK_THAT(r1.output, Catch::Contains("3 cells, 0 already done, 3 run, 0 failed"));
  nlohmann::json rows = results(d);
  REQUIRE(rows.size() == 3);
  // Raw rates by hand: SQ b bits x D = 64; PQVAE 25 positions x (8 / 4) sub-vectors x log2 4.
  CHECK(rows[0]["label"] == "Learned SQ");
  CHECK(rows[0]["raw_bits"].get<double>() == 64);
  CHECK(rows[1]["raw_bits"].get<double>() == 128);
  CHECK(rows[2]["label"] == "PQVAE-shared");
  CHECK(rows[2]["raw_bits"].get<double>() == 100);
  CHECK_THAT(rows[2]["rate_source"].get<std::string>(), Catch::Contains("bitstream"));
  for (const auto& r : rows) {
    CHECK(r["status"] == "ok");
    CHECK(r["top1"].get<double>() >= 0);
    CHECK(r["clean_top1"].get<double>() > 0);
  }
  CHECK(file_exists(d.file("out/report/table1.md")));
  CHECK(file_exists(d.file("out/report/rd.dat")));
  const std::string first_result = read_file(d.file("out/results.json"));

  Run r2 = test::run_cli("sweep -q " + d.file("sweep.yaml"));
  INFO(r2.output);
  REQUIRE(r2.code == 0);
  CHECK_THAT(r2.output, Catch::Contains("3 cells, 3 already done, 0 run, 0 failed"));
  CHECK(read_file(d.file("out/results.json")) == first_result);

  // sq_bits 2 -> 3: one new cell; the other two are kept.
  std::string changed = read_file(d.file("sweep.yaml"));
  changed.replace(changed.find("[1, 2]"), 6, "[1, 3]");
  test::write_text(d.file("sweep.yaml"), changed);
  Run r3 = test::run_cli("sweep -q " + d.file("sweep.yaml"));
  INFO(r3.output);
  REQUIRE(r3.code == 0);
  CHECK_THAT(r3.output, Catch::Contains("3 cells, 2 already done, 1 run, 0 failed"));
  rows = results(d);
  REQUIRE(rows.size() == 3);
  CHECK(rows[1]["raw_bits"].get<double>() == 192);

  Run rep = test::run_cli("report " + d.file("sweep.yaml"));
  INFO(rep.output);
  CHECK(rep.code == 0);
  CHECK_THAT(rep.output, Catch::Contains("| small (UB: "));
}

TEST_CASE("a failing sweep cell is recorded with its error and the sweep exits non-zero", "[cli][sweep]") {
  TempDir d("cli-sweep-fail");
  const std::string data = test::small_feature_file(d, "s.h5");
  test::write_text(d.file("base.yaml"),
                   std::string(test::kSmallModelYaml) + "  device: cpu\n" + "# features\n");
  std::string base = read_file(d.file("base.yaml"));
  base.replace(base.find("data:\n"), 6, "data:\n  features: " + data + "\n");
  test::write_text(d.file("base.yaml"), base);
  test::write_text(d.file("sweep.yaml"), spec_text(d, "[1]", d.file("missing.h5")));
  Run r = test::run_cli("sweep -q " + d.file("sweep.yaml"));
  INFO(r.output);
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Catch::Contains("1 of 1 cells failed") && Catch::Contains("sweep.yaml"));
  nlohmann::json rows = results(d);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["status"] == "failed");
  CHECK_THAT(rows[0]["error"].get<std::string>(), Catch::Contains("missing.h5"));

  // An unknown key in the sweep file is an error naming the file and the key.
  test::write_text(d.file("typo.yaml"), spec_text(d, "[1]") + "seedz: [1]\n");
  Run t = test::run_cli("sweep " + d.file("typo.yaml"));
  CHECK(t.code != 0);
  CHECK_THAT(t.output, Catch::Contains("typo.yaml") && Catch::Contains("seedz"));
}
