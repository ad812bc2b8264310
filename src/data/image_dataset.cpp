#include "data/image_dataset.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "data/label_classes.h"
#include "util/config_paths.h"
#include "util/error.h"
#include "util/yaml_bounded.h"

namespace fs = std::filesystem;

namespace semcodec {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::vector<std::string> split_fields(const std::string& line, const std::string& delimiter) {
  std::vector<std::string> out;
  const bool comma = delimiter == "comma" || (delimiter == "auto" && line.find(',') != std::string::npos);
  if (comma || delimiter == "tab") {
    const char sep = comma ? ',' : '\t';
    std::string field;
    std::stringstream ss(line);
    while (std::getline(ss, field, sep)) out.push_back(trim(field));
    if (!line.empty() && line.back() == sep) out.emplace_back();
  } else {
    std::stringstream ss(line);
    std::string field;
    while (ss >> field) out.push_back(field);
  }
  return out;
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (i == s.size() || s.size() > 19) return false;
  for (size_t k = i; k < s.size(); ++k)
    if (!std::isdigit(static_cast<unsigned char>(s[k]))) return false;
  out = std::stoll(s);
  return true;
}

std::vector<std::string> read_lines(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open {}", path, what);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// The entries of a text class list (names, or keys in their first token):
// every line is one entry, in order, trimmed; nothing is a comment (a class
// may be called "#1"); blank lines at the end are ignored, anywhere else they
// are an error, since dropping one would shift every class after it.
std::vector<std::string> read_class_lines(const std::string& path, const std::string& what) {
  std::vector<std::string> lines = read_lines(path, what);
  for (auto& l : lines) l = trim(l);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].empty())
      fail("{}:{}: empty line in a {} (every line is one class, so a blank line would shift the classes after it)",
           path, i + 1, what);
  return lines;
}

std::string join_path(const std::string& base, const std::string& rel) {
  if (rel.empty()) return base;
  if (base.empty() || fs::path(rel).is_absolute()) return rel;
  return (fs::path(base) / rel).lexically_normal().string();
}

std::string generic_relative(const fs::path& p, const fs::path& root) {
  return p.lexically_relative(root).generic_string();
}

}  // namespace

bool has_image_extension(const std::string& file_name) {
  static const char* exts[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
  const std::string l = lower(file_name);
  for (const char* e : exts) {
    const size_t n = std::strlen(e);
    if (l.size() >= n && l.compare(l.size() - n, n, e) == 0) return true;
  }
  return false;
}

ImageDataset scan_image_folder(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) fail("{}: not a directory (expected an ImageFolder tree: <root>/<class>/<image>)", root);
  ImageDataset ds;
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory(ec)) classes.push_back(e.path().filename().string());
  if (ec) fail("{}: cannot list the folder: {}", root, ec.message());
  std::sort(classes.begin(), classes.end());  // byte order = Python's sorted() on UTF-8 names
  if (classes.empty()) fail("{}: no class subfolders", root);
  const fs::path root_path(root);
  for (size_t c = 0; c < classes.size(); ++c) {
    // torchvision: for root, _, fnames in sorted(os.walk(class_dir, followlinks=True)): for f in sorted(fnames)
    const fs::path class_dir = root_path / classes[c];
    std::vector<fs::path> dirs{class_dir};
    for (auto it = fs::recursive_directory_iterator(class_dir, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it.depth() > 32) fail("{}: folders nested deeper than 32 levels (a symlink loop?)", it->path().string());
      if (it->is_directory(ec)) dirs.push_back(it->path());
    }
    if (ec) fail("{}: cannot walk the folder: {}", class_dir.string(), ec.message());
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) { return a.string() < b.string(); });
    for (const auto& d : dirs) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(d, ec))
        if (!e.is_directory(ec) && has_image_extension(e.path().filename().string()))
          files.push_back(e.path().filename().string());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        const fs::path p = d / f;
        ds.records.push_back({p.string(), static_cast<int64_t>(c), generic_relative(p, root_path)});
      }
    }
  }
  ds.class_keys = classes;
  ds.class_names = classes;
  ds.name = root_path.filename().string();
  return ds;
}

