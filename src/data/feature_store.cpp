#include "data/feature_store.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "data/hdf5_checked.h"
#include "semcodec_version.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace semcodec {

namespace {

// ---------------------------------------------------------------- HDF5 basics

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*closer)(hid_t)) : id_(id), close_(closer) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// HDF5 prints its error stack to stderr by default; we report errors
// ourselves, with the file name, so that output is turned off.
void quiet_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

herr_t collect_error(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (err && err->desc && *err->desc) *out = err->desc;  // keep the innermost description
  return 0;
}

// Throws "<file>: <what> (<innermost HDF5 message>)".
[[noreturn]] void h5fail(const std::string& file, const std::string& what) {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &detail);
  H5Eclear2(H5E_DEFAULT);
  if (detail.empty()) fail("{}: {}", file, what);
  fail("{}: {} (HDF5: {})", file, what, detail);
}

hid_t check(hid_t id, const std::string& file, const std::string& what) {
  if (id < 0) h5fail(file, what);
  return id;
}
void check(herr_t rc, const std::string& file, const std::string& what, int) {
  if (rc < 0) h5fail(file, what);
}

Hid make_dataspace(const std::vector<hsize_t>& dims, const std::vector<hsize_t>& maxdims, const std::string& file) {
  return Hid(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.empty() ? nullptr : maxdims.data()),
                   file, "cannot create dataspace"),
             H5Sclose);
}

// IEEE half precision, built exactly as h5py builds its float16 type so that
// h5py reads the dataset back as numpy float16.
Hid make_half_type() {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return Hid(t, H5Tclose);
}

Hid make_vlen_utf8() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return Hid(t, H5Tclose);
}

bool has_link(hid_t loc, const char* name) { return H5Lexists(loc, name, H5P_DEFAULT) > 0; }

Hid open_dataset(hid_t file, const char* name, const std::string& path) {
  if (!has_link(file, name)) fail("{}: dataset '{}' is missing", path, name);
  return Hid(check(H5Dopen2(file, name, H5P_DEFAULT), path, fmt::format("cannot open dataset '{}'", name)), H5Dclose);
}

std::vector<hsize_t> dataset_dims(hid_t dset, const std::string& path, const char* name) {
  Hid space(check(H5Dget_space(dset), path, fmt::format("cannot read the shape of '{}'", name)), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) h5fail(path, fmt::format("cannot read the rank of '{}'", name));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

std::vector<hsize_t> require_rank(hid_t dset, int rank, const std::string& path, const char* name) {
  auto dims = dataset_dims(dset, path, name);
  if (static_cast<int>(dims.size()) != rank)
    fail("{}: dataset '{}' has rank {}, expected {}", path, name, dims.size(), rank);
  return dims;
}

// --- attributes

void write_attr_str(hid_t obj, const char* name, const std::string& value, const std::string& path) {
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  Hid type = make_vlen_utf8();
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr(check(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
                 fmt::format("cannot create attribute '{}'", name)),
           H5Aclose);
  const char* p = value.c_str();
  check(H5Awrite(attr.get(), type.get(), &p), path, fmt::format("cannot write attribute '{}'", name), 0);
}

void write_attr_int(hid_t obj, const char* name, int64_t value, const std::string& path) {
  Hid attr;
  if (H5Aexists(obj, name) > 0) {
    attr = Hid(check(H5Aopen(obj, name, H5P_DEFAULT), path, fmt::format("cannot open attribute '{}'", name)), H5Aclose);
  } else {
    Hid space(H5Screate(H5S_SCALAR), H5Sclose);
    attr = Hid(check(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
                     fmt::format("cannot create attribute '{}'", name)),
               H5Aclose);
  }
  check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), path, fmt::format("cannot write attribute '{}'", name), 0);
}

// Reads a scalar string attribute, variable or fixed length (h5py writes str
// as variable, numpy bytes as fixed), through HdfFile: libhdf5 never reads the
// global heap. Returns false when absent.
bool read_attr_str(HdfFile& hf, hid_t obj, const char* name, std::string& out) {
  if (H5Aexists(obj, name) <= 0) return false;
  Hid attr(check(H5Aopen(obj, name, H5P_DEFAULT), hf.path(), fmt::format("cannot open attribute '{}'", name)), H5Aclose);
  out = hf.read_string_attribute(attr.get(), name);
  return true;
}

bool read_attr_int(hid_t obj, const char* name, int64_t& out, const std::string& path) {
  if (H5Aexists(obj, name) <= 0) return false;
  Hid attr(check(H5Aopen(obj, name, H5P_DEFAULT), path, fmt::format("cannot open attribute '{}'", name)), H5Aclose);
  Hid ftype(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_INTEGER) fail("{}: attribute '{}' is not an integer", path, name);
  Hid space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) fail("{}: attribute '{}' is not a scalar", path, name);
  check(H5Aread(attr.get(), H5T_NATIVE_INT64, &out), path, fmt::format("cannot read attribute '{}'", name), 0);
  return true;
}

// --- typed helpers

// The float types libhdf5 converts to float32 here: IEEE binary16 / 32 / 64
// in either byte order. Anything else (a hand-made or damaged type with odd
// bit fields) is refused rather than handed to libhdf5's generic converter.
std::string float_type_name(hid_t type) {
  if (H5Tget_class(type) != H5T_FLOAT) return "";
  if (H5Tequal(type, H5T_IEEE_F32LE) > 0 || H5Tequal(type, H5T_IEEE_F32BE) > 0) return "float32";
  if (H5Tequal(type, H5T_IEEE_F64LE) > 0 || H5Tequal(type, H5T_IEEE_F64BE) > 0) return "float64";
  Hid half = make_half_type();
  if (H5Tequal(type, half.get()) > 0) return "float16";
  H5Tset_order(half.get(), H5T_ORDER_BE);
  if (H5Tequal(type, half.get()) > 0) return "float16";
  return "";
}

