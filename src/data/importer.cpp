#include "data/importer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "data/image_dataset.h"
#include "data/label_classes.h"
#include "data/npy.h"
#include "data/torch_archive.h"
#include "data/torch_archive_tensor.h"
#include "util/error.h"

namespace semcodec {

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// What a file holds, told by its first bytes rather than its name: the
// release's feature files are .pt archives, and a .npz is a zip too.
enum class ArrayFile { npy, npz, torch };

ArrayFile sniff_array_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  require(f.good(), "{}: cannot open {} file (missing or unreadable)", path, what);
  char head[6] = {};
  f.read(head, sizeof head);
  const std::string magic(head, static_cast<size_t>(f.gcount()));
  if (magic.rfind("\x93NUMPY", 0) == 0) return ArrayFile::npy;
  if (magic.rfind("PK", 0) == 0) {
    // Both numpy.savez and torch.save write zips; only a torch archive has a data.pkl.
    if (ends_with(path, ".npz")) return ArrayFile::npz;
    try {
      probe_torch_archive(path);
      return ArrayFile::torch;
    } catch (const Error&) {
      if (ends_with(path, ".pt") || ends_with(path, ".pth")) throw;
      return ArrayFile::npz;
    }
  }
  // PyTorch < 1.6 (or _use_new_zipfile_serialization=False) pickles the whole file.
  if (!magic.empty() && static_cast<unsigned char>(magic[0]) == 0x80)
    fail("{}: a legacy (non-zip) torch.save file, which is not read; re-save it with PyTorch >= 1.6 "
         "(torch.save(torch.load(f), f)) or export the {} as .npy",
         path, what);
  fail("{}: not a .npy, .npz or PyTorch (.pt) file (the {})", path, what);
}

std::string key_list(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + (k.empty() ? std::string("<the root tensor>") : k);
  return out;
}

// A torch.save file: a bare tensor, a (features, labels) tuple (keys "0",
// "1") or a state dict. `default_key` picks the element of a two-tensor tuple
// when no key is given, so the release's feature files need none.
at::Tensor load_torch_array(const std::string& path, const std::string& key, const std::string& default_key,
                            const char* what, std::string& name) {
  std::map<std::string, at::Tensor> tensors = read_torch_tensors(path);
  std::vector<std::string> keys;
  for (const auto& kv : tensors) keys.push_back(kv.first);
  std::string pick = key;
  if (pick.empty()) {
    if (tensors.size() == 1) pick = keys[0];
    else if (keys == std::vector<std::string>{"0", "1"} && !default_key.empty()) pick = default_key;
    else
      fail("{}: holds {} tensors ({}); say which one is the {} with {}:<name>", path, tensors.size(), key_list(keys),
           what, path);
  }
  auto it = tensors.find(pick);
  if (it == tensors.end()) fail("{}: no tensor named '{}' (the {}); it holds {}", path, pick, what, key_list(keys));
  name = pick.empty() ? path : path + ":" + pick;
  return it->second;
}

// Loads one array as a tensor; returns the display name through `name`.
at::Tensor load_array(const std::string& path, const std::string& key, const char* what, std::string& name,
                      const std::string& default_torch_key = "") {
  require(!path.empty(), "import: no {} file given", what);
  const ArrayFile kind = sniff_array_file(path, what);
  if (kind == ArrayFile::torch) return load_torch_array(path, key, default_torch_key, what, name);
  if (kind == ArrayFile::npz) {
    // Only the member asked for is inflated.
    const NpzReader npz(path);
    std::string k = key;
    if (k.empty()) {
      if (npz.keys().size() != 1) {
        std::string keys;
        for (const auto& kk : npz.keys()) keys += (keys.empty() ? "" : ", ") + kk;
        fail("{}: holds {} arrays ({}); say which one is the {}", path, npz.keys().size(), keys, what);
      }
      k = npz.keys().front();
    } else if (std::find(npz.keys().begin(), npz.keys().end(), k) == npz.keys().end()) {
      fail("{}: no array named '{}' (the {})", path, key, what);
    }
    name = path + ":" + k;
    return npy_to_tensor(npz.read(k), false, name);
  }
  require(key.empty(), "{}: a key ('{}') only applies to .npz and .pt files", path, key);
  name = path;
  return npy_to_tensor(read_npy(path), false, name);
}

