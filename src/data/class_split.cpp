#include "data/class_split.h"

#include <ATen/ATen.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>

#include "data/npy.h"
#include "util/error.h"
#include "util/random.h"
#include "util/yaml_bounded.h"

namespace semcodec {

namespace {

// Uniform in [0, bound) by rejection, so no modulo bias and no reliance on
// implementation-defined distributions.
uint64_t uniform_below(SplitMix64& rng, uint64_t bound) {
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
  uint64_t r;
  do r = rng.next();
  while (r >= limit);
  return r % bound;
}

std::string lower_ext(const std::string& path) {
  auto dot = path.find_last_of('.');
  auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string e = path.substr(dot);
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

std::vector<int64_t> read_txt(const std::string& path) {
  std::ifstream f(path);
  require(f.good(), "{}: cannot open class list (missing or unreadable)", path);
  std::vector<int64_t> out;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    size_t e = line.find_last_not_of(" \t\r");
    std::string tok = line.substr(b, e - b + 1);
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size()) fail("{}:{}: expected one integer class index, got '{}'", path, lineno, tok);
    out.push_back(v);
  }
  return out;
}

std::vector<int64_t> yaml_ints(const YAML::Node& seq, const std::string& path) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < seq.size(); ++i) {
    try {
      out.push_back(seq[i].as<int64_t>());
    } catch (const YAML::Exception&) {
      fail("{}: entry {} of the class list is not an integer", path, i);
    }
  }
  return out;
}

std::vector<int64_t> read_yaml(const std::string& path) {
  const YAML::Node root = load_yaml_file_bounded(path, "class list");
  if (root.IsSequence()) return yaml_ints(root, path);
  if (root.IsMap() && root["classes"] && root["classes"].IsSequence()) return yaml_ints(root["classes"], path);
  fail("{}: expected a YAML sequence of class indices, or a map with a 'classes' sequence", path);
}

std::vector<int64_t> read_npy_list(const std::string& path) {
  NpyArray a = read_npy(path);
  if (a.kind() != 'i' && a.kind() != 'u') fail("{}: class list must hold integers, found dtype {}", path, a.dtype);
  if (a.shape.size() != 1) fail("{}: class list must be 1-D, found {} dimensions", path, a.shape.size());
  at::Tensor t = npy_to_tensor(a, false, path).to(at::kLong).contiguous();
  const int64_t* p = t.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

std::string preview(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  if (v.size() > 8) s += ", ...";
  return s;
}

}  // namespace

ClassSplit split_by_seed(int64_t num_classes, int64_t num_heldout, uint64_t seed) {
  require(num_classes >= 2, "class split: need at least 2 classes, got {}", num_classes);
  require(num_heldout >= 1 && num_heldout < num_classes,
          "class split: held-out classes must be in [1, {}] for {} classes, got {}", num_classes - 1, num_classes,
          num_heldout);
  std::vector<int64_t> perm(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < num_classes; ++i) perm[static_cast<size_t>(i)] = i;
  SplitMix64 rng(seed);
  for (int64_t i = num_classes - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(i) + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  ClassSplit s;
  s.heldout.assign(perm.begin(), perm.begin() + num_heldout);
  s.train.assign(perm.begin() + num_heldout, perm.end());
  std::sort(s.heldout.begin(), s.heldout.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

std::vector<int64_t> read_class_list(const std::string& path) {
  const std::string ext = lower_ext(path);
  if (ext == ".npy") return read_npy_list(path);
  if (ext == ".txt") return read_txt(path);
  if (ext == ".yaml" || ext == ".yml") return read_yaml(path);
  fail("{}: unknown class-list format '{}' (use .npy, .txt, .yaml or .yml)", path, ext);
}

ClassSplit split_from_files(const std::string& train_path, const std::string& heldout_path, int64_t num_classes) {
  ClassSplit s;
  s.train = read_class_list(train_path);
  s.heldout = read_class_list(heldout_path);
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.heldout.begin(), s.heldout.end());
  validate_split(s, num_classes, train_path + " / " + heldout_path);
  return s;
}

void validate_split(const ClassSplit& split, int64_t num_classes, const std::string& source) {
  require(!split.train.empty(), "{}: the training class list is empty", source);
  require(!split.heldout.empty(), "{}: the held-out class list is empty", source);
  std::vector<uint8_t> seen(static_cast<size_t>(std::max<int64_t>(num_classes, 0)), 0);
  auto scan = [&](const std::vector<int64_t>& list, const char* side, uint8_t mark) {
    for (int64_t c : list) {
      if (c < 0 || c >= num_classes)
        fail("{}: {} class {} is outside [0, {}) (list: {})", source, side, c, num_classes, preview(list));
      uint8_t& m = seen[static_cast<size_t>(c)];
      if (m == mark) fail("{}: {} class {} is listed twice", source, side, c);
      if (m != 0) fail("{}: class {} is in both the training and the held-out list", source, c);
      m = mark;
    }
  };
  scan(split.train, "training", 1);
  scan(split.heldout, "held-out", 2);
}

}  // namespace semcodec