// Plain 8/16/32/64-bit integers (no padding bits, no offset), either order.
void require_integer(hid_t dset, const std::string& path, const char* name) {
  Hid t(H5Dget_type(dset), H5Tclose);
  const size_t size = H5Tget_size(t.get());
  if (H5Tget_class(t.get()) != H5T_INTEGER || (size != 1 && size != 2 && size != 4 && size != 8) ||
      H5Tget_precision(t.get()) != 8 * size || H5Tget_offset(t.get()) != 0)
    fail("{}: dataset '{}' must hold 8, 16, 32 or 64-bit integers", path, name);
}

// Reads a whole numeric dataset into a CPU tensor of `st`, letting HDF5
// convert, once its size is checked against the bytes the file stores for it.
at::Tensor read_numeric(const HdfFile& hf, hid_t dset, at::ScalarType st, hid_t memtype, const char* name) {
  const std::string& path = hf.path();
  hf.checked_elements(dset, name);
  auto dims = dataset_dims(dset, path, name);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
  if (t.numel() == 0) return t;
  check(H5Dread(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()), path,
        fmt::format("cannot read dataset '{}'", name), 0);
  return t;
}

void require_class(hid_t dset, H5T_class_t cls, const std::string& path, const char* name, const char* what) {
  Hid t(H5Dget_type(dset), H5Tclose);
  if (H5Tget_class(t.get()) != cls) fail("{}: dataset '{}' must hold {}", path, name, what);
}

// Refuses non-finite or zero rows: downstream cosine losses would turn them
// into NaNs far from the file that caused them. `first_row` makes the index global.
void check_rows(const at::Tensor& x, int64_t first_row, const std::string& path) {
  if (x.numel() == 0) return;
  at::Tensor bad_finite = at::logical_not(at::isfinite(x)).any(1);
  if (bad_finite.any().item<bool>()) {
    int64_t r = bad_finite.nonzero().select(1, 0)[0].item<int64_t>();
    fail("{}: feature row {} contains NaN or Inf", path, first_row + r);
  }
  at::Tensor zero = x.abs().amax(1).eq(0);
  if (zero.any().item<bool>()) {
    int64_t r = zero.nonzero().select(1, 0)[0].item<int64_t>();
    fail("{}: feature row {} has zero norm", path, first_row + r);
  }
}

// ---------------------------------------------------------------- reading

struct OpenFile {
  Hid file;
  std::unique_ptr<HdfFile> hf;  // checked reads (sizes, strings) of `file`
  FeatureFileInfo info;
};

OpenFile open_feature_file_here(const std::string& path) {
  quiet_hdf5();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("{}: feature file does not exist", path);
  if (std::filesystem::is_directory(path, ec)) fail("{}: is a directory, not a feature file", path);
  htri_t is = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  if (is <= 0) fail("{}: not an HDF5 file", path);
  OpenFile of;
  of.file = Hid(check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path, "cannot open HDF5 file"), H5Fclose);
  hid_t f = of.file.get();
  of.hf = std::make_unique<HdfFile>(f, path);
  HdfFile& hf = *of.hf;
  FeatureFileInfo& info = of.info;
  info.path = path;

  std::string schema;
  if (!read_attr_str(hf, f, "semcodec_schema", schema))
    fail("{}: not a semcodec feature file (root attribute 'semcodec_schema' is missing)", path);
  if (schema != kFeatureSchemaName)
    fail("{}: not a semcodec feature file (semcodec_schema is '{}', expected '{}')", path, schema, kFeatureSchemaName);
  if (!read_attr_int(f, "schema_version", info.schema_version, path))
    fail("{}: root attribute 'schema_version' is missing", path);
  if (info.schema_version < 1 || info.schema_version > kFeatureSchemaVersion)
    fail("{}: feature schema version {} is not supported (this build reads up to {})", path, info.schema_version,
         kFeatureSchemaVersion);
  read_attr_str(hf, f, "encoder_model", info.attrs.encoder_model);
  read_attr_str(hf, f, "dataset", info.attrs.dataset);
  read_attr_str(hf, f, "split", info.attrs.split);
  read_attr_str(hf, f, "preprocessing", info.attrs.preprocessing);
  read_attr_str(hf, f, "tool_version", info.attrs.tool_version);

  // Every dataset's declared size is checked against the bytes the file
  // stores for it here, before anything is read or allocated from it.
  Hid feats = open_dataset(f, "features", path);
  auto fd = require_rank(feats.get(), 2, path, "features");
  hf.checked_elements(feats.get(), "features");
  info.rows = static_cast<int64_t>(fd[0]);
  info.dim = static_cast<int64_t>(fd[1]);
  {
    Hid t(H5Dget_type(feats.get()), H5Tclose);
    info.dtype = float_type_name(t.get());
    if (info.dtype.empty()) fail("{}: dataset 'features' must be float16, float32 or float64", path);
    Hid dcpl(H5Dget_create_plist(feats.get()), H5Pclose);
    if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
      hsize_t chunk[2] = {0, 0};
      H5Pget_chunk(dcpl.get(), 2, chunk);
      info.chunk_rows = static_cast<int64_t>(chunk[0]);
    }
    int nf = H5Pget_nfilters(dcpl.get());
    for (int k = 0; k < nf; ++k) {
      unsigned flags = 0, cd[8] = {0};
      size_t ncd = 8;
      char fname[64];
      H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(k), &flags, &ncd, cd, sizeof fname, fname, nullptr);
      if (id == H5Z_FILTER_DEFLATE) info.compression = fmt::format("gzip-{}", ncd > 0 ? cd[0] : 0);
      else if (id != H5Z_FILTER_SHUFFLE && info.compression == "none") info.compression = "other";
    }
  }
  if (info.dim <= 0) fail("{}: dataset 'features' has zero columns", path);

  Hid labels = open_dataset(f, "labels", path);
  auto ld = require_rank(labels.get(), 1, path, "labels");
  if (static_cast<int64_t>(ld[0]) != info.rows)
    fail("{}: 'labels' has {} entries but 'features' has {} rows", path, ld[0], info.rows);
  require_integer(labels.get(), path, "labels");
  hf.checked_elements(labels.get(), "labels");

  if (has_link(f, "ids")) {
    Hid ids = open_dataset(f, "ids", path);
    auto idd = require_rank(ids.get(), 1, path, "ids");
    if (static_cast<int64_t>(idd[0]) != info.rows)
      fail("{}: 'ids' has {} entries but 'features' has {} rows", path, idd[0], info.rows);
    require_class(ids.get(), H5T_STRING, path, "ids", "strings");
    hf.checked_elements(ids.get(), "ids");
  }

  Hid names = open_dataset(f, "class_names", path);
  info.num_classes = static_cast<int64_t>(require_rank(names.get(), 1, path, "class_names")[0]);
  require_class(names.get(), H5T_STRING, path, "class_names", "strings");
  hf.checked_elements(names.get(), "class_names");

  if (has_link(f, "class_embeddings")) {
    Hid ce = open_dataset(f, "class_embeddings", path);
    auto cd = require_rank(ce.get(), 2, path, "class_embeddings");
    if (static_cast<int64_t>(cd[0]) != info.num_classes || static_cast<int64_t>(cd[1]) != info.dim)
      fail("{}: 'class_embeddings' is [{}, {}], expected [{}, {}] (classes x embed_dim)", path, cd[0], cd[1],
           info.num_classes, info.dim);
    {
      Hid t(H5Dget_type(ce.get()), H5Tclose);
      if (float_type_name(t.get()).empty()) fail("{}: dataset 'class_embeddings' must be float16, float32 or float64", path);
    }
    hf.checked_elements(ce.get(), "class_embeddings");
    info.has_text = info.num_classes > 0;
  }
  if (has_link(f, "image_sizes")) {
    Hid is_ds = open_dataset(f, "image_sizes", path);
    auto sd = require_rank(is_ds.get(), 2, path, "image_sizes");
    if (static_cast<int64_t>(sd[0]) != info.rows || sd[1] != 2)
      fail("{}: 'image_sizes' is [{}, {}], expected [{}, 2]", path, sd[0], sd[1], info.rows);
    require_integer(is_ds.get(), path, "image_sizes");
    hf.checked_elements(is_ds.get(), "image_sizes");
    info.has_image_sizes = true;
  }

  // The counts are written last; a disagreement means a damaged or hand-edited file.
  int64_t v = 0;
  if (read_attr_int(f, "num_rows", v, path) && v != info.rows)
    fail("{}: attribute num_rows={} but 'features' has {} rows (incomplete file?)", path, v, info.rows);
  if (read_attr_int(f, "num_classes", v, path) && v != info.num_classes)
    fail("{}: attribute num_classes={} but 'class_names' has {} entries", path, v, info.num_classes);
  if (read_attr_int(f, "embed_dim", v, path) && v != info.dim)
    fail("{}: attribute embed_dim={} but 'features' has {} columns", path, v, info.dim);
  return of;
}

