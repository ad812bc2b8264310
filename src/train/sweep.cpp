#include "train/sweep.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "codec/checkpoint_codec.h"
#include "data/feature_store.h"
#include "data/synthetic.h"
#include "eval/checkpoint_eval.h"
#include "eval/plot.h"
#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "train/trainer.h"
#include "util/atomic_file.h"
#include "util/config.h"
#include "util/config_paths.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/subprocess.h"

namespace semcodec {

namespace {

using config_detail::check_keys;
using config_detail::require_map;

std::string scalar(const YAML::Node& n, const std::string& source, const std::string& path) {
  require(n.IsScalar(), "{}: '{}' must be a scalar", source, path);
  return n.Scalar();
}

std::vector<std::string> string_list(const YAML::Node& n, const std::string& source, const std::string& path) {
  std::vector<std::string> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  require(n.IsSequence(), "{}: '{}' must be a list of \"key=value\" strings", source, path);
  for (size_t i = 0; i < n.size(); ++i) {
    std::string s = scalar(n[i], source, fmt::format("{}[{}]", path, i));
    require(s.find('=') != std::string::npos, "{}: '{}[{}]' = '{}' is not of the form key=value", source, path, i, s);
    out.push_back(s);
  }
  return out;
}

// A scalar as JSON (number when it reads as one), for the settings record.
nlohmann::json scalar_json(const std::string& s) {
  try {
    size_t used = 0;
    const long long i = std::stoll(s, &used);
    if (used == s.size()) return i;
    const double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (const std::exception&) {
  }
  return s;
}

// The hash of the keys whose values differ from the built-in defaults, so a
// key added to semcodec after cells were run (with a default that keeps their
// behaviour) does not invalidate them. Settings that do not change a cell's result
// (output directory, device, threads) stay out of it.
std::string cell_key(RunConfig cfg) {
  cfg.output.dir.clear();
  cfg.train.device = "auto";
  cfg.train.threads = 0;
  const nlohmann::json mine = to_json(cfg).flatten(), defaults = to_json(RunConfig{}).flatten();
  nlohmann::json diff = nlohmann::json::object();
  for (const auto& [path, value] : mine.items())
    if (!defaults.contains(path) || defaults[path] != value) diff[path] = value;
  return config_detail::fnv1a64_hex(diff.dump());
}

const SweepCell& find_cell(const SweepSpec& spec, const std::string& key) {
  for (const SweepCell& c : spec.cells)
    if (c.key == key) return c;
  fail("{}: no cell with key '{}' (the sweep file changed?)", spec.source, key);
}

std::string log_path(const SweepCell& c) { return c.dir() + "/cell.log"; }

// The last lines of a cell's log: what a failed cell says about itself.
std::string log_tail(const std::string& path, size_t max_chars = 800) {
  if (!file_exists(path)) return "(no log)";
  std::string text = read_file(path);
  for (char& ch : text)
    if (ch == '\r') ch = '\n';
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > max_chars) text = "..." + text.substr(text.size() - max_chars);
  return text;
}

ResultRow row_for(const SweepCell& c, const nlohmann::json& j, const std::string& source) {
  ResultRow r = result_from_json(j, source);
  // Identity comes from the current sweep file (labels may be renamed without rerunning).
  r.key = c.key;
  r.dataset = c.dataset;
  r.label = c.label;
  r.seed = c.seed;
  r.settings = c.settings;
  if (r.classifier.empty() && c.classifier != "auto") r.classifier = c.classifier;
  return r;
}

}  // namespace

SweepSpec load_sweep(const std::string& path, const std::vector<std::string>& extra) {
  const YAML::Node root = config_detail::parse_yaml_file(path);
  require_map(root, path, "(top level)");
  check_keys(root, {"name", "base", "out", "synthetic", "set", "eval", "seeds", "datasets", "methods", "report"}, path,
             "");
  SweepSpec s;
  s.source = path;
  // Relative paths in the file resolve against its project directory; the
  // cells' configs carry it (util/config_paths.h). Hashes see the text as written.
  const std::string project = config_project_dir(path);
  s.overrides = anchor_path_overrides(extra, project);
  require(root["base"].IsDefined(), "{}: missing 'base' (the run config every cell starts from)", path);
  require(root["out"].IsDefined(), "{}: missing 'out' (the sweep's output directory)", path);
  s.base = resolve_config_path(project, scalar(root["base"], path, "base"));
  const std::string out_written = scalar(root["out"], path, "out");
  s.out = resolve_config_path(project, out_written);
  s.name = root["name"].IsDefined() ? scalar(root["name"], path, "name")
                                    : std::filesystem::path(path).stem().string();
  if (root["synthetic"].IsDefined())
    s.synthetic = resolve_config_path(project, scalar(root["synthetic"], path, "synthetic"));
  const std::vector<std::string> global = string_list(root["set"], path, "set");
  if (root["eval"].IsDefined()) {
    require_map(root["eval"], path, "eval");
    check_keys(root["eval"], {"classes"}, path, "eval");
    if (root["eval"]["classes"].IsDefined()) s.eval_classes = scalar(root["eval"]["classes"], path, "eval.classes");
  }
  std::vector<int64_t> seeds;
  if (root["seeds"].IsDefined()) {
    require(root["seeds"].IsSequence() && root["seeds"].size() > 0, "{}: 'seeds' must be a non-empty list", path);
    for (size_t i = 0; i < root["seeds"].size(); ++i) {
      const std::string v = scalar(root["seeds"][i], path, fmt::format("seeds[{}]", i));
      try {
        seeds.push_back(std::stoll(v));
      } catch (const std::exception&) {
        fail("{}: seeds[{}] = '{}' is not an integer", path, i, v);
      }
    }
  }
  const bool seeded = !seeds.empty();
  if (!seeded) seeds.push_back(0);

  struct Named {
    std::string name, eval_features, eval_classes, classifier = "auto", reference_features;
    std::vector<std::string> set;
    std::vector<std::pair<std::string, std::vector<std::string>>> vary;
  };
  auto read_entries = [&](const char* key, const char* name_key, bool with_vary) {
    std::vector<Named> out;
    const YAML::Node list = root[key];
    require(list.IsDefined() && list.IsSequence() && list.size() > 0, "{}: '{}' must be a non-empty list", path, key);
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string at = fmt::format("{}[{}]", key, i);
      require_map(list[i], path, at);
      std::vector<std::string> known = {name_key, "set"};
      if (with_vary) known.push_back("vary");
      else known.insert(known.end(), {"eval_features", "eval_classes", "classifier", "reference_features"});
      check_keys(list[i], known, path, at);
      Named e;
      require(list[i][name_key].IsDefined(), "{}: '{}' has no '{}'", path, at, name_key);
      e.name = scalar(list[i][name_key], path, at + "." + name_key);
      e.set = string_list(list[i]["set"], path, at + ".set");
      if (!with_vary && list[i]["eval_features"].IsDefined())
        e.eval_features = scalar(list[i]["eval_features"], path, at + ".eval_features");
      if (!with_vary && list[i]["eval_classes"].IsDefined())
        e.eval_classes = scalar(list[i]["eval_classes"], path, at + ".eval_classes");
      if (!with_vary && list[i]["classifier"].IsDefined()) {
        e.classifier = scalar(list[i]["classifier"], path, at + ".classifier");
        require(e.classifier == "auto" || e.classifier == "zero-shot" || e.classifier == "ncm",
                "{}: {}.classifier: '{}' is not auto, zero-shot or ncm", path, at, e.classifier);
      }
      if (!with_vary && list[i]["reference_features"].IsDefined())
        e.reference_features = scalar(list[i]["reference_features"], path, at + ".reference_features");
      if (with_vary && list[i]["vary"].IsDefined()) {
        require_map(list[i]["vary"], path, at + ".vary");
        for (const auto& kv : list[i]["vary"]) {
          const std::string k = kv.first.as<std::string>();
          const std::string vp = at + ".vary." + k;
          require(kv.second.IsSequence() && kv.second.size() > 0, "{}: '{}' must be a non-empty list", path, vp);
          std::vector<std::string> values;
          for (size_t j = 0; j < kv.second.size(); ++j)
            values.push_back(scalar(kv.second[j], path, fmt::format("{}[{}]", vp, j)));
          e.vary.emplace_back(k, values);
        }
      }
      out.push_back(std::move(e));
    }
    return out;
  };
  const std::vector<Named> datasets = read_entries("datasets", "name", false);
  const std::vector<Named> methods = read_entries("methods", "label", true);