std::vector<ImageRecord> read_image_list(const std::string& list_path, const std::vector<std::string>& class_keys,
                                         const ImageListFormat& f) {
  if (f.delimiter != "auto" && f.delimiter != "comma" && f.delimiter != "whitespace" && f.delimiter != "tab")
    fail("{}: unknown list delimiter '{}' (auto, comma, whitespace or tab)", list_path, f.delimiter);
  if (f.label != "auto" && f.label != "index" && f.label != "key" && f.label != "parent_dir")
    fail("{}: unknown label kind '{}' (index, key, parent_dir or auto)", list_path, f.label);
  std::unordered_map<std::string, int64_t> key_index;
  for (size_t i = 0; i < class_keys.size(); ++i) key_index.emplace(class_keys[i], static_cast<int64_t>(i));
  const std::string base = f.base_dir.empty() ? fs::path(list_path).parent_path().string() : f.base_dir;
  const auto lines = read_lines(list_path, "image list");
  std::vector<ImageRecord> out;
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    const std::string line = trim(lines[ln]);
    if (line.empty() || line[0] == '#') continue;
    const auto fields = split_fields(line, f.delimiter);
    const int needed = std::max(f.path_column, f.label == "parent_dir" ? 0 : f.label_column) + 1;
    if (f.path_column < 0 || (f.label != "parent_dir" && f.label_column < 0) ||
        static_cast<int>(fields.size()) < needed)
      fail("{}:{}: expected at least {} fields, got {} in '{}'", list_path, ln + 1, needed, fields.size(), line);
    const std::string& path_field = fields[f.path_column];
    if (path_field.empty()) fail("{}:{}: empty path", list_path, ln + 1);
    std::string label_field;
    if (f.label == "parent_dir") {
      label_field = fs::path(path_field).parent_path().filename().string();
    } else {
      label_field = fields[f.label_column];
    }
    int64_t label = -1, number = 0;
    const bool numeric = parse_int(label_field, number);
    if (f.label == "index" || (f.label == "auto" && numeric)) {
      if (!numeric) fail("{}:{}: label '{}' is not an integer", list_path, ln + 1, label_field);
      label = number + f.label_offset;
    } else {
      auto it = key_index.find(label_field);
      if (it == key_index.end())
        fail("{}:{}: label '{}' is not a known class key{}", list_path, ln + 1, label_field,
             class_keys.empty() ? " (no class keys were given)" : "");
      label = it->second;
    }
    if (label < 0 || (!class_keys.empty() && label >= static_cast<int64_t>(class_keys.size())))
      fail("{}:{}: label {} is out of range", list_path, ln + 1, label);
    if (label >= kMaxClasses) fail("{}:{}: label {} is out of range (at most {} classes)", list_path, ln + 1, label, kMaxClasses);
    const std::string rel = f.path_prefix + path_field + f.path_suffix;
    out.push_back({join_path(base, rel), label, fs::path(rel).lexically_normal().generic_string()});
  }
  return out;
}

ClassList read_class_list_file(const std::string& path) {
  ClassList out;
  const std::string ext = lower(fs::path(path).extension().string());
  if (ext == ".yaml" || ext == ".yml") {
    const YAML::Node root = load_yaml_file_bounded(path, "class list");
    YAML::Node seq = root.IsMap() ? root["classes"] : root;
    if (!seq || !seq.IsSequence()) fail("{}: expected a list of class names (or a map with 'classes:')", path);
    for (size_t i = 0; i < seq.size(); ++i) {
      const YAML::Node& e = seq[i];
      if (e.IsScalar()) {
        out.names.push_back(e.as<std::string>());
      } else if (e.IsMap() && e["name"] && e["key"]) {
        out.keys.push_back(e["key"].as<std::string>());
        out.names.push_back(e["name"].as<std::string>());
      } else {
        fail("{}: class entry {} must be a name or a {{key, name}} map", path, i);
      }
    }
    if (!out.keys.empty() && out.keys.size() != out.names.size())
      fail("{}: either every class entry has a key or none has", path);
  } else {
    out.names = read_class_lines(path, "class list");
  }
  if (out.names.empty()) fail("{}: the class list is empty", path);
  return out;
}