// libhdf5 parses the file's metadata in a child process first
// (probe_hdf5_file): a file that crashes it there is refused before it is
// opened here.
OpenFile open_feature_file(const std::string& path) {
  probe_hdf5_file(path, [&] { open_feature_file_here(path); });
  return open_feature_file_here(path);
}

// ---------------------------------------------------------------- writing

// The shared body of write_feature_file and FeatureWriter: owns an open file
// whose datasets grow along the row axis.
class Builder {
 public:
  explicit Builder(std::string name) : name_(std::move(name)) {}

  void create(const std::string& fs_path, int64_t dim, const FeatureAttrs& attrs, const FeatureWriteOptions& o,
              int64_t chunk_rows) {
    quiet_hdf5();
    if (o.dtype != "float32" && o.dtype != "float16")
      fail("{}: feature dtype must be float32 or float16, got '{}'", name_, o.dtype);
    if (dim <= 0) fail("{}: embedding dimension must be positive, got {}", name_, dim);
    if (o.gzip_level < 0 || o.gzip_level > 9) fail("{}: gzip level must be 0..9, got {}", name_, o.gzip_level);
    if (o.chunk_rows < 1) fail("{}: chunk_rows must be positive, got {}", name_, o.chunk_rows);
    dim_ = dim;
    half_ = o.dtype == "float16";
    // HDF5 chunks must stay below 4 GiB; keep them far smaller.
    const int64_t row_bytes = dim * (half_ ? 2 : 4);
    chunk_rows = std::max<int64_t>(1, std::min<int64_t>(chunk_rows, (int64_t{1} << 28) / row_bytes));
    file_ = Hid(check(H5Fcreate(fs_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), name_,
                      "cannot create HDF5 file"),
                H5Fclose);
    fs_path_ = fs_path;
    hid_t f = file_.get();
    write_attr_str(f, "semcodec_schema", kFeatureSchemaName, name_);
    write_attr_int(f, "schema_version", kFeatureSchemaVersion, name_);
    write_attr_int(f, "embed_dim", dim, name_);
    write_string_attrs(attrs);
    write_attr_int(f, "num_rows", 0, name_);
    write_attr_int(f, "num_classes", 0, name_);

    Hid half = make_half_type();
    features_ = create_growing("features", half_ ? half.get() : H5T_IEEE_F32LE, {static_cast<hsize_t>(dim)}, chunk_rows,
                               o.gzip_level);
    labels_ = create_growing("labels", H5T_STD_I32LE, {}, chunk_rows, o.gzip_level);
    Hid str = make_vlen_utf8();
    ids_ = create_growing("ids", str.get(), {}, chunk_rows, o.gzip_level);
    chunk_rows_ = chunk_rows;
    gzip_ = o.gzip_level;
  }