  if (root["report"].IsDefined()) {
    const YAML::Node rep = root["report"];
    require_map(rep, path, "report");
    check_keys(rep, {"table1", "figures"}, path, "report");
    if (rep["table1"].IsDefined()) s.table1 = scalar(rep["table1"], path, "report.table1") == "true";
    if (rep["figures"].IsDefined()) {
      require(rep["figures"].IsSequence(), "{}: 'report.figures' must be a list", path);
      for (size_t i = 0; i < rep["figures"].size(); ++i) {
        const std::string at = fmt::format("report.figures[{}]", i);
        const YAML::Node f = rep["figures"][i];
        require_map(f, path, at);
        check_keys(f, {"name", "title", "x", "dataset"}, path, at);
        SweepFigureSpec fs;
        require(f["name"].IsDefined(), "{}: '{}' has no 'name'", path, at);
        fs.name = scalar(f["name"], path, at + ".name");
        require(!fs.name.empty() && fs.name.find_first_of("/\\ ") == std::string::npos,
                "{}: '{}.name' = '{}' must be a plain file name", path, at, fs.name);
        fs.title = f["title"].IsDefined() ? scalar(f["title"], path, at + ".title") : fs.name;
        if (f["x"].IsDefined()) fs.x = scalar(f["x"], path, at + ".x");
        require(fs.x == "bpd" || fs.x == "bpp" || fs.x == "bits", "{}: '{}.x' = '{}' (bpd, bpp or bits)", path, at,
                fs.x);
        if (f["dataset"].IsDefined()) fs.dataset = scalar(f["dataset"], path, at + ".dataset");
        s.figures.push_back(fs);
      }
    }
  }

