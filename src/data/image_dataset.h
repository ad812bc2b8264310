// Image datasets as (path, label, id) records plus class names, from the
// layouts datasets are distributed in: ImageFolder trees (class subfolders,
// ordered as torchvision orders them) and list files (one image per line with
// its label). configs/datasets/*.yaml describe the public benchmarks in these
// terms; docs/datasets.md says how to prepare each.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace semcodec {

struct ImageRecord {
  std::string path;   // file to decode
  int64_t label = 0;  // index into class_names
  std::string id;     // stable, unique: the path relative to the dataset root
};

struct ImageDataset {
  std::string name = "unknown";         // e.g. "imagenet-val"
  std::string split = "all";
  std::vector<std::string> class_names;  // [C] display names (what prompts use)
  std::vector<std::string> class_keys;   // [C] folder names / synset ids; may be empty
  std::vector<ImageRecord> records;
};

// torchvision's IMG_EXTENSIONS, case-insensitive (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp).
bool has_image_extension(const std::string& file_name);

// torchvision.datasets.ImageFolder: class = each subfolder of root (sorted by
// name), images = files with an image extension anywhere below it, walked in
// sorted order. class_keys = class_names = folder names.
ImageDataset scan_image_folder(const std::string& root);

// How a list file names its images and labels.
struct ImageListFormat {
  std::string delimiter = "auto";  // auto (comma if the line has one, else whitespace) | comma | whitespace | tab
  int path_column = 0;
  int label_column = 1;            // ignored for label = parent_dir
  std::string label = "auto";      // index | key | parent_dir | auto (index when the field is an integer, else key)
  int64_t label_offset = 0;        // added to integer labels (e.g. -1 for 1-based ids)
  std::string path_prefix, path_suffix;  // around the path field (e.g. "images/", ".jpg")
  std::string base_dir;            // paths are relative to it; empty = the list file's folder
};

// A list file: one record per non-empty line; lines starting with '#' are
// comments. `class_keys` resolves key labels (empty: index labels only). A
// line that cannot be parsed is an error naming the file and line.
std::vector<ImageRecord> read_image_list(const std::string& list_path, const std::vector<std::string>& class_keys,
                                         const ImageListFormat& format = {});

// Class names from YAML (a sequence of names, of {key, name} maps, or a map
// with `classes:` holding either; YAML's own '#' comments apply) or text:
// every line is one class name, in order, trimmed of surrounding whitespace;
// nothing is a comment (a line "#1" is the class "#1"); blank lines at the end
// are ignored and a blank line before another name is an error naming the
// file and line. The same line rule applies to a config's keys_file.
struct ClassList {
  std::vector<std::string> keys, names;  // keys may be empty
};
ClassList read_class_list_file(const std::string& path);

// Reads a dataset config (configs/datasets/*.yaml, format in docs/datasets.md).
// `root_override` replaces the config's `root` when non-empty.
struct DatasetSpec {
  std::string config_path, name, split, layout, root;
  ImageListFormat list_format;
  std::string list_file;
  std::string class_names_file;   // shipped class list (relative to the config's folder)
  std::string class_keys_file;    // key per line in the data (relative to root); first token of each line
  bool sort_keys = false;
  std::string key_names_file;     // "key<ws>name[, synonyms]" lines in the data: display name = first synonym
  std::string templates_file;     // prompt templates (configs/prompts)
  std::string split_train, split_heldout;  // class split files, as written in the config
};
DatasetSpec read_dataset_spec(const std::string& config_path, const std::string& root_override = "");
ImageDataset load_dataset(const DatasetSpec& spec);

// "class_<i>" for every index up to the records' largest label, when no class
// list names them; bounded as classes_from_labels says (errors name `source`
// and end with `hint`).
std::vector<std::string> class_names_from_labels(const std::vector<ImageRecord>& records, const std::string& source,
                                                 const std::string& hint);

// Checks ids are unique and labels inside [0, C); names the offending record.
void validate_dataset(const ImageDataset& dataset);


// The images of an extraction, as `extract` names them: a dataset config, an
// ImageFolder tree (root alone) or a list file (paths relative to root when
// given), with optional class names (not with a dataset config), a name and
// split stored in the feature file, and a trial limit.
struct ImageSource {
  std::string dataset, root, list, classes, name, split;
  int64_t limit = 0;  // the first `limit` images only (0 = all)
};
// Checks the combination before anything is read.
void check_image_source(const ImageSource& source);
// The dataset, validated; Error when it has no image.
ImageDataset load_image_source(const ImageSource& source);

}  // namespace semcodec
