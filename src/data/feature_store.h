// The HDF5 feature file (schema in docs/feature-store.md): whole-set read and
// write, inspection without loading, and row-block streaming in both
// directions for sets larger than memory.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/feature_set.h"

namespace semcodec {

constexpr const char* kFeatureSchemaName = "semcodec.features";
constexpr int64_t kFeatureSchemaVersion = 1;

struct FeatureWriteOptions {
  std::string dtype = "float32";  // on-disk type of `features`: float32 | float16
  int64_t chunk_rows = 1024;      // rows per HDF5 chunk (the unit of streaming reads)
  int gzip_level = 0;             // 0 = no compression, 1..9 = gzip level
};

// What a feature file holds, read from its metadata only.
struct FeatureFileInfo {
  std::string path;
  int64_t rows = 0, dim = 0, num_classes = 0;
  std::string dtype;              // float32 | float16 | float64
  int64_t schema_version = 0;
  int64_t chunk_rows = 0;         // 0 when `features` is contiguous
  std::string compression = "none";  // none | gzip-<level> | other
  FeatureAttrs attrs;
  bool has_text = false, has_image_sizes = false;
};

void write_feature_file(const std::string& path, const FeatureSet& set, const FeatureWriteOptions& options = {});

// Loads and validates the whole file (float16 features become float32).
FeatureSet read_feature_file(const std::string& path);

FeatureFileInfo inspect_feature_file(const std::string& path);

// Stores class text embeddings [C, D] (C = the file's classes, D its
// embed_dim; written as float32) in an existing feature file, replacing any
// there, and with `class_names` non-empty (C of them) the class names too.
// Everything else stays byte for byte (rows, dtype, chunking, attributes).
// Atomic: the file is copied beside itself, changed, and renamed over the
// original, so memory use does not grow with the number of rows.
void replace_class_embeddings(const std::string& path, const at::Tensor& embeddings,
                              const std::vector<std::string>& class_names = {});

// Streams a feature file by row blocks. The constructor checks the schema and
// the labels; read_rows checks every row it returns (finite, non-zero).
class FeatureReader {
 public:
  explicit FeatureReader(const std::string& path);
  ~FeatureReader();
  FeatureReader(const FeatureReader&) = delete;
  FeatureReader& operator=(const FeatureReader&) = delete;

  const FeatureFileInfo& info() const;
  int64_t size() const { return info().rows; }
  int64_t dim() const { return info().dim; }
  // Rows [start, start+count) as float32 [count, D].
  at::Tensor read_rows(int64_t start, int64_t count);
  at::Tensor labels() const;                 // [N] int64
  std::vector<std::string> ids();            // [N]
  std::vector<std::string> class_names();    // [C]
  at::Tensor class_embeddings();             // [C, D] float32, or undefined
  at::Tensor image_sizes();                  // [N, 2] int32, or undefined

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Builds a feature file a block of rows at a time. Rows go to
// partial_path(path) and only close() renames it onto `path`, so an
// interrupted run leaves no file that looks complete. With resume=true an
// existing partial file is reopened and appending continues after its last
// complete row (rows() says where); otherwise any partial file is replaced.
class FeatureWriter {
 public:
  FeatureWriter(std::string path, int64_t dim, FeatureAttrs attrs, FeatureWriteOptions options = {},
                bool resume = false);
  ~FeatureWriter();  // without close(): the partial file stays, for resume
  FeatureWriter(const FeatureWriter&) = delete;
  FeatureWriter& operator=(const FeatureWriter&) = delete;

  static std::string partial_path(const std::string& path);

  int64_t rows() const;
  // The ids of the committed rows, in order (an extraction resumes after the last one).
  std::vector<std::string> ids() const;
  // features [n, D] (any float type), labels [n] (any integer type), ids n
  // strings (may be empty: then "row_<i>"), image_sizes [n, 2] or undefined
  // (if given, give it for every block). Flushed to disk before returning.
  void append(const at::Tensor& features, const at::Tensor& labels, const std::vector<std::string>& ids,
              const at::Tensor& image_sizes = {});
  // Replaces the class list (and text embeddings [C, D], optional).
  void set_classes(const std::vector<std::string>& names, const at::Tensor& embeddings = {});
  // Checks labels against the class list, writes the final counts and renames onto the target.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semcodec