  std::map<std::string, bool> seen;
  for (const Named& d : datasets)
    for (const Named& m : methods) {
      // Cartesian product of the varied keys, the first key slowest.
      size_t combos = 1;
      for (const auto& v : m.vary) combos *= v.second.size();
      for (size_t c = 0; c < combos; ++c)
        for (int64_t seed : seeds) {
          SweepCell cell;
          cell.dataset = d.name;
          cell.label = m.name;
          cell.seed = seed;
          cell.overrides = global;
          cell.overrides.insert(cell.overrides.end(), d.set.begin(), d.set.end());
          cell.overrides.insert(cell.overrides.end(), m.set.begin(), m.set.end());
          size_t rest = c;
          for (size_t vi = m.vary.size(); vi-- > 0;) {
            const auto& [k, values] = m.vary[vi];
            const std::string& v = values[rest % values.size()];
            rest /= values.size();
            cell.overrides.push_back(k + "=" + v);
            cell.settings[k] = scalar_json(v);
          }
          if (seeded) cell.overrides.push_back(fmt::format("train.seed={}", seed));
          cell.overrides.insert(cell.overrides.end(), s.overrides.begin(), s.overrides.end());
          try {
            cell.config = load_config<RunConfig>(s.base, cell.overrides);
            validate_method_keys(cell.config.model, s.base);
            cell.config.project_dir = project;
          } catch (const Error& e) {
            fail("{}: cell (dataset '{}', method '{}', settings {}): {}", path, d.name, m.name, cell.settings.dump(),
                 e.what());
          }
          cell.key = cell_key(cell.config);
          // Another dataset's file is evaluated on all its classes by default.
          cell.eval_features = d.eval_features.empty() ? cell.config.data.features : d.eval_features;
          cell.eval_classes = !d.eval_classes.empty()      ? d.eval_classes
                              : d.eval_features.empty() ? s.eval_classes
                                                        : std::string("all");
          cell.classifier = d.classifier;
          cell.reference_features = d.reference_features;
          // The classifier settings enter the id only when given, so older results keep theirs.
          std::string eval_settings = cell.eval_features + "\n" + cell.eval_classes;
          if (cell.classifier != "auto" || !cell.reference_features.empty())
            eval_settings += "\n" + cell.classifier + "\n" + cell.reference_features;
          cell.eval_id = config_detail::fnv1a64_hex(eval_settings).substr(0, 8);
          cell.eval_features = resolve_config_path(project, cell.eval_features);
          cell.reference_features = resolve_config_path(project, cell.reference_features);
          if (cell.eval_classes != "heldout" && cell.eval_classes != "train" && cell.eval_classes != "all")
            cell.eval_classes = resolve_config_path(project, cell.eval_classes);
          if (seen.count(cell.key + cell.eval_id)) continue;  // entries that resolve to the same cell run once
          seen[cell.key + cell.eval_id] = true;
          cell.config.output.dir = out_written + "/cells/" + cell.key;
          s.cells.push_back(std::move(cell));
        }
    }
  return s;
}