  // Reopens a partial file and trims every dataset to the last committed row.
  void reopen(const std::string& fs_path, int64_t dim, const FeatureAttrs& attrs, const FeatureWriteOptions& o) {
    quiet_hdf5();
    htri_t is = H5Fis_hdf5(fs_path.c_str());
    H5Eclear2(H5E_DEFAULT);
    if (is <= 0) fail("{}: partial file {} is not a readable HDF5 file; delete it to start over", name_, fs_path);
    // libhdf5 parses the partial file's metadata in a child process first (probe_hdf5_file).
    probe_hdf5_file(fs_path, [&] {
      Hid ro(check(H5Fopen(fs_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), name_,
                   fmt::format("cannot reopen partial file {} (delete it to start over)", fs_path)),
             H5Fclose);
      open_partial(ro.get(), fs_path, dim, o.dtype);
    });
    file_ = Hid(check(H5Fopen(fs_path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), name_,
                      fmt::format("cannot reopen partial file {} (delete it to start over)", fs_path)),
                H5Fclose);
    fs_path_ = fs_path;
    Partial p = open_partial(file_.get(), fs_path, dim, o.dtype);
    features_ = std::move(p.features);
    labels_ = std::move(p.labels);
    ids_ = std::move(p.ids);
    image_sizes_ = std::move(p.image_sizes);
    chunk_rows_ = p.chunk_rows;
    gzip_ = o.gzip_level;
    dim_ = dim;
    half_ = o.dtype == "float16";
    rows_ = p.committed;
    // Rows past num_rows belong to an append that did not finish.
    extend_all(rows_);
    write_string_attrs(attrs);
  }

  int64_t rows() const { return rows_; }

