// scripts/chaos.sh's judge: says whether what an interrupted-and-resumed job
// left equals what an uninterrupted one wrote.
//
//   chaos_compare checkpoint A B   every tensor bit for bit, config, split, training state
//   chaos_compare features A B     rows bit for bit, labels, ids, classes, text embeddings
//   chaos_compare jsonl A B        the same records in the same order
//   chaos_compare json A B         equal documents
//
// Wall-clock fields (any key containing "second": train_seconds,
// samples_per_second, ...) are left out of JSON comparisons: they differ
// between any two runs. Exit 0 when equal, 1 with the first difference, 2 on
// bad input.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/feature_store.h"
#include "models/checkpoint.h"
#include "util/atomic_file.h"
#include "util/config.h"
#include "util/error.h"

using namespace semcodec;
using json = nlohmann::json;

namespace {

struct Different {
  std::string what;
};

void same(bool equal, const std::string& what) {
  if (!equal) throw Different{what};
}

void same_tensors(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b,
                  const std::string& group) {
  same(a.size() == b.size(), fmt::format("{}: {} tensors vs {}", group, a.size(), b.size()));
  for (const auto& [name, t] : a) {
    const auto it = b.find(name);
    same(it != b.end(), fmt::format("{}: '{}' only in the first", group, name));
    same(t.scalar_type() == it->second.scalar_type() && t.sizes() == it->second.sizes() && at::equal(t, it->second),
         fmt::format("{}: '{}' differs", group, name));
  }
}

json without_clock(const json& j) {
  if (j.is_object()) {
    json out = json::object();
    for (const auto& [k, v] : j.items())
      if (k.find("second") == std::string::npos) out[k] = without_clock(v);
    return out;
  }
  if (j.is_array()) {
    json out = json::array();
    for (const auto& v : j) out.push_back(without_clock(v));
    return out;
  }
  return j;
}

void checkpoints(const std::string& a_path, const std::string& b_path) {
  const Checkpoint a = load_checkpoint(a_path), b = load_checkpoint(b_path);
  same_tensors(a.model, b.model, "model");
  same_tensors(a.optimizer, b.optimizer, "optimizer");
  same_tensors(a.entropy, b.entropy, "entropy");
  same(config_hash(a.config) == config_hash(b.config), "config");
  same(a.train_classes == b.train_classes && a.heldout_classes == b.heldout_classes, "class split");
  same(a.state.epochs_done == b.state.epochs_done && a.state.step == b.state.step, "epochs / steps done");
  same(a.state.best_top1 == b.state.best_top1 && a.state.best_epoch == b.state.best_epoch, "best epoch");
}

void features(const std::string& a_path, const std::string& b_path) {
  const FeatureSet a = read_feature_file(a_path), b = read_feature_file(b_path);
  same(a.size() == b.size(), fmt::format("{} rows vs {}", a.size(), b.size()));
  same(at::equal(a.features, b.features), "rows");
  same(at::equal(a.labels, b.labels), "labels");
  same(a.ids == b.ids, "ids");
  same(a.class_names == b.class_names, "class names");
  same(a.has_text() == b.has_text() && (!a.has_text() || at::equal(a.class_embeddings, b.class_embeddings)),
       "text embeddings");
  same(a.image_sizes.defined() == b.image_sizes.defined() &&
           (!a.image_sizes.defined() || at::equal(a.image_sizes, b.image_sizes)),
       "image sizes");
}

std::vector<json> records(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(read_file(path));
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    try {
      out.push_back(without_clock(json::parse(line)));
    } catch (const json::exception&) {
      fail("{}: line {} is not a JSON record (a torn write?)", path, line_no);
    }
  }
  return out;
}

void jsonl(const std::string& a_path, const std::string& b_path) {
  const auto a = records(a_path), b = records(b_path);
  same(a.size() == b.size(), fmt::format("{} records vs {}", a.size(), b.size()));
  for (size_t i = 0; i < a.size(); ++i) same(a[i] == b[i], fmt::format("record {}: {} vs {}", i + 1, a[i].dump(), b[i].dump()));
}

// The first place where two documents differ, as a JSON pointer with both values.
std::string first_difference(const json& a, const json& b, const std::string& at) {
  if (a.type() == b.type() && a.is_object()) {
    for (const auto& [k, v] : a.items()) {
      if (!b.contains(k)) return fmt::format("{}/{} only in the first", at, k);
      if (std::string d = first_difference(v, b.at(k), at + "/" + k); !d.empty()) return d;
    }
    for (const auto& [k, v] : b.items())
      if (!a.contains(k)) return fmt::format("{}/{} only in the second", at, k);
    return "";
  }
  if (a.type() == b.type() && a.is_array() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i)
      if (std::string d = first_difference(a[i], b[i], at + "/" + std::to_string(i)); !d.empty()) return d;
    return "";
  }
  return a == b ? "" : fmt::format("{}: {} vs {}", at.empty() ? "/" : at, a.dump(), b.dump());
}

json document(const std::string& path) {
  try {
    return without_clock(json::parse(read_file(path)));
  } catch (const json::exception& e) {
    fail("{}: not JSON: {}", path, e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: chaos_compare checkpoint|features|jsonl|json A B\n");
    return 2;
  }
  const std::string kind = argv[1], a = argv[2], b = argv[3];
  try {
    if (kind == "checkpoint") checkpoints(a, b);
    else if (kind == "features") features(a, b);
    else if (kind == "jsonl") jsonl(a, b);
    else if (kind == "json") {
      const std::string d = first_difference(document(a), document(b), "");
      same(d.empty(), d);
    }
    else fail("unknown kind '{}' (checkpoint, features, jsonl, json)", kind);
  } catch (const Different& d) {
    std::fprintf(stderr, "chaos_compare: %s and %s differ: %s\n", a.c_str(), b.c_str(), d.what.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chaos_compare: %s\n", e.what());
    return 2;
  }
  return 0;
}