std::vector<ResultRow> run_sweep_cell(const SweepSpec& spec, const std::string& key, const std::string& device) {
  const SweepCell& first = find_cell(spec, key);
  RunConfig cfg = first.config;
  if (!device.empty()) cfg.train.device = device;
  ensure_dir(first.dir());
  write_file_atomic(first.dir() + "/cell.json", nlohmann::json{{"sweep", spec.source},
                                                               {"label", first.label},
                                                               {"seed", first.seed},
                                                               {"settings", first.settings},
                                                               {"overrides", first.overrides}}
                                                        .dump(2) +
                                                    "\n");
  TrainOptions topt;
  topt.config_source = fmt::format("{} (cell {})", spec.source, key);
  topt.progress = false;
  double train_seconds = 0;
  const std::string best = first.dir() + "/best.safetensors";
  const bool trained = file_exists(first.dir() + "/trained.json") && file_exists(best);
  if (!trained) {
    // A run interrupted mid-training continues; fitted methods simply refit.
    if (method_info(cfg.model.method).kind == MethodKind::network && file_exists(first.dir() + "/last.safetensors"))
      topt.resume = true;
    else
      topt.overwrite = true;
    const auto t0 = std::chrono::steady_clock::now();
    train_run(cfg, topt);
    train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_file_atomic(first.dir() + "/trained.json", nlohmann::json{{"train_seconds", train_seconds}}.dump() + "\n");
  } else {
    train_seconds = nlohmann::json::parse(read_file(first.dir() + "/trained.json")).value("train_seconds", 0.0);
  }
  // Evaluate with the threads training set up, whether this process trained
  // or found the run trained: a resumed sweep must give the uninterrupted
  // one's results bit for bit (scripts/chaos.sh).
  configure_run_threads(cfg);
  const bool bitstream = has_entropy_tables(load_checkpoint(best));
  std::vector<ResultRow> out;
  for (const SweepCell& cell : spec.cells) {
    if (cell.key != key || file_exists(cell.result_path())) continue;
    CheckpointEvalOptions e;
    e.classes = cell.eval_classes;
    e.classifier = cell.classifier;
    e.reference_features = cell.reference_features;
    e.label = cell.label;
    e.device = cfg.train.device;
    e.via_bitstream = bitstream;
    const auto t1 = std::chrono::steady_clock::now();
    nlohmann::json ev = evaluate_checkpoint(best, cell.eval_features, e);
    ev["key"] = key;
    ev["dataset"] = cell.dataset;
    ev["method"] = cfg.model.method;
    ev["status"] = "ok";
    ev["embed_dim"] = cfg.model.embed_dim;
    if (!bitstream) ev["rate_source"] = "raw";
    ev["train_seconds"] = train_seconds;
    ev["eval_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    ResultRow row = row_for(cell, ev, cell.result_path());
    write_file_atomic(cell.result_path(), result_to_json(row).dump(2) + "\n");
    std::remove(cell.failed_path().c_str());
    out.push_back(row);
  }
  return out;
}

std::vector<ResultRow> collect_sweep_results(const SweepSpec& spec) {
  std::vector<ResultRow> rows;
  for (const SweepCell& c : spec.cells) {
    for (const std::string& p : {c.result_path(), c.failed_path()}) {
      if (!file_exists(p)) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_file(p));
      } catch (const nlohmann::json::exception& e) {
        fail("{}: not valid JSON ({}); delete it to rerun the cell", p, e.what());
      }
      rows.push_back(row_for(c, j, p));
      break;
    }
  }
  return rows;
}

SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& opt) {
  require(opt.jobs >= 1, "sweep: --jobs must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  SweepSummary sum;
  sum.cells = static_cast<int64_t>(spec.cells.size());
  if (!spec.synthetic.empty() && !file_exists(spec.synthetic)) {
    fmt::print(stderr, "sweep: writing the built-in synthetic dataset to {}\n", spec.synthetic);
    write_feature_file(spec.synthetic, make_synthetic({}));
  }
  ensure_dir(spec.out);
  // One child process per training run with unfinished cells.
  std::vector<const SweepCell*> todo;  // the first cell of each such run
  std::map<std::string, bool> queued;
  for (const SweepCell& c : spec.cells) {
    if (file_exists(c.result_path())) {
      ++sum.skipped;
    } else if (!queued[c.key]) {
      queued[c.key] = true;
      todo.push_back(&c);
    }
  }
  const std::string exe = opt.executable.empty() ? self_executable() : opt.executable;
  ProgressBar bar(fmt::format("sweep {}", spec.name), static_cast<int64_t>(todo.size()), "runs", opt.progress);
  std::map<pid_t, std::pair<const SweepCell*, size_t>> running;  // pid -> (run's first cell, job slot)
  std::vector<bool> slot_busy(static_cast<size_t>(opt.jobs), false);
  size_t next = 0;
  auto finish = [&](pid_t pid, int rc) {
    auto it = running.find(pid);
    if (it == running.end()) return;  // not one of ours
    const SweepCell& run = *it->second.first;
    slot_busy[it->second.second] = false;
    running.erase(it);
    for (const SweepCell& c : spec.cells) {
      if (c.key != run.key) continue;
      if (rc == 0 && file_exists(c.result_path())) {
        ++sum.ran;
        continue;
      }
      ++sum.failed;
      nlohmann::json j = {{"key", c.key},
                          {"dataset", c.dataset},
                          {"label", c.label},
                          {"method", c.config.model.method},
                          {"status", "failed"},
                          {"error", fmt::format("exit code {}: {}", rc, log_tail(log_path(c)))}};
      write_file_atomic(c.failed_path(), j.dump(2) + "\n");
      fmt::print(stderr, "\nsweep: cell {} ({} / {} {}) failed (exit {}); log: {}\n", c.key, c.dataset, c.label,
                 c.settings.dump(), rc, log_path(c));
    }
    bar.advance(1);
  };
  while (next < todo.size() || !running.empty()) {
    while (next < todo.size() && static_cast<int64_t>(running.size()) < opt.jobs) {
      const SweepCell& c = *todo[next++];
      size_t slot = 0;
      while (slot_busy[slot]) ++slot;
      slot_busy[slot] = true;
      ensure_dir(c.dir());
      std::vector<std::string> argv = {exe, "sweep", spec.source, "--cell", c.key, "--quiet"};
      for (const std::string& o : spec.overrides) argv.insert(argv.end(), {"--set", o});
      if (!opt.devices.empty()) argv.insert(argv.end(), {"--device", opt.devices[slot % opt.devices.size()]});
      std::remove(log_path(c).c_str());
      // The cell dies with this process (die_with_parent): a killed sweep leaves no orphan writing its cells.
      running[spawn_process(argv, log_path(c), {"SEMCODEC_SWEEP_PARENT=" + std::to_string(::getpid())})] = {&c, slot};
    }
    if (running.empty()) break;
    const auto [pid, rc] = wait_any_process();
    finish(pid, rc);
  }
  bar.finish();
  const std::vector<ResultRow> rows = collect_sweep_results(spec);
  sum.results_json = spec.out + "/results.json";
  sum.results_csv = spec.out + "/results.csv";
  write_file_atomic(sum.results_json, results_json(rows));
  write_file_atomic(sum.results_csv, results_csv(rows));
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

std::string write_sweep_report(const SweepSpec& spec, const std::vector<ResultRow>& rows) {
  const std::string dir = spec.out + "/report";
  ensure_dir(dir);
  std::string md = fmt::format("# {}\n\nRegenerate with `semcodec report {}`; {} result rows ({} failed).\n", spec.name,
                               spec.source, rows.size(),
                               std::count_if(rows.begin(), rows.end(), [](const ResultRow& r) { return r.status != "ok"; }));
  if (spec.table1) {
    const std::string t = table1_markdown(rows);
    write_file_atomic(dir + "/table1.md", t);
    write_file_atomic(dir + "/table1.csv", table1_csv(rows));
    md += "\n## Table 1: zero-shot top-1 (%) by configured bits per dimension\n\n" + t;
  }
  for (const SweepFigureSpec& fs : spec.figures) {
    const Figure f = accuracy_figure(rows, fs.name, fs.title, fs.x, fs.dataset);
    const PlotFiles p = write_figure(f, dir);
    md += fmt::format("\n## {}\n\n", fs.title);
    md += p.rendered ? fmt::format("![{}]({}.png)\n", fs.title, fs.name)
                     : fmt::format("No PNG: {}. Data: {}.dat, script: {}.gp\n", p.message, fs.name, fs.name);
    md += "\n| series | points (x, top-1 %) |\n|---|---|\n";
    for (const Series& s : f.series) {
      std::string pts;
      for (const auto& [x, y] : s.points) pts += fmt::format("{}({:.3g}, {:.2f})", pts.empty() ? "" : " ", x, y);
      md += fmt::format("| {} | {} |\n", s.name, pts);
    }
  }
  write_file_atomic(dir + "/report.md", md);
  return md;
}

}  // namespace semcodec