  // Checked reads of the file as it is on disk now (flushed first).
  HdfFile on_disk() const {
    check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), name_, "flush failed", 0);
    return HdfFile(file_.get(), fs_path_);
  }

  std::vector<std::string> committed_ids() const {
    require(file_.valid(), "{}: writer is closed", name_);
    if (rows_ == 0) return {};
    std::vector<std::string> ids = on_disk().read_string_dataset(ids_.get(), "ids");
    require(static_cast<int64_t>(ids.size()) >= rows_, "{}: 'ids' holds {} rows, expected {}", name_, ids.size(), rows_);
    ids.resize(static_cast<size_t>(rows_));
    return ids;
  }

  void append(const at::Tensor& features, const at::Tensor& labels, const std::vector<std::string>& ids,
              const at::Tensor& image_sizes) {
    require(file_.valid(), "{}: writer is closed", name_);
    require(features.defined() && features.dim() == 2 && features.size(1) == dim_,
            "{}: append expects features [n, {}], got {}", name_, dim_, features.defined() ? shape_str(features) : "undefined");
    require(at::isFloatingType(features.scalar_type()), "{}: features must be floating point", name_);
    const int64_t n = features.size(0);
    require(labels.defined() && labels.dim() == 1 && labels.size(0) == n, "{}: append expects labels [{}], got {}",
            name_, n, labels.defined() ? shape_str(labels) : "undefined");
    require(!at::isFloatingType(labels.scalar_type()), "{}: labels must be integers", name_);
    require(ids.empty() || static_cast<int64_t>(ids.size()) == n, "{}: append got {} ids for {} rows", name_,
            ids.size(), n);
    if (image_sizes.defined()) {
      require(image_sizes.dim() == 2 && image_sizes.size(0) == n && image_sizes.size(1) == 2,
              "{}: image_sizes must be [{}, 2], got {}", name_, n, shape_str(image_sizes));
      if (!image_sizes_.valid()) {
        require(rows_ == 0, "{}: image_sizes given for rows from {} but not for earlier rows", name_, rows_);
        image_sizes_ = create_growing("image_sizes", H5T_STD_I32LE, {2}, chunk_rows_, gzip_);
      }
    } else {
      require(!image_sizes_.valid() || n == 0, "{}: image_sizes were given for earlier rows, so every append needs them", name_);
    }
    if (n == 0) return;

    at::Tensor lab = labels.to(at::kCPU).to(at::kLong);
    require(lab.min().item<int64_t>() >= 0 && lab.max().item<int64_t>() <= std::numeric_limits<int32_t>::max(),
            "{}: labels must lie in [0, 2^31)", name_);
    lab = lab.to(at::kInt).contiguous();
    at::Tensor x = features.to(at::kCPU).to(half_ ? at::kHalf : at::kFloat).contiguous();
    std::vector<std::string> own_ids;
    const std::vector<std::string>* idp = &ids;
    if (ids.empty()) {
      own_ids.reserve(n);
      for (int64_t i = 0; i < n; ++i) own_ids.push_back(fmt::format("row_{}", rows_ + i));
      idp = &own_ids;
    }
    std::vector<const char*> id_ptrs;
    id_ptrs.reserve(n);
    for (const auto& s : *idp) id_ptrs.push_back(s.c_str());

    const int64_t new_rows = rows_ + n;
    extend_all(new_rows);
    Hid half = make_half_type();
    write_block(features_, rows_, n, {static_cast<hsize_t>(dim_)}, half_ ? half.get() : H5T_NATIVE_FLOAT, x.data_ptr(), "features");
    write_block(labels_, rows_, n, {}, H5T_NATIVE_INT32, lab.data_ptr(), "labels");
    Hid str = make_vlen_utf8();
    write_block(ids_, rows_, n, {}, str.get(), id_ptrs.data(), "ids");
    if (image_sizes.defined()) {
      at::Tensor s = image_sizes.to(at::kCPU).to(at::kInt).contiguous();
      write_block(image_sizes_, rows_, n, {2}, H5T_NATIVE_INT32, s.data_ptr(), "image_sizes");
    }
    // Data first, then the committed count: a crash in between leaves rows that
    // resume will overwrite rather than trust.
    check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), name_, "flush failed", 0);
    rows_ = new_rows;
    write_attr_int(file_.get(), "num_rows", rows_, name_);
    check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), name_, "flush failed", 0);
  }

  void set_classes(const std::vector<std::string>& names, const at::Tensor& embeddings) {
    require(file_.valid(), "{}: writer is closed", name_);
    require(!names.empty(), "{}: the class list is empty", name_);
    hid_t f = file_.get();
    if (embeddings.defined() && embeddings.numel() > 0) {
      require(embeddings.dim() == 2 && embeddings.size(0) == static_cast<int64_t>(names.size()) && embeddings.size(1) == dim_,
              "{}: class_embeddings must be [{}, {}], got {}", name_, names.size(), dim_, shape_str(embeddings));
    }
    for (const char* ds : {"class_names", "class_embeddings"})
      if (has_link(f, ds)) check(H5Ldelete(f, ds, H5P_DEFAULT), name_, fmt::format("cannot replace '{}'", ds), 0);
    Hid str = make_vlen_utf8();
    {
      Hid space = make_dataspace({names.size()}, {}, name_);
      Hid ds(check(H5Dcreate2(f, "class_names", str.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), name_,
                   "cannot create 'class_names'"),
             H5Dclose);
      std::vector<const char*> ptrs;
      for (const auto& s : names) ptrs.push_back(s.c_str());
      check(H5Dwrite(ds.get(), str.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), name_, "cannot write 'class_names'", 0);
    }
    if (embeddings.defined() && embeddings.numel() > 0) {
      at::Tensor e = embeddings.to(at::kCPU).to(at::kFloat).contiguous();
      Hid space = make_dataspace({static_cast<hsize_t>(e.size(0)), static_cast<hsize_t>(e.size(1))}, {}, name_);
      Hid ds(check(H5Dcreate2(f, "class_embeddings", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                   name_, "cannot create 'class_embeddings'"),
             H5Dclose);
      check(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, e.data_ptr()), name_,
            "cannot write 'class_embeddings'", 0);
    }
    num_classes_ = static_cast<int64_t>(names.size());
    write_attr_int(f, "num_classes", num_classes_, name_);
    check(H5Fflush(f, H5F_SCOPE_GLOBAL), name_, "flush failed", 0);
  }

  // Checks that the file is complete and consistent, then closes it.
  void finish() {
    require(file_.valid(), "{}: writer is already closed", name_);
    hid_t f = file_.get();
    if (num_classes_ == 0 && has_link(f, "class_names")) {
      Hid ds = open_dataset(f, "class_names", name_);
      num_classes_ = static_cast<int64_t>(dataset_dims(ds.get(), name_, "class_names")[0]);
    }
    require(num_classes_ > 0, "{}: no class list was set (set_classes)", name_);
    if (rows_ > 0) {
      at::Tensor lab = read_numeric(on_disk(), labels_.get(), at::kLong, H5T_NATIVE_INT64, "labels");
      int64_t mx = lab.max().item<int64_t>();
      require(mx < num_classes_, "{}: label {} is outside [0, {}) classes", name_, mx, num_classes_);
    }
    write_attr_int(f, "num_rows", rows_, name_);
    write_attr_int(f, "num_classes", num_classes_, name_);
    check(H5Fflush(f, H5F_SCOPE_GLOBAL), name_, "flush failed", 0);
    close_all();
  }

  void close_all() {
    image_sizes_.reset();
    ids_.reset();
    labels_.reset();
    features_.reset();
    if (file_.valid()) {
      herr_t rc = H5Fclose(file_.get());
      // Hid would close it again otherwise.
      file_ = Hid();
      if (rc < 0) h5fail(name_, "closing the file failed");
    }
  }

 private:
  static std::string shape_str(const at::Tensor& t) {
    std::string s = "[";
    for (int64_t k = 0; k < t.dim(); ++k) s += (k ? ", " : "") + std::to_string(t.size(k));
    return s + "]";
  }

  void write_string_attrs(const FeatureAttrs& a) {
    hid_t f = file_.get();
    write_attr_str(f, "encoder_model", a.encoder_model, name_);
    write_attr_str(f, "dataset", a.dataset, name_);
    write_attr_str(f, "split", a.split, name_);
    write_attr_str(f, "preprocessing", a.preprocessing, name_);
    write_attr_str(f, "tool_version", a.tool_version.empty() ? std::string(SEMCODEC_VERSION) : a.tool_version, name_);
  }

  // A dataset of shape [0, tail...] that grows along axis 0.
  Hid create_growing(const char* name, hid_t type, const std::vector<hsize_t>& tail, int64_t chunk_rows, int gzip) {
    std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk{static_cast<hsize_t>(chunk_rows)};
    for (hsize_t t : tail) {
      dims.push_back(t);
      maxdims.push_back(t);
      chunk.push_back(t);
    }
    Hid space = make_dataspace(dims, maxdims, name_);
    Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), name_, "cannot set chunking", 0);
    if (gzip > 0 && H5Tget_class(type) != H5T_STRING) {
      if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) fail("{}: this HDF5 library has no gzip filter", name_);
      // Byte shuffling groups exponent bytes together, which gzip compresses far better.
      H5Pset_shuffle(dcpl.get());
      check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(gzip)), name_, "cannot enable gzip", 0);
    }
    return Hid(check(H5Dcreate2(file_.get(), name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), name_,
                     fmt::format("cannot create dataset '{}'", name)),
               H5Dclose);
  }

  void extend_all(int64_t rows) {
    hsize_t r = static_cast<hsize_t>(rows);
    hsize_t fdims[2] = {r, static_cast<hsize_t>(dim_)};
    check(H5Dset_extent(features_.get(), fdims), name_, "cannot extend 'features'", 0);
    check(H5Dset_extent(labels_.get(), &r), name_, "cannot extend 'labels'", 0);
    check(H5Dset_extent(ids_.get(), &r), name_, "cannot extend 'ids'", 0);
    if (image_sizes_.valid()) {
      hsize_t sdims[2] = {r, 2};
      check(H5Dset_extent(image_sizes_.get(), sdims), name_, "cannot extend 'image_sizes'", 0);
    }
  }

  void write_block(const Hid& ds, int64_t start, int64_t n, const std::vector<hsize_t>& tail, hid_t memtype,
                   const void* buf, const char* what) {
    std::vector<hsize_t> off{static_cast<hsize_t>(start)}, cnt{static_cast<hsize_t>(n)};
    for (hsize_t t : tail) {
      off.push_back(0);
      cnt.push_back(t);
    }
    Hid fspace(H5Dget_space(ds.get()), H5Sclose);
    check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(), nullptr), name_,
          "cannot select rows", 0);
    Hid mspace = make_dataspace(cnt, {}, name_);
    check(H5Dwrite(ds.get(), memtype, mspace.get(), fspace.get(), H5P_DEFAULT, buf), name_,
          fmt::format("cannot write '{}' (disk full?)", what), 0);
  }

  // The datasets of a partial file, checked: ranks, types, sizes against the
  // bytes stored, and the committed row count against what they hold.
  struct Partial {
    Hid features, labels, ids, image_sizes;
    int64_t committed = 0, chunk_rows = 1;
  };
  Partial open_partial(hid_t f, const std::string& fs_path, int64_t dim, const std::string& dtype) const {
    HdfFile hf(f, fs_path);
    std::string schema;
    if (!read_attr_str(hf, f, "semcodec_schema", schema) || schema != kFeatureSchemaName)
      fail("{}: partial file {} is not a semcodec feature file", name_, fs_path);
    Partial p;
    p.features = open_dataset(f, "features", fs_path);
    p.labels = open_dataset(f, "labels", fs_path);
    p.ids = open_dataset(f, "ids", fs_path);
    if (has_link(f, "image_sizes")) p.image_sizes = open_dataset(f, "image_sizes", fs_path);
    const auto fd = require_rank(p.features.get(), 2, fs_path, "features");
    const auto ld = require_rank(p.labels.get(), 1, fs_path, "labels");
    require_integer(p.labels.get(), fs_path, "labels");
    const auto idd = require_rank(p.ids.get(), 1, fs_path, "ids");
    {
      Hid it(H5Dget_type(p.ids.get()), H5Tclose);
      if (H5Tis_variable_str(it.get()) <= 0)
        fail("{}: dataset 'ids' of partial file {} must hold variable-length strings", name_, fs_path);
    }
    hf.checked_elements(p.features.get(), "features");
    hf.checked_elements(p.labels.get(), "labels");
    hf.checked_elements(p.ids.get(), "ids");
    hsize_t sizes_rows = 0;
    if (p.image_sizes.valid()) {
      const auto sd = require_rank(p.image_sizes.get(), 2, fs_path, "image_sizes");
      if (sd[1] != 2) fail("{}: dataset 'image_sizes' of partial file {} must be [N, 2]", name_, fs_path);
      require_integer(p.image_sizes.get(), fs_path, "image_sizes");
      hf.checked_elements(p.image_sizes.get(), "image_sizes");
      sizes_rows = sd[0];
    }
    if (static_cast<int64_t>(fd[1]) != dim)
      fail("{}: partial file {} has embed_dim {}, this run uses {}", name_, fs_path, fd[1], dim);
    Hid t(H5Dget_type(p.features.get()), H5Tclose);
    const std::string dt = float_type_name(t.get());
    if (dt != dtype) fail("{}: partial file {} stores {} features, this run asks for {}", name_, fs_path, dt, dtype);
    Hid dcpl(H5Dget_create_plist(p.features.get()), H5Pclose);
    if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED)
      fail("{}: dataset 'features' of partial file {} is not chunked (it cannot grow)", name_, fs_path);
    hsize_t chunk[2] = {1, 1};
    H5Pget_chunk(dcpl.get(), 2, chunk);
    p.chunk_rows = static_cast<int64_t>(chunk[0]);
    if (!read_attr_int(f, "num_rows", p.committed, fs_path)) fail("{}: partial file {} lacks num_rows", name_, fs_path);
    const uint64_t have = std::min<uint64_t>({fd[0], ld[0], idd[0], p.image_sizes.valid() ? sizes_rows : fd[0]});
    if (p.committed < 0 || static_cast<uint64_t>(p.committed) > have)
      fail("{}: partial file {} is inconsistent (num_rows={}, datasets hold {}); delete it to start over", name_,
           fs_path, p.committed, have);
    return p;
  }

  std::string name_, fs_path_;  // the target (for messages) and the file being written
  Hid file_, features_, labels_, ids_, image_sizes_;
  int64_t dim_ = 0, rows_ = 0, num_classes_ = 0, chunk_rows_ = 1024;
  int gzip_ = 0;
  bool half_ = false;
};

