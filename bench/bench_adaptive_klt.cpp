// Adaptive KLT (docs/adaptive_klt.md) on real CLIP embeddings, leave one
// dataset out: for each .npz of --lodo-dir (test_x/test_y, val_x/val_y,
// train_x/train_y), fit on every row of the others, code the held-out test
// split as one stream and score it by nearest class mean with the held-out
// 16-shot class means. Prints per dataset and rate: top-1 (and the clean
// top-1), the coded bits per item (side information included), the stream
// directions chosen, and fit / plan / encode / decode times.
// Usage: see kUsage (or run with --help).
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <algorithm>
#include <set>
#include <vector>

#include "bench_args.h"
#include "data/device.h"
#include "data/npy.h"
#include "eval/classifiers.h"
#include "models/quantizers/adaptive_klt.h"

using namespace semcodec;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Split {
  at::Tensor x, y;
};
struct Dataset {
  std::string name;
  Split test, val, train;
};

Dataset load(const std::string& path) {
  auto z = read_npz(path);
  auto get = [&](const std::string& k) { return npy_to_tensor(z.at(k), true, path + ":" + k); };
  Dataset d;
  d.name = std::filesystem::path(path).stem().string();
  d.test = {get("test_x").to(at::kFloat), get("test_y").to(at::kLong)};
  d.val = {get("val_x").to(at::kFloat), get("val_y").to(at::kLong)};
  d.train = {get("train_x").to(at::kFloat), get("train_y").to(at::kLong)};
  return d;
}

std::vector<int64_t> classes_of(const at::Tensor& labels) {
  at::Tensor u = std::get<0>(at::_unique(labels));
  return std::vector<int64_t>(u.data_ptr<int64_t>(), u.data_ptr<int64_t>() + u.numel());
}

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stod(item));
  return out;
}
}  // namespace

constexpr const char* kUsage =
    "bench_adaptive_klt --lodo-dir DIR [--bits 256,400,800] [--deadzone 0.3] [--precisions 0.5,1,2]\n"
    "                   [--max-basis 384] [--stream-mean 1] [--inner 0] [--threads 0]\n"
    "--inner 1: validation protocol instead, reading no test split: fit on every row of one dataset, code\n"
    "another's val split, score with its 16-shot class means (all ordered pairs).";

