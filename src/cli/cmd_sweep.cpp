#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdlib>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "eval/report.h"
#include "train/sweep.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/subprocess.h"

namespace semcodec::cli {

void add_sweep(CLI::App& app) {
  struct Opts {
    std::string spec, cell, device, devices;
    std::vector<std::string> sets;
    int64_t jobs = 1;
    bool quiet = false, list = false, no_report = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "sweep", "train and evaluate a grid of runs from a sweep file (docs/sweeps.md); finished cells are skipped");
  cmd->add_option("spec", o->spec, "sweep file, e.g. configs/sweeps/table1_synthetic.yaml")->required();
  cmd->add_option("-j,--jobs", o->jobs, "cells run at once, each in its own process")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  cmd->add_option("--devices", o->devices, "comma-separated train.device per job slot, e.g. cuda:0,cuda:1");
  add_set_option(cmd, o->sets, "in every cell");
  cmd->add_flag("--list", o->list, "print the cells and whether they are done, run nothing");
  cmd->add_flag("--no-report", o->no_report, "do not write the report after the sweep");
  cmd->add_option("--cell", o->cell, "run only this cell in this process (what the sweep's child processes do)");
  add_device_option(cmd, o->device, "with --cell: the cell's train.device (default: its config's)");
  add_quiet_flag(cmd, o->quiet);
  cmd->callback([o] {
    const SweepSpec spec = load_sweep(o->spec, o->sets);
    if (!o->cell.empty()) {
      if (const char* parent = std::getenv("SEMCODEC_SWEEP_PARENT")) die_with_parent(std::atoi(parent));
      for (const ResultRow& r : run_sweep_cell(spec, o->cell, o->device))
        fmt::print("cell {}: {} / {}: top-1 {:.2f}% at {:.1f} bits/item ({})\n", r.key, r.dataset, r.label,
                   100 * r.top1, r.bits_per_item, r.rate_source);
      return;
    }
    if (o->list) {
      const auto rows = collect_sweep_results(spec);
      for (const SweepCell& c : spec.cells) {
        std::string state = "todo";
        for (const auto& r : rows)
          if (r.key == c.key) state = r.status == "ok" ? "done" : "failed";
        fmt::print("{} {:6} {} | {} | {}\n", c.key, state, c.dataset, c.label, c.settings.dump());
      }
      return;
    }
    SweepOptions opt;
    opt.jobs = o->jobs;
    opt.progress = !o->quiet;
    for (size_t s = 0, e; s < o->devices.size(); s = e + 1) {
      e = o->devices.find(',', s);
      if (e == std::string::npos) e = o->devices.size();
      if (e > s) opt.devices.push_back(o->devices.substr(s, e - s));
    }
    const SweepSummary sum = run_sweep(spec, opt);
    fmt::print("sweep {}: {} cells, {} already done, {} run, {} failed, {:.0f} s\nresults: {}, {}\n", spec.name,
               sum.cells, sum.skipped, sum.ran, sum.failed, sum.seconds, sum.results_json, sum.results_csv);
    if (!o->no_report && (spec.table1 || !spec.figures.empty())) {
      write_sweep_report(spec, collect_sweep_results(spec));
      fmt::print("report: {}/report/report.md\n", spec.out);
    }
    require(sum.failed == 0, "{}: {} of {} cells failed; their failed.json and cell.log under {}/cells say why, and "
            "the next run retries them", o->spec, sum.failed, sum.cells, spec.out);
  });
}

void add_report(CLI::App& app) {
  struct Opts {
    std::string spec;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "report",
      "turn a sweep's finished cells into <out>/results.{json,csv}, Table 1 (Markdown, CSV) and figures (PNG via "
      "gnuplot) under <out>/report; cells not run yet are left out (`sweep --list` names them)");
  cmd->add_option("spec", o->spec, "the sweep file whose results to report")->required();
  cmd->callback([o] {
    const SweepSpec spec = load_sweep(o->spec);
    const auto rows = collect_sweep_results(spec);
    require(!rows.empty(), "{}: no finished cells under {}; run `semcodec sweep {}` first", o->spec, spec.out,
            o->spec);
    write_file_atomic(spec.out + "/results.json", results_json(rows));
    write_file_atomic(spec.out + "/results.csv", results_csv(rows));
    fmt::print("{}\nreport: {}/report/report.md ({} result rows; results: {}/results.json)\n",
               write_sweep_report(spec, rows), spec.out, rows.size(), spec.out);
  });
}

}  // namespace semcodec::cli