// fsyncs `from` and renames it onto `to` (the commit step of FeatureWriter).
void rename_into_place(const std::string& from, const std::string& to) {
  int fd = ::open(from.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(from.c_str(), to.c_str()) != 0)
    fail("{}: cannot rename {} onto it: {}", to, from, std::strerror(errno));
}

}  // namespace

// ---------------------------------------------------------------- public API

void write_feature_file(const std::string& path, const FeatureSet& set, const FeatureWriteOptions& options) {
  require(set.features.defined() && set.features.dim() == 2, "{}: features must be a [N, D] tensor", path);
  require(set.labels.defined() && set.labels.dim() == 1 && set.labels.size(0) == set.size(),
          "{}: labels must be [{}]", path, set.size());
  require(set.ids.empty() || static_cast<int64_t>(set.ids.size()) == set.size(), "{}: {} ids for {} rows", path,
          set.ids.size(), set.size());
  AtomicOutput out(path);
  {
    Builder b(path);
    // Small sets get one chunk of exactly their size rather than a mostly empty one.
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(options.chunk_rows, set.size()));
    b.create(out.temp_path(), set.dim(), set.attrs, options, chunk);
    const int64_t n = set.size();
    // Bounded blocks keep the float16 / int32 staging copies small.
    const int64_t block = std::max<int64_t>(chunk, 65536);
    for (int64_t s = 0; s < n; s += block) {
      int64_t c = std::min(block, n - s);
      std::vector<std::string> ids;
      if (!set.ids.empty()) ids.assign(set.ids.begin() + s, set.ids.begin() + s + c);
      b.append(set.features.narrow(0, s, c), set.labels.narrow(0, s, c), ids,
               set.image_sizes.defined() ? set.image_sizes.narrow(0, s, c) : at::Tensor());
    }
    b.set_classes(set.class_names, set.class_embeddings);
    b.finish();
  }
  out.commit();
}