int main(int argc, char** argv) {
  if (int rc = check_bench_args(argc, argv, kUsage); rc >= 0) return rc;
  std::string dir, bits = "256,400,800", precisions = "0.5,1,2";
  double deadzone = 0.3;
  int64_t max_basis = 384, threads = 0;
  bool stream_mean = true, inner = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--lodo-dir") dir = v;
    else if (k == "--bits") bits = v;
    else if (k == "--deadzone") deadzone = std::stod(v);
    else if (k == "--precisions") precisions = v;
    else if (k == "--max-basis") max_basis = std::stoll(v);
    else if (k == "--stream-mean") stream_mean = v == "1" || v == "true";
    else if (k == "--inner") inner = v == "1" || v == "true";
    else if (k == "--threads") threads = std::stoll(v);
    else {
      fmt::print(stderr, "unknown option {}\n{}\n", k, kUsage);
      return 2;
    }
  }
  if (dir.empty()) {
    fmt::print(stderr, "{}\n", kUsage);
    return 2;
  }
  configure_threads(threads);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".npz") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<Dataset> sets;
  for (const auto& f : files) sets.push_back(load(f));
  fmt::print("| held out | bits target | coded bits | side bits | k | beta | top-1 | clean | cosine | fit s | plan s | enc items/s | dec items/s | coded slots | levels used min/median | distinct items |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  // Runs: (fit rows, coded split, the dataset it comes from, label).
  struct Run {
    at::Tensor fit;
    const Split* coded;
    const Dataset* from;
    std::string label;
  };
  std::vector<Run> runs;
  for (size_t h = 0; h < sets.size(); ++h) {
    if (inner) {
      for (size_t a = 0; a < sets.size(); ++a)
        if (a != h)
          runs.push_back({at::cat({sets[a].train.x, sets[a].val.x, sets[a].test.x}), &sets[h].val, &sets[h],
                          sets[a].name + " -> " + sets[h].name + " (val)"});
      continue;
    }
    std::vector<at::Tensor> parts;
    for (size_t o = 0; o < sets.size(); ++o)
      if (o != h) parts.insert(parts.end(), {sets[o].train.x, sets[o].val.x, sets[o].test.x});
    runs.push_back({at::cat(parts), &sets[h].test, &sets[h], sets[h].name});
  }
  for (const Run& run : runs) {
    const at::Tensor& train = run.fit;
    const Dataset& d = *run.from;
    const Split& coded = *run.coded;
    std::vector<int64_t> classes = classes_of(d.train.y);
    at::Tensor means = class_means(d.train.x, d.train.y, classes);
    const double clean = 100.0 * prototype_accuracy(coded.x, coded.y, means, classes).top1;
    for (double b : parse_list(bits)) {
      AdaptiveKLTOptions o;
      o.target_bits = b;
      o.deadzone = deadzone;
      o.basis_precisions = precisions;
      o.max_stream_directions = max_basis;
      o.stream_mean = stream_mean;
      AdaptiveKLT q(train.size(1), o);
      double t0 = now();
      q.fit(train);
      const double fit_s = now() - t0;
      t0 = now();
      auto side = q.plan_stream(coded.x);
      const double plan_s = now() - t0;
      t0 = now();
      at::Tensor idx = q.encode(coded.x, *side);
      const double enc_s = now() - t0;
      t0 = now();
      at::Tensor rec = q.decode(idx, *side);
      const double dec_s = now() - t0;
      double code = 0, entropy = 0;
      // Collapse check: the levels each coded slot (alphabet > 1) uses, and
      // how many items get a reconstruction of their own.
      std::vector<int64_t> levels_used;
      for (int64_t j = 0; j < side->slots; ++j) {
        const auto& counts = side->slot_counts[static_cast<size_t>(j)];
        double total = 0;
        for (uint64_t c : counts) total += static_cast<double>(c);
        at::Tensor col = idx.select(1, j).contiguous();
        const int64_t* p = col.data_ptr<int64_t>();
        std::vector<double> hist(counts.size(), 0.0);
        for (int64_t r = 0; r < col.numel(); ++r) {
          code -= std::log2(static_cast<double>(counts[static_cast<size_t>(p[r])]) / total);
          hist[static_cast<size_t>(p[r])] += 1;
        }
        for (double h : hist)
          if (h > 0) entropy -= h * std::log2(h / static_cast<double>(col.numel()));
        if (counts.size() > 1)
          levels_used.push_back(static_cast<int64_t>(std::count_if(hist.begin(), hist.end(), [](double h) { return h > 0; })));
      }
      std::sort(levels_used.begin(), levels_used.end());
      std::set<std::vector<int64_t>> distinct;
      {
        const int64_t* pi = idx.data_ptr<int64_t>();
        for (int64_t r = 0; r < idx.size(0); ++r) distinct.insert(std::vector<int64_t>(pi + r * idx.size(1), pi + (r + 1) * idx.size(1)));
      }
      fmt::print(stderr, "{} {}: code {:.1f} bits/item vs plug-in entropy {:.1f}\n", run.label, b,
                 code / static_cast<double>(coded.x.size(0)), entropy / static_cast<double>(coded.x.size(0)));
      const double n = static_cast<double>(coded.x.size(0));
      const double side_bits = 8.0 * static_cast<double>(side->bytes.size());
      const auto stats = q.stream_stats(*side);
      fmt::print("| {} | {:.0f} | {:.1f} | {:.1f} | {} | {} | {:.2f} | {:.2f} | {:.4f} | {:.1f} | {:.1f} | {:.0f} | {:.0f} | {} | {}/{} | {} |\n",
                 run.label, b, (side_bits + code) / n, side_bits / n, stats.basis_vectors, stats.basis_precision,
                 100.0 * prototype_accuracy(rec, coded.y, means, classes).top1, clean, mean_cosine(rec, coded.x), fit_s,
                 plan_s, n / enc_s, n / dec_s, levels_used.size(), levels_used.empty() ? 0 : levels_used.front(),
                 levels_used.empty() ? 0 : levels_used[levels_used.size() / 2], distinct.size());
      std::fflush(stdout);
    }
  }
  return 0;
}
