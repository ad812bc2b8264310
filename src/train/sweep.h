// Sweeps: a YAML grid (datasets x methods x varied keys x seeds) over a base
// run config, trained and evaluated cell by cell (docs/sweeps.md).
//
// Each cell is a RunConfig; its key is the hash of that resolved config (with
// the output directory, device and thread count left out), so a finished cell
// is skipped when the sweep runs again, and a cell whose config changed gets a
// new key and runs. Cells run in child processes (`semcodec sweep SPEC --cell
// KEY`), so one that crashes is recorded as failed and the others go on.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/report.h"
#include "models/run_config.h"

namespace semcodec {

// One (training run, evaluation) pair. Cells of several datasets that train
// the same config (e.g. trained on ImageNet, evaluated on Pets and Food101)
// share the key and the run directory: the model is trained once.
struct SweepCell {
  std::string key, dataset, label;
  int64_t seed = 0;
  std::vector<std::string> overrides;  // applied to the base config, in order
  nlohmann::json settings = nlohmann::json::object();  // the varied keys of this cell
  RunConfig config;                                    // resolved; output.dir = <out>/cells/<key>
  std::string eval_features;  // evaluated feature file (default: data.features)
  std::string eval_classes;   // heldout | train | all | class-list file
  std::string classifier = "auto";  // auto | zero-shot | ncm (evaluate_reconstruction)
  std::string reference_features;   // ncm: labelled file whose class means classify (default: the evaluated file)
  std::string eval_id;        // hash of the evaluation settings above
  std::string dir() const { return config.path(config.output.dir); }
  std::string result_path() const { return dir() + "/result-" + eval_id + ".json"; }
  std::string failed_path() const { return dir() + "/failed-" + eval_id + ".json"; }
};

struct SweepFigureSpec {
  std::string name, title, x = "bpd", dataset;
};

struct SweepSpec {
  std::string source;     // the sweep file
  std::string name, base, out;
  std::string synthetic;  // when set: write the built-in synthetic set here if missing
  std::string eval_classes = "heldout";
  std::vector<std::string> overrides;  // --set given to load_sweep (passed on to child cells)
  std::vector<SweepCell> cells;
  bool table1 = false;
  std::vector<SweepFigureSpec> figures;
};

// Parses and expands a sweep file; `overrides` (--set) apply to every cell
// after the file's own. Unknown keys, bad values and invalid cell configs are
// errors naming the file.
SweepSpec load_sweep(const std::string& path, const std::vector<std::string>& overrides = {});

struct SweepOptions {
  int64_t jobs = 1;                  // cells in parallel (child processes)
  std::vector<std::string> devices;  // train.device per job slot, round robin (empty: the config's)
  std::string executable;            // the semcodec binary for child cells (default: this program)
  bool progress = true;
};

struct SweepSummary {
  int64_t cells = 0, skipped = 0, ran = 0, failed = 0;
  double seconds = 0;
  std::string results_json, results_csv;
};

// Runs every cell without a result, then writes <out>/results.{json,csv}.
SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& options);
// Trains the run `key` in this process (resuming a partial run) and evaluates
// each of its cells that has no result yet, writing <run dir>/result-<eval id>.json;
// `device` overrides train.device when not empty.
std::vector<ResultRow> run_sweep_cell(const SweepSpec& spec, const std::string& key, const std::string& device = "");
// Result rows of every cell in spec order: finished ones from result-*.json,
// failed ones from failed-*.json; cells never run are left out.
std::vector<ResultRow> collect_sweep_results(const SweepSpec& spec);

// The sweep's report: Table 1 (Markdown + CSV) and the figures (PNG + data +
// script) under <out>/report/; returns the Markdown summary it also writes there.
std::string write_sweep_report(const SweepSpec& spec, const std::vector<ResultRow>& rows);

}  // namespace semcodec