FeatureFileInfo inspect_feature_file(const std::string& path) { return open_feature_file(path).info; }

void replace_class_embeddings(const std::string& path, const at::Tensor& embeddings,
                              const std::vector<std::string>& class_names) {
  const FeatureFileInfo info = inspect_feature_file(path);  // schema and shapes checked
  require(embeddings.defined() && embeddings.dim() == 2 && embeddings.size(0) == info.num_classes &&
              embeddings.size(1) == info.dim,
          "{}: class embeddings must be [{}, {}] (the file's classes x embed_dim), got {}", path, info.num_classes,
          info.dim, embeddings.defined() ? fmt::format("{}-d tensor with {} elements", embeddings.dim(), embeddings.numel())
                                         : std::string("nothing"));
  require(class_names.empty() || static_cast<int64_t>(class_names.size()) == info.num_classes,
          "{}: {} class names given, the file has {} classes", path, class_names.size(), info.num_classes);
  const at::Tensor e = embeddings.to(at::kCPU).to(at::kFloat).contiguous();
  require(at::isfinite(e).all().item<bool>(), "{}: class embeddings contain NaN or Inf", path);

  AtomicOutput out(path);
  std::error_code ec;
  std::filesystem::copy_file(path, out.temp_path(), std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) fail("{}: cannot copy it to {}: {}", path, out.temp_path(), ec.message());
  {
    Hid file(check(H5Fopen(out.temp_path().c_str(), H5F_ACC_RDWR, H5P_DEFAULT), path, "cannot open a copy for writing"),
             H5Fclose);
    hid_t f = file.get();
    // An existing float32 [C, D] dataset is overwritten where it is, so
    // repeated runs do not leave dead space in the file; any other is replaced.
    bool reuse = false;
    if (has_link(f, "class_embeddings")) {
      Hid ds = open_dataset(f, "class_embeddings", path);
      Hid type(H5Dget_type(ds.get()), H5Tclose);
      const auto dims = dataset_dims(ds.get(), path, "class_embeddings");
      reuse = H5Tequal(type.get(), H5T_IEEE_F32LE) > 0 && dims.size() == 2 &&
              static_cast<int64_t>(dims[0]) == info.num_classes && static_cast<int64_t>(dims[1]) == info.dim;
      if (!reuse) check(H5Ldelete(f, "class_embeddings", H5P_DEFAULT), path, "cannot replace 'class_embeddings'", 0);
    }
    Hid ds;
    if (reuse) {
      ds = open_dataset(f, "class_embeddings", path);
    } else {
      Hid space = make_dataspace({static_cast<hsize_t>(e.size(0)), static_cast<hsize_t>(e.size(1))}, {}, path);
      ds = Hid(check(H5Dcreate2(f, "class_embeddings", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT),
                     path, "cannot create 'class_embeddings'"),
               H5Dclose);
    }
    check(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, e.data_ptr()), path,
          "cannot write 'class_embeddings'", 0);
    ds.reset();
    if (!class_names.empty()) {
      if (has_link(f, "class_names")) check(H5Ldelete(f, "class_names", H5P_DEFAULT), path, "cannot replace 'class_names'", 0);
      Hid str = make_vlen_utf8();
      Hid space = make_dataspace({class_names.size()}, {}, path);
      Hid names(check(H5Dcreate2(f, "class_names", str.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path,
                      "cannot create 'class_names'"),
                H5Dclose);
      std::vector<const char*> ptrs;
      for (const auto& s : class_names) ptrs.push_back(s.c_str());
      check(H5Dwrite(names.get(), str.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), path,
            "cannot write 'class_names'", 0);
    }
    herr_t rc = H5Fclose(file.get());
    file = Hid();
    if (rc < 0) h5fail(path, "closing the updated copy failed");
  }
  inspect_feature_file(out.temp_path());  // the copy must read back as a valid feature file before it replaces the original
  out.commit();
}

struct FeatureReader::Impl {
  OpenFile of;
  Hid features;
  at::Tensor labels;
  bool half = false;
};

FeatureReader::FeatureReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->of = open_feature_file(path);
  const FeatureFileInfo& info = impl_->of.info;
  if (info.rows == 0) fail("{}: empty feature set (0 rows)", path);
  if (info.num_classes == 0) fail("{}: empty class list", path);
  hid_t f = impl_->of.file.get();
  impl_->features = open_dataset(f, "features", path);
  impl_->half = info.dtype == "float16";
  Hid lab = open_dataset(f, "labels", path);
  impl_->labels = read_numeric(*impl_->of.hf, lab.get(), at::kLong, H5T_NATIVE_INT64, "labels");
  const int64_t* l = impl_->labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < info.rows; ++i)
    if (l[i] < 0 || l[i] >= info.num_classes)
      fail("{}: label {} of row {} is outside [0, {}) classes", path, l[i], i, info.num_classes);
}

FeatureReader::~FeatureReader() = default;

const FeatureFileInfo& FeatureReader::info() const { return impl_->of.info; }

