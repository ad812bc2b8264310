// Sweep results and the paper's artifacts made from them: the results table
// (one row per trained-and-evaluated cell), Table 1 (datasets as row groups,
// bpd columns, one line per method, the clean upper bound per dataset) and the
// accuracy-vs-rate figures (Fig. 4, 5, 6) as point series. Pure data in and
// text out, so tests can compare against hand-written goldens; plot.h draws
// the figures.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace semcodec {

struct ResultRow {
  std::string key;      // the cell's resolved-config hash
  std::string dataset;  // the sweep's dataset name
  std::string label;    // the sweep's method label (a series in the figures)
  std::string method;   // model.method
  std::string status = "ok";  // ok | failed
  std::string error;          // failed cells: why
  std::string rate_source;    // "bitstream (...)" or "raw"
  std::string classifier;     // zero-shot | ncm ("" in rows written before it was recorded)
  int64_t seed = 0;
  int64_t embed_dim = 0;
  double raw_bits = 0;       // fixed-length bits per item (the configured rate)
  double bits_per_item = 0;  // payload bits per item actually written (or raw_bits)
  double bpp = -1;           // bits per pixel, < 0 when image sizes are unknown
  double top1 = 0, top5 = 0, clean_top1 = 0, mean_cosine = 0;
  double train_seconds = 0, eval_seconds = 0;
  nlohmann::json settings = nlohmann::json::object();  // the cell's varied keys and values

  double bpd() const { return embed_dim > 0 ? bits_per_item / static_cast<double>(embed_dim) : 0; }
  double raw_bpd() const { return embed_dim > 0 ? raw_bits / static_cast<double>(embed_dim) : 0; }
};

nlohmann::json result_to_json(const ResultRow& row);
ResultRow result_from_json(const nlohmann::json& j, const std::string& source);
// results.json: a JSON array of rows; errors name the file.
std::vector<ResultRow> read_results(const std::string& path);
std::string results_json(const std::vector<ResultRow>& rows);
std::string results_csv(const std::vector<ResultRow>& rows);

// A bpd column heading as in the paper: two decimals, trailing zeros dropped (0.52, 1, 1.3, 2.6).
std::string bpd_heading(double bpd);

// Table 1: for each dataset (in first-appearance order) a group headed
// "<dataset> (UB: xx.xx)", one line per method label, top-1 % (mean over seeds)
// in the column of the cell's configured bpd, "-" where a method has no cell.
// Failed cells are left out.
std::string table1_markdown(const std::vector<ResultRow>& rows);
std::string table1_csv(const std::vector<ResultRow>& rows);

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, top-1 %), sorted by x
};
struct Figure {
  std::string name, title, xlabel, ylabel;
  std::vector<Series> series;
  std::vector<std::pair<std::string, double>> upper_bounds;  // (label, top-1 %) drawn as horizontal lines
};

// Top-1 % against the measured rate, one series per method label, averaged
// over seeds, for one dataset ("" = the first one). x: "bpd" (payload bits per
// dimension), "bpp" (bits per pixel; cells without image sizes are skipped) or
// "bits" (payload bits per item).
Figure accuracy_figure(const std::vector<ResultRow>& rows, const std::string& name, const std::string& title,
                       const std::string& x, const std::string& dataset = "");

}  // namespace semcodec
