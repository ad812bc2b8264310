// Table 1 and figure data from result rows, against hand-written goldens.
#include <catch2/catch.hpp>

#include "eval/plot.h"
#include "eval/report.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"

using namespace semcodec;

namespace {
ResultRow row(const std::string& ds, const std::string& label, double raw_bits, double bits, double top1,
              double clean, int64_t seed = 0) {
  ResultRow r;
  r.key = ds + label + std::to_string(raw_bits) + std::to_string(seed);
  r.dataset = ds;
  r.label = label;
  r.embed_dim = 768;
  r.raw_bits = raw_bits;
  r.bits_per_item = bits;
  r.top1 = top1;
  r.clean_top1 = clean;
  r.seed = seed;
  return r;
}

// Two datasets, PQVAE at 400 / 600 / 2000 bits, SQ at 1 and 3 bpd; Pets has two
// seeds at 400 bits (mean 0.8355), Food lacks SQ at 3 bpd; one failed cell.
std::vector<ResultRow> rows() {
  std::vector<ResultRow> r = {
      row("OxfordPets", "PQVAE-shared", 400, 380, 0.8350, 0.9099),
      row("OxfordPets", "PQVAE-shared", 400, 382, 0.8360, 0.9099, 1),
      row("OxfordPets", "PQVAE-shared", 600, 570, 0.8730, 0.9099),
      row("OxfordPets", "PQVAE-shared", 2000, 1900, 0.9052, 0.9099),
      row("OxfordPets", "Learned SQ", 768, 768, 0.8133, 0.9099),
      row("OxfordPets", "Learned SQ", 2304, 2304, 0.8356, 0.9099),
      row("Food101", "PQVAE-shared", 400, 390, 0.7939, 0.8884),
      row("Food101", "Learned SQ", 768, 768, 0.8422, 0.8884),
  };
  ResultRow failed = row("Food101", "Learned SQ", 2304, 0, 0.99, 0.8884);
  failed.status = "failed";
  r.push_back(failed);
  return r;
}
}  // namespace

TEST_CASE("bpd headings read like the paper's", "[eval][report]") {
  CHECK(bpd_heading(400.0 / 768) == "0.52");
  CHECK(bpd_heading(600.0 / 768) == "0.78");
  CHECK(bpd_heading(1.0) == "1");
  CHECK(bpd_heading(1000.0 / 768) == "1.3");
  CHECK(bpd_heading(2000.0 / 768) == "2.6");
  CHECK(bpd_heading(3.0) == "3");
}

TEST_CASE("Table 1 puts each number in its dataset, method and bpd cell", "[eval][report]") {
  const std::string golden =
      "| Dataset | method / bpd | 0.52 | 0.78 | 1 | 2.6 | 3 |\n"
      "|---|---|---:|---:|---:|---:|---:|\n"
      "| OxfordPets (UB: 90.99) | PQVAE-shared | 83.55 | 87.30 | - | 90.52 | - |\n"
      "|  | Learned SQ | - | - | 81.33 | - | 83.56 |\n"
      "| Food101 (UB: 88.84) | PQVAE-shared | 79.39 | - | - | - | - |\n"
      "|  | Learned SQ | - | - | 84.22 | - | - |\n";
  CHECK(table1_markdown(rows()) == golden);
  const std::string csv =
      "dataset,upper_bound,method,0.52,0.78,1,2.6,3\n"
      "OxfordPets,90.99,PQVAE-shared,83.55,87.30,-,90.52,-\n"
      "OxfordPets,90.99,Learned SQ,-,-,81.33,-,83.56\n"
      "Food101,88.84,PQVAE-shared,79.39,-,-,-,-\n"
      "Food101,88.84,Learned SQ,-,-,84.22,-,-\n";
  CHECK(table1_csv(rows()) == csv);
}