std::vector<std::string> read_lines(const std::string& path, const char* what) {
  std::ifstream f(path);
  require(f.good(), "{}: cannot open {} file (missing or unreadable)", path, what);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  // A trailing blank line is an editor artifact, not an entry.
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

at::Tensor as_float_matrix(const at::Tensor& t, const std::string& name, const char* what) {
  require(at::isFloatingType(t.scalar_type()), "{}: {} must be floating point, found {}", name, what,
          std::string(at::toString(t.scalar_type())));
  require(t.dim() == 2, "{}: {} must be 2-D [rows, dim], found {} dimensions", name, what, t.dim());
  return t.to(at::kFloat).contiguous();
}

// One source's rows (normalized when asked) and labels, checked.
struct LoadedRows {
  at::Tensor x, labels;
  std::string features_name, labels_name;
};

LoadedRows load_rows(const ImportRows& r, bool normalize) {
  LoadedRows out;
  std::string& fname = out.features_name;
  std::string& lname = out.labels_name;
  at::Tensor x = as_float_matrix(load_array(r.features_path, r.features_key, "features", fname, "0"), fname, "features");
  const int64_t n = x.size(0), d = x.size(1);
  require(n > 0, "{}: no rows", fname);
  require(d > 0, "{}: zero-dimensional embeddings", fname);
  if (!at::isfinite(x).all().item<bool>()) {
    int64_t bad = at::logical_not(at::isfinite(x)).any(1).nonzero()[0][0].item<int64_t>();
    fail("{}: row {} contains NaN or Inf", fname, bad);
  }
  if (normalize) {
    at::Tensor norms = x.norm(2, 1);
    at::Tensor zero = norms.eq(0);
    if (zero.any().item<bool>()) fail("{}: row {} has zero norm and cannot be normalized", fname, zero.nonzero()[0][0].item<int64_t>());
    x = x / norms.unsqueeze(1);
  }
  out.x = x;

  at::Tensor labels = load_array(r.labels_path, r.labels_key, "labels", lname, "1");
  require(!at::isFloatingType(labels.scalar_type()) && labels.scalar_type() != at::kBool,
          "{}: labels must be integers, found {}", lname, std::string(at::toString(labels.scalar_type())));
  if (labels.dim() == 2 && labels.size(1) == 1) labels = labels.squeeze(1);
  require(labels.dim() == 1, "{}: labels must be 1-D [N], found {} dimensions", lname, labels.dim());
  require(labels.size(0) == n, "{}: {} labels but {} has {} rows", lname, labels.size(0), fname, n);
  out.labels = labels.to(at::kLong).contiguous();
  const int64_t lmin = out.labels.min().item<int64_t>();
  require(lmin >= 0, "{}: negative label {}", lname, lmin);
  return out;
}

}  // namespace