DatasetSpec read_dataset_spec(const std::string& config_path, const std::string& root_override) {
  const YAML::Node y = load_yaml_file_bounded(config_path, "dataset config");
  if (!y.IsMap()) fail("{}: a dataset config must be a mapping", config_path);
  const std::string config_dir = fs::path(config_path).parent_path().string();
  auto str = [&](const YAML::Node& n, const char* key, const std::string& def) {
    return n && n[key] ? n[key].as<std::string>() : def;
  };
  DatasetSpec s;
  s.config_path = config_path;
  s.name = str(y, "name", fs::path(config_path).stem().string());
  s.split = str(y, "split", "all");
  s.layout = str(y, "layout", "image_folder");
  // root and class_split resolve against the config's project directory,
  // names and templates against its own folder (docs/config.md, "Paths").
  const std::string project = config_project_dir(config_path);
  s.root = root_override.empty() ? resolve_config_path(project, str(y, "root", "")) : root_override;
  if (s.root.empty()) fail("{}: no 'root' (the dataset folder); give one with --root", config_path);
  if (s.layout != "image_folder" && s.layout != "list")
    fail("{}: layout must be image_folder or list, got '{}'", config_path, s.layout);
  if (YAML::Node l = y["list"]) {
    s.list_file = str(l, "file", "");
    s.list_format.delimiter = str(l, "delimiter", "auto");
    s.list_format.label = str(l, "label", "auto");
    s.list_format.path_prefix = str(l, "path_prefix", "");
    s.list_format.path_suffix = str(l, "path_suffix", "");
    if (l["path_column"]) s.list_format.path_column = l["path_column"].as<int>();
    if (l["label_column"]) s.list_format.label_column = l["label_column"].as<int>();
    if (l["label_offset"]) s.list_format.label_offset = l["label_offset"].as<int64_t>();
  }
  if (s.layout == "list" && s.list_file.empty()) fail("{}: layout 'list' needs list.file", config_path);
  if (YAML::Node c = y["classes"]) {
    if (c["names"]) s.class_names_file = join_path(config_dir, c["names"].as<std::string>());
    s.class_keys_file = str(c, "keys_file", "");
    s.key_names_file = str(c, "key_names_file", "");
    if (c["sort_keys"]) s.sort_keys = c["sort_keys"].as<bool>();
  }
  if (y["templates"]) s.templates_file = join_path(config_dir, y["templates"].as<std::string>());
  if (YAML::Node sp = y["class_split"]) {
    s.split_train = resolve_config_path(project, str(sp, "train", ""));
    s.split_heldout = resolve_config_path(project, str(sp, "heldout", ""));
  }
  return s;
}

ImageDataset load_dataset(const DatasetSpec& spec) {
  ImageDataset ds;
  ClassList shipped;
  if (!spec.class_names_file.empty()) shipped = read_class_list_file(spec.class_names_file);
  std::vector<std::string> keys = shipped.keys;
  if (!spec.class_keys_file.empty()) {
    keys.clear();
    for (const auto& line : read_class_lines(join_path(spec.root, spec.class_keys_file), "class keys file")) {
      std::stringstream ss(line);
      std::string key;
      ss >> key;
      keys.push_back(key);
    }
    if (keys.empty()) fail("{}: no class keys", join_path(spec.root, spec.class_keys_file));
    if (spec.sort_keys) std::sort(keys.begin(), keys.end());
  }

  if (spec.layout == "image_folder") {
    ImageDataset scanned = scan_image_folder(spec.root);
    if (keys.empty()) {
      keys = scanned.class_keys;
      ds.records = std::move(scanned.records);
    } else {
      std::unordered_map<std::string, int64_t> index;
      for (size_t i = 0; i < keys.size(); ++i) index.emplace(keys[i], static_cast<int64_t>(i));
      for (const auto& folder : scanned.class_keys)
        if (!index.count(folder))
          fail("{}: class folder '{}' is not one of the {} classes of {}", spec.root, folder, keys.size(),
               spec.config_path);
      for (auto& rec : scanned.records) {
        rec.label = index.at(scanned.class_keys[static_cast<size_t>(rec.label)]);
        ds.records.push_back(std::move(rec));
      }
    }
  } else {
    ImageListFormat f = spec.list_format;
    f.base_dir = spec.root;
    ds.records = read_image_list(join_path(spec.root, spec.list_file), keys, f);
  }

  if (!shipped.names.empty()) {
    ds.class_names = shipped.names;
  } else if (!spec.key_names_file.empty()) {
    std::unordered_map<std::string, std::string> names;
    const std::string path = join_path(spec.root, spec.key_names_file);
    for (const auto& line : read_lines(path, "class names file")) {
      std::stringstream ss(line);
      std::string key, rest;
      if (!(ss >> key)) continue;
      std::getline(ss, rest);
      names.emplace(key, trim(rest.substr(0, rest.find(','))));
    }
    for (const auto& k : keys) {
      auto it = names.find(k);
      if (it == names.end()) fail("{}: no name for class key '{}'", path, k);
      ds.class_names.push_back(it->second);
    }
  } else {
    for (const auto& k : keys) {
      std::string n = k;
      std::replace(n.begin(), n.end(), '_', ' ');
      ds.class_names.push_back(n);
    }
  }
  if (ds.class_names.empty())
    ds.class_names = class_names_from_labels(ds.records,
                                             spec.layout == "list" ? join_path(spec.root, spec.list_file) : spec.root,
                                             "name the classes in the config (classes: names, keys_file or key_names_file)");
  if (!keys.empty() && keys.size() != ds.class_names.size())
    fail("{}: {} class keys but {} class names", spec.config_path, keys.size(), ds.class_names.size());
  ds.class_keys = keys;
  ds.name = spec.name;
  ds.split = spec.split;
  validate_dataset(ds);
  return ds;
}