TEST_CASE("figure series hold the measured rate and the mean top-1 per configured rate", "[eval][report]") {
  const Figure f = accuracy_figure(rows(), "fig", "t", "bpd", "OxfordPets");
  REQUIRE(f.series.size() == 2);
  CHECK(f.series[0].name == "PQVAE-shared");
  REQUIRE(f.series[0].points.size() == 3);
  // 400 bits: the two seeds' payloads 380 and 382 -> 381 / 768 bpd, top-1 (83.50 + 83.60) / 2.
  CHECK(f.series[0].points[0].first == Approx(381.0 / 768));
  CHECK(f.series[0].points[0].second == Approx(83.55));
  CHECK(f.series[0].points[2].first == Approx(1900.0 / 768));
  CHECK(f.series[1].points[1].second == Approx(83.56));
  REQUIRE(f.upper_bounds.size() == 1);
  CHECK(f.upper_bounds[0].second == Approx(90.99));
  CHECK(accuracy_figure(rows(), "f", "t", "bpp").series.empty());  // no image sizes
  CHECK_THROWS_AS(accuracy_figure(rows(), "f", "t", "pixels"), Error);

  const std::string data = gnuplot_data(accuracy_figure(rows(), "fig", "t", "bits", "Food101"));
  CHECK_THAT(data, Catch::Contains("# PQVAE-shared\n390 79.39\n\n\n# Learned SQ\n768 84.22\n"));

  // The y axis spans the points and the upper bound with room (0.2 x span, at least 2 points),
  // on multiples of 5: Pets 81.33 .. 90.99 -> [75, 95].
  CHECK_THAT(gnuplot_script(f, "f.dat", "f.png"), Catch::Contains("set yrange [75:95]"));
  CHECK_THAT(gnuplot_script(f, "f.dat", "f.png"), Catch::Contains("'zero-shot top-1 accuracy (%)'"));
  std::vector<ResultRow> ncm = rows();
  for (auto& r : ncm) r.classifier = "ncm";
  CHECK(accuracy_figure(ncm, "f", "t", "bpd").ylabel == "top-1 accuracy, nearest class mean (%)");

  // A rate-controlled method has one fixed-length rate at every target: its
  // points stay apart by their settings (and seeds of one setting average).
  std::vector<ResultRow> klt;
  for (double target : {256.0, 400.0, 400.0}) {
    ResultRow r;
    r.dataset = "D", r.label = "KLT", r.method = "adaptive_klt", r.embed_dim = 512, r.raw_bits = 4088;
    r.bits_per_item = target + (klt.size() == 2 ? 2 : 0);
    r.top1 = target / 1000 + (klt.size() == 2 ? 0.01 : 0);
    r.settings = {{"model.klt_target_bits", target}};
    klt.push_back(r);
  }
  const Figure kf = accuracy_figure(klt, "k", "t", "bits", "D");
  REQUIRE(kf.series.size() == 1);
  REQUIRE(kf.series[0].points.size() == 2);
  CHECK(kf.series[0].points[0].first == Approx(256));
  CHECK(kf.series[0].points[1].first == Approx(401));
  CHECK(kf.series[0].points[1].second == Approx(40.5));
}

TEST_CASE("results round-trip through JSON and bad files name themselves", "[eval][report]") {
  test::TempDir d("report-json");
  const std::string p = d.file("results.json");
  write_file_atomic(p, results_json(rows()));
  const std::vector<ResultRow> back = read_results(p);
  REQUIRE(back.size() == rows().size());
  CHECK(back[2].bits_per_item == 570);
  CHECK(back.back().status == "failed");
  CHECK(table1_markdown(back) == table1_markdown(rows()));
  CHECK(results_csv(rows()).find("OxfordPets,PQVAE-shared,,0,ok,400,380,") != std::string::npos);
  write_file_atomic(p, "{\"not\": \"a list\"}");
  CHECK_THROWS_WITH(read_results(p), Catch::Contains("results.json"));
  write_file_atomic(p, "[{\"key\": 1}]");
  CHECK_THROWS_WITH(read_results(p), Catch::Contains("results.json"));
}