FeatureSet import_embeddings(const ImportOptions& o) {
  FeatureSet set;
  std::vector<ImportRows> sources = {{o.features_path, o.features_key, o.labels_path, o.labels_key}};
  sources.insert(sources.end(), o.more_rows.begin(), o.more_rows.end());
  std::vector<LoadedRows> parts;
  for (const ImportRows& r : sources) parts.push_back(load_rows(r, o.normalize));
  const std::string& fname = parts[0].features_name;
  const std::string& lname = parts[0].labels_name;
  const int64_t d = parts[0].x.size(1);
  for (const LoadedRows& p : parts)
    require(p.x.size(1) == d, "{}: rows have dimension {}, {} has {}", p.features_name, p.x.size(1), fname, d);

  // Each labels file's classes follow the previous files' classes.
  std::vector<std::string> files;
  std::vector<int64_t> file_max, file_rows;
  std::vector<const std::string*> file_name;  // the file's name in errors, as its first source gave it
  auto file_index = [&](size_t part) {
    const std::string& path = sources[part].labels_path;
    for (size_t i = 0; i < files.size(); ++i)
      if (files[i] == path) return i;
    files.push_back(path);
    file_max.push_back(-1);
    file_rows.push_back(0);
    file_name.push_back(&parts[part].labels_name);
    return files.size() - 1;
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    const size_t f = file_index(i);
    file_max[f] = std::max(file_max[f], parts[i].labels.max().item<int64_t>());
    file_rows[f] += parts[i].labels.size(0);
  }
  const bool several_files = files.size() > 1;
  require(!several_files || (o.class_names_path.empty() && o.text_embeddings_path.empty()),
          "import: labels from {} files ({}, {}, ...) get disjoint classes named class_<i>; class names and text "
          "embeddings apply to a single labels file",
          files.size(), files[0], files[1]);
  // A single file's labels are checked against its class count below. With
  // several, each file's classes come from its labels, so each file is bounded
  // as classes_from_labels says before the offsets are added (one huge label
  // would otherwise ask for that many classes, or overflow the offsets).
  std::vector<int64_t> file_classes;
  int64_t total_classes = 0;
  if (several_files) {
    for (size_t f = 0; f < files.size(); ++f) {
      file_classes.push_back(classes_from_labels(file_max[f], file_rows[f], *file_name[f],
                                                 "with several labels files, each file's classes come from its labels"));
      total_classes += file_classes.back();
      require(total_classes <= kMaxClasses, "import: the {} labels files make more than {} classes together",
              files.size(), kMaxClasses);
    }
  }
  std::vector<at::Tensor> xs, ys;
  for (size_t i = 0; i < parts.size(); ++i) {
    const size_t f = file_index(i);
    int64_t offset = 0;
    for (size_t g = 0; g < f; ++g) offset += file_classes[g];
    xs.push_back(parts[i].x);
    ys.push_back(parts[i].labels + offset);
  }
  at::Tensor x = parts.size() == 1 ? parts[0].x : at::cat(xs, 0);
  at::Tensor labels = parts.size() == 1 ? parts[0].labels : at::cat(ys, 0);
  const int64_t n = x.size(0);
  set.features = x.contiguous();
  const int64_t lmax = labels.max().item<int64_t>();
  set.labels = labels.contiguous();

  if (!o.text_embeddings_path.empty()) {
    std::string tname;
    at::Tensor t = as_float_matrix(load_array(o.text_embeddings_path, o.text_embeddings_key, "text embeddings", tname),
                                   tname, "text embeddings");
    require(t.size(1) == d, "{}: text embeddings have dimension {}, image features {}", tname, t.size(1), d);
    require(at::isfinite(t).all().item<bool>(), "{}: text embeddings contain NaN or Inf", tname);
    set.class_embeddings = t;
  }

  require(o.num_classes >= 0 && o.num_classes <= kMaxClasses, "import: num_classes {} is outside [0, {}]", o.num_classes,
          kMaxClasses);
  int64_t c = o.num_classes;
  if (!o.class_names_path.empty()) {
    set.class_names = read_class_list_file(o.class_names_path).names;
    require(c == 0 || c == set.num_classes(), "{}: {} class names but num_classes is {}", o.class_names_path,
            set.num_classes(), c);
    c = set.num_classes();
  }
  if (set.class_embeddings.defined()) {
    require(c == 0 || c == set.class_embeddings.size(0), "{}: {} text embeddings for {} classes", o.text_embeddings_path,
            set.class_embeddings.size(0), c);
    c = set.class_embeddings.size(0);
  }
  if (c == 0)
    c = several_files ? total_classes
                      : classes_from_labels(lmax, n, lname, "give --class-names, --text-embeddings or --num-classes");
  require(lmax < c, "{}: label {} is outside [0, {}) classes", lname, lmax, c);
  if (set.class_names.empty()) set.class_names = default_class_names(c);

  if (!o.image_sizes_path.empty()) {
    std::string sname;
    at::Tensor s = load_array(o.image_sizes_path, o.image_sizes_key, "image sizes", sname);
    require(!at::isFloatingType(s.scalar_type()), "{}: image sizes must be integers", sname);
    require(s.dim() == 2 && s.size(0) == n && s.size(1) == 2, "{}: image sizes must be [{}, 2]", sname, n);
    require(s.min().item<int64_t>() >= 0, "{}: negative image size", sname);
    set.image_sizes = s.to(at::kInt).contiguous();
  }

  if (!o.ids_path.empty()) {
    set.ids = read_lines(o.ids_path, "ids");
    require(static_cast<int64_t>(set.ids.size()) == n, "{}: {} ids for {} rows", o.ids_path, set.ids.size(), n);
  } else {
    set.ids.reserve(static_cast<size_t>(n));
    for (size_t p = 0; p < parts.size(); ++p) {
      std::string stem = std::filesystem::path(sources[p].features_path).stem().string();
      if (parts.size() > 1 && !sources[p].features_key.empty()) stem += ":" + sources[p].features_key;
      for (int64_t i = 0; i < parts[p].x.size(0); ++i) set.ids.push_back(stem + "/" + std::to_string(i));
    }
  }
  set.attrs = o.attrs;
  return set;
}

}  // namespace semcodec