at::Tensor FeatureReader::read_rows(int64_t start, int64_t count) {
  const FeatureFileInfo& info = impl_->of.info;
  require(start >= 0 && count >= 0 && start <= info.rows && count <= info.rows - start,
          "{}: rows [{}, {}) are outside [0, {})", info.path, start, start + count, info.rows);
  at::Tensor out = at::empty({count, info.dim}, at::kFloat);
  if (count == 0) return out;
  hsize_t off[2] = {static_cast<hsize_t>(start), 0}, cnt[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(info.dim)};
  Hid fspace(H5Dget_space(impl_->features.get()), H5Sclose);
  check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, off, nullptr, cnt, nullptr), info.path, "cannot select rows", 0);
  Hid mspace = make_dataspace({cnt[0], cnt[1]}, {}, info.path);
  if (impl_->half) {
    at::Tensor h = at::empty({count, info.dim}, at::kHalf);
    Hid half = make_half_type();
    check(H5Dread(impl_->features.get(), half.get(), mspace.get(), fspace.get(), H5P_DEFAULT, h.data_ptr()), info.path,
          "cannot read 'features'", 0);
    out.copy_(h);
  } else {
    check(H5Dread(impl_->features.get(), H5T_NATIVE_FLOAT, mspace.get(), fspace.get(), H5P_DEFAULT, out.data_ptr()),
          info.path, "cannot read 'features'", 0);
  }
  check_rows(out, start, info.path);
  return out;
}

at::Tensor FeatureReader::labels() const { return impl_->labels; }

std::vector<std::string> FeatureReader::ids() {
  hid_t f = impl_->of.file.get();
  const auto& path = impl_->of.info.path;
  if (!has_link(f, "ids")) {
    std::vector<std::string> out;
    out.reserve(impl_->of.info.rows);
    for (int64_t i = 0; i < impl_->of.info.rows; ++i) out.push_back(fmt::format("row_{}", i));
    return out;
  }
  Hid ds = open_dataset(f, "ids", path);
  return impl_->of.hf->read_string_dataset(ds.get(), "ids");
}

std::vector<std::string> FeatureReader::class_names() {
  Hid ds = open_dataset(impl_->of.file.get(), "class_names", impl_->of.info.path);
  return impl_->of.hf->read_string_dataset(ds.get(), "class_names");
}

at::Tensor FeatureReader::class_embeddings() {
  if (!impl_->of.info.has_text) return {};
  const auto& path = impl_->of.info.path;
  Hid ds = open_dataset(impl_->of.file.get(), "class_embeddings", path);
  at::Tensor e = read_numeric(*impl_->of.hf, ds.get(), at::kFloat, H5T_NATIVE_FLOAT, "class_embeddings");
  if (!at::isfinite(e).all().item<bool>()) fail("{}: 'class_embeddings' contains NaN or Inf", path);
  return e;
}

at::Tensor FeatureReader::image_sizes() {
  if (!impl_->of.info.has_image_sizes) return {};
  Hid ds = open_dataset(impl_->of.file.get(), "image_sizes", impl_->of.info.path);
  return read_numeric(*impl_->of.hf, ds.get(), at::kInt, H5T_NATIVE_INT32, "image_sizes");
}

FeatureSet read_feature_file(const std::string& path) {
  FeatureReader r(path);
  const FeatureFileInfo& info = r.info();
  FeatureSet set;
  set.features = at::empty({info.rows, info.dim}, at::kFloat);
  // Read chunk-aligned blocks so float16 staging stays small.
  const int64_t cr = info.chunk_rows > 0 ? info.chunk_rows : 1;
  const int64_t block = (16384 + cr - 1) / cr * cr;
  for (int64_t s = 0; s < info.rows; s += block) {
    int64_t c = std::min(block, info.rows - s);
    set.features.narrow(0, s, c).copy_(r.read_rows(s, c));
  }
  set.labels = r.labels();
  set.ids = r.ids();
  set.class_names = r.class_names();
  set.class_embeddings = r.class_embeddings();
  set.image_sizes = r.image_sizes();
  set.attrs = info.attrs;
  return set;
}

// ---------------------------------------------------------------- FeatureWriter

struct FeatureWriter::Impl {
  std::string path, partial;
  std::unique_ptr<Builder> builder;
  bool closed = false;
};

std::string FeatureWriter::partial_path(const std::string& path) { return path + ".partial"; }

FeatureWriter::FeatureWriter(std::string path, int64_t dim, FeatureAttrs attrs, FeatureWriteOptions options, bool resume)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = std::move(path);
  impl_->partial = partial_path(impl_->path);
  auto parent = std::filesystem::path(impl_->path).parent_path();
  if (!parent.empty()) ensure_dir(parent.string());
  impl_->builder = std::make_unique<Builder>(impl_->path);
  if (resume && file_exists(impl_->partial)) {
    impl_->builder->reopen(impl_->partial, dim, attrs, options);
  } else {
    impl_->builder->create(impl_->partial, dim, attrs, options, options.chunk_rows);
  }
}

FeatureWriter::~FeatureWriter() {
  // Leave the partial file in place, closed cleanly, so a later run can resume.
  if (impl_ && impl_->builder) {
    try {
      impl_->builder->close_all();
    } catch (...) {
    }
  }
}

int64_t FeatureWriter::rows() const { return impl_->builder->rows(); }

std::vector<std::string> FeatureWriter::ids() const { return impl_->builder->committed_ids(); }

void FeatureWriter::append(const at::Tensor& features, const at::Tensor& labels, const std::vector<std::string>& ids,
                           const at::Tensor& image_sizes) {
  require(!impl_->closed, "{}: append after close", impl_->path);
  impl_->builder->append(features, labels, ids, image_sizes);
}

void FeatureWriter::set_classes(const std::vector<std::string>& names, const at::Tensor& embeddings) {
  require(!impl_->closed, "{}: set_classes after close", impl_->path);
  impl_->builder->set_classes(names, embeddings);
}

void FeatureWriter::close() {
  require(!impl_->closed, "{}: already closed", impl_->path);
  impl_->builder->finish();
  impl_->closed = true;
  rename_into_place(impl_->partial, impl_->path);
}

}  // namespace semcodec