std::vector<std::string> class_names_from_labels(const std::vector<ImageRecord>& records, const std::string& source,
                                                 const std::string& hint) {
  int64_t mx = -1;
  for (const auto& r : records) mx = std::max(mx, r.label);
  return default_class_names(classes_from_labels(mx, static_cast<int64_t>(records.size()), source, hint));
}

void validate_dataset(const ImageDataset& ds) {
  const int64_t c = static_cast<int64_t>(ds.class_names.size());
  std::unordered_set<std::string> seen;
  seen.reserve(ds.records.size());
  for (size_t i = 0; i < ds.records.size(); ++i) {
    const auto& r = ds.records[i];
    if (r.label < 0 || r.label >= c)
      fail("dataset '{}': record {} ({}) has label {} outside [0, {})", ds.name, i, r.path, r.label, c);
    if (!seen.insert(r.id).second) fail("dataset '{}': record {} repeats the id '{}'", ds.name, i, r.id);
  }
}

void check_image_source(const ImageSource& o) {
  const int sources = !o.dataset.empty() + !o.list.empty();
  require(sources <= 1, "give one of --dataset and --list (with --root for an ImageFolder tree)");
  require(sources == 1 || !o.root.empty(), "no images: give --dataset CONFIG, --root FOLDER (ImageFolder) or --list FILE");
  require(o.dataset.empty() || o.classes.empty(), "--classes is for --root / --list; a dataset config names its classes");
}

ImageDataset load_image_source(const ImageSource& o) {
  ImageDataset ds;
  if (!o.dataset.empty()) {
    ds = load_dataset(read_dataset_spec(o.dataset, o.root));
  } else if (!o.list.empty()) {
    ClassList classes;
    if (!o.classes.empty()) classes = read_class_list_file(o.classes);
    ImageListFormat format;
    format.base_dir = o.root;
    ds.records = read_image_list(o.list, classes.keys, format);
    ds.class_keys = classes.keys;
    ds.class_names = classes.names;
    ds.name = std::filesystem::path(o.list).stem().string();
    if (ds.class_names.empty()) ds.class_names = class_names_from_labels(ds.records, o.list, "give the class names with --classes");
  } else {
    require(std::filesystem::is_directory(o.root), "{}: no such image folder", o.root);
    ds = scan_image_folder(o.root);
    if (!o.classes.empty()) {
      const ClassList classes = read_class_list_file(o.classes);
      require(classes.names.size() == ds.class_names.size(), "{}: {} class names for the {} class folders of {}",
              o.classes, classes.names.size(), ds.class_names.size(), o.root);
      ds.class_names = classes.names;
    }
    ds.name = std::filesystem::path(o.root).lexically_normal().filename().string();
    if (ds.name.empty()) ds.name = std::filesystem::path(o.root).lexically_normal().parent_path().filename().string();
  }
  if (!o.name.empty()) ds.name = o.name;
  if (!o.split.empty()) ds.split = o.split;
  require(!ds.records.empty(), "dataset '{}' has no images", ds.name);
  if (o.limit > 0 && o.limit < static_cast<int64_t>(ds.records.size())) ds.records.resize(static_cast<size_t>(o.limit));
  validate_dataset(ds);
  return ds;
}

}  // namespace semcodec
