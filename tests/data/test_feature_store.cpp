#include <ATen/ATen.h>
#include <hdf5.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "data/feature_store.h"
#include "data/random_feature_set.h"
#include "semcodec_version.h"
#include "test_support.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {

FeatureSet make_set(int64_t n, int64_t d, int64_t c, uint64_t seed, bool extras = true) {
  at::manual_seed(seed);
  return test::random_feature_set(n, d, c, extras, "unit-test", "none");
}

using semcodec::test::error_of;
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Raw HDF5 helpers for checking the on-disk schema independently of the reader.
std::string attr_string(hid_t f, const char* name) {
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  REQUIRE(a >= 0);
  hid_t t = H5Aget_type(a);
  CHECK(H5Tget_class(t) == H5T_STRING);
  CHECK(H5Tis_variable_str(t) > 0);
  CHECK(H5Tget_cset(t) == H5T_CSET_UTF8);
  char* p = nullptr;
  H5Aread(a, t, &p);
  std::string out = p ? p : "";
  H5free_memory(p);
  H5Tclose(t);
  H5Aclose(a);
  return out;
}
int64_t attr_int(hid_t f, const char* name) {
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  REQUIRE(a >= 0);
  hid_t t = H5Aget_type(a);
  CHECK(H5Tget_class(t) == H5T_INTEGER);
  int64_t v = -1;
  H5Aread(a, H5T_NATIVE_INT64, &v);
  H5Tclose(t);
  H5Aclose(a);
  return v;
}
struct DsInfo {
  std::vector<hsize_t> dims;
  H5T_class_t cls;
  size_t size;
  bool vlen_str = false;
  hid_t type = -1;
};
DsInfo ds_info(hid_t f, const char* name) {
  DsInfo i;
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  REQUIRE(d >= 0);
  hid_t s = H5Dget_space(d);
  i.dims.resize(H5Sget_simple_extent_ndims(s));
  H5Sget_simple_extent_dims(s, i.dims.data(), nullptr);
  i.type = H5Dget_type(d);
  i.cls = H5Tget_class(i.type);
  i.size = H5Tget_size(i.type);
  if (i.cls == H5T_STRING) i.vlen_str = H5Tis_variable_str(i.type) > 0 && H5Tget_cset(i.type) == H5T_CSET_UTF8;
  H5Sclose(s);
  H5Dclose(d);
  return i;
}

void overwrite_feature_row(const std::string& path, int64_t row, float value) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t d = H5Dopen2(f, "features", H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hsize_t dims[2];
  H5Sget_simple_extent_dims(s, dims, nullptr);
  hsize_t off[2] = {static_cast<hsize_t>(row), 0}, cnt[2] = {1, dims[1]};
  H5Sselect_hyperslab(s, H5S_SELECT_SET, off, nullptr, cnt, nullptr);
  hid_t m = H5Screate_simple(2, cnt, nullptr);
  std::vector<float> buf(dims[1], value);
  REQUIRE(H5Dwrite(d, H5T_NATIVE_FLOAT, m, s, H5P_DEFAULT, buf.data()) >= 0);
  H5Sclose(m);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
}

}  // namespace

TEST_CASE("feature file round trip, float32 and float16", "[feature_store]") {
  TempDir dir("fs");
  FeatureSet s = make_set(300, 32, 7, 3);
  SECTION("float32 is exact") {
    FeatureWriteOptions o;
    o.chunk_rows = 64;
    write_feature_file(dir.file("a.h5"), s, o);
    FeatureSet r = read_feature_file(dir.file("a.h5"));
    CHECK(r.features.equal(s.features));
    CHECK(r.labels.equal(s.labels));
    CHECK(r.ids == s.ids);
    CHECK(r.class_names == s.class_names);
    CHECK(r.class_embeddings.equal(s.class_embeddings));
    CHECK(r.image_sizes.equal(s.image_sizes));
    CHECK(r.attrs.encoder_model == "ViT-B/32");
    CHECK(r.attrs.dataset == "unit-test");
    CHECK(r.attrs.split == "val");
    CHECK(r.attrs.tool_version == SEMCODEC_VERSION);
  }
  SECTION("float16 with gzip is within 1e-3") {
    FeatureWriteOptions o;
    o.dtype = "float16";
    o.gzip_level = 4;
    o.chunk_rows = 100;
    write_feature_file(dir.file("h.h5"), s, o);
    FeatureSet r = read_feature_file(dir.file("h.h5"));
    CHECK(r.features.scalar_type() == at::kFloat);
    CHECK((r.features - s.features).abs().max().item<float>() < 1e-3f);
    FeatureFileInfo info = inspect_feature_file(dir.file("h.h5"));
    CHECK(info.dtype == "float16");
    CHECK(info.compression == "gzip-4");
    CHECK(info.chunk_rows == 100);
    CHECK(info.rows == 300);
    CHECK(info.dim == 32);
    CHECK(info.num_classes == 7);
    CHECK(info.has_text);
    CHECK(info.has_image_sizes);
  }
  SECTION("optional datasets may be absent") {
    FeatureSet t = make_set(10, 8, 3, 4, /*extras=*/false);
    write_feature_file(dir.file("m.h5"), t);
    FeatureSet r = read_feature_file(dir.file("m.h5"));
    CHECK_FALSE(r.class_embeddings.defined());
    CHECK_FALSE(r.image_sizes.defined());
    CHECK_FALSE(inspect_feature_file(dir.file("m.h5")).has_text);
  }
  // Nothing but the target is left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  CHECK(files <= 1);
}

TEST_CASE("feature file schema matches docs/feature-store.md", "[feature_store]") {
  TempDir dir("fsschema");
  FeatureSet s = make_set(50, 16, 5, 5);
  for (std::string dtype : {"float32", "float16"}) {
    FeatureWriteOptions o;
    o.dtype = dtype;
    o.chunk_rows = 16;
    const std::string p = dir.file(dtype + ".h5");
    write_feature_file(p, s, o);
    hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(f >= 0);
    CHECK(attr_string(f, "semcodec_schema") == "semcodec.features");
    CHECK(attr_int(f, "schema_version") == 1);
    CHECK(attr_string(f, "encoder_model") == "ViT-B/32");
    CHECK(attr_int(f, "embed_dim") == 16);
    CHECK(attr_string(f, "dataset") == "unit-test");
    CHECK(attr_string(f, "split") == "val");
    CHECK(attr_string(f, "preprocessing") == "none");
    CHECK(attr_string(f, "tool_version") == SEMCODEC_VERSION);
    CHECK(attr_int(f, "num_rows") == 50);
    CHECK(attr_int(f, "num_classes") == 5);

    DsInfo x = ds_info(f, "features");
    CHECK(x.dims == std::vector<hsize_t>{50, 16});
    CHECK(x.cls == H5T_FLOAT);
    CHECK(x.size == (dtype == "float16" ? 2u : 4u));
    if (dtype == "float16") {
      // The IEEE binary16 layout h5py maps to numpy float16.
      size_t spos, epos, esize, mpos, msize;
      H5Tget_fields(x.type, &spos, &epos, &esize, &mpos, &msize);
      CHECK(spos == 15);
      CHECK(epos == 10);
      CHECK(esize == 5);
      CHECK(mpos == 0);
      CHECK(msize == 10);
      CHECK(H5Tget_ebias(x.type) == 15);
      CHECK(H5Tget_order(x.type) == H5T_ORDER_LE);
    } else {
      CHECK(H5Tequal(x.type, H5T_IEEE_F32LE) > 0);
    }
    H5Tclose(x.type);
    {
      hid_t d = H5Dopen2(f, "features", H5P_DEFAULT);
      hid_t pl = H5Dget_create_plist(d);
      CHECK(H5Pget_layout(pl) == H5D_CHUNKED);
      hsize_t chunk[2];
      H5Pget_chunk(pl, 2, chunk);
      CHECK(chunk[0] == 16);
      CHECK(chunk[1] == 16);
      H5Pclose(pl);
      H5Dclose(d);
    }
    DsInfo l = ds_info(f, "labels");
    CHECK(l.dims == std::vector<hsize_t>{50});
    CHECK(H5Tequal(l.type, H5T_STD_I32LE) > 0);
    H5Tclose(l.type);
    DsInfo ids = ds_info(f, "ids");
    CHECK(ids.dims == std::vector<hsize_t>{50});
    CHECK(ids.vlen_str);
    H5Tclose(ids.type);
    DsInfo cn = ds_info(f, "class_names");
    CHECK(cn.dims == std::vector<hsize_t>{5});
    CHECK(cn.vlen_str);
    H5Tclose(cn.type);
    DsInfo ce = ds_info(f, "class_embeddings");
    CHECK(ce.dims == std::vector<hsize_t>{5, 16});
    CHECK(H5Tequal(ce.type, H5T_IEEE_F32LE) > 0);
    H5Tclose(ce.type);
    DsInfo is = ds_info(f, "image_sizes");
    CHECK(is.dims == std::vector<hsize_t>{50, 2});
    CHECK(H5Tequal(is.type, H5T_STD_I32LE) > 0);
    H5Tclose(is.type);
    H5Fclose(f);
  }
}

TEST_CASE("invalid feature files fail naming the file", "[feature_store]") {
  TempDir dir("fsbad");
  FeatureSet s = make_set(20, 8, 4, 6);

  CHECK(contains(error_of([&] { read_feature_file(dir.file("nope.h5")); }), "nope.h5: feature file does not exist"));

  {
    std::ofstream(dir.file("text.h5")) << "this is not hdf5\n";
    CHECK(contains(error_of([&] { read_feature_file(dir.file("text.h5")); }), "text.h5: not an HDF5 file"));
    CHECK(contains(error_of([&] { inspect_feature_file(dir.file("text.h5")); }), "text.h5: not an HDF5 file"));
  }
  {
    write_feature_file(dir.file("nan.h5"), s);
    overwrite_feature_row(dir.file("nan.h5"), 7, std::nanf(""));
    std::string e = error_of([&] { read_feature_file(dir.file("nan.h5")); });
    CHECK(contains(e, "nan.h5"));
    CHECK(contains(e, "row 7"));
    CHECK(contains(e, "NaN"));
  }
  {
    write_feature_file(dir.file("zero.h5"), s);
    overwrite_feature_row(dir.file("zero.h5"), 13, 0.0f);
    std::string e = error_of([&] { read_feature_file(dir.file("zero.h5")); });
    CHECK(contains(e, "zero.h5"));
    CHECK(contains(e, "row 13"));
    CHECK(contains(e, "zero norm"));
  }
  {
    FeatureSet empty = s;
    empty.features = at::zeros({0, 8});
    empty.labels = at::zeros({0}, at::kLong);
    empty.ids.clear();
    empty.image_sizes = at::Tensor();
    write_feature_file(dir.file("empty.h5"), empty);
    CHECK(inspect_feature_file(dir.file("empty.h5")).rows == 0);
    std::string e = error_of([&] { read_feature_file(dir.file("empty.h5")); });
    CHECK(contains(e, "empty.h5: empty feature set"));
  }
  {
    // A file that is HDF5 but not ours.
    hid_t f = H5Fcreate(dir.file("other.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    CHECK(contains(error_of([&] { read_feature_file(dir.file("other.h5")); }), "other.h5: not a semcodec feature file"));
  }
  {
    // Labels beyond the class list are refused at write time.
    FeatureSet b = s;
    b.labels = s.labels.clone();
    b.labels[3] = 9;
    CHECK(contains(error_of([&] { write_feature_file(dir.file("lab.h5"), b); }), "label 9"));
    CHECK_FALSE(std::filesystem::exists(dir.file("lab.h5")));
  }
  {
    FeatureSet b = s;
    b.class_embeddings = at::randn({4, 5});
    CHECK(contains(error_of([&] { write_feature_file(dir.file("ce.h5"), b); }), "class_embeddings"));
  }
}

TEST_CASE("FeatureReader streams rows equal to the full read", "[feature_store]") {
  TempDir dir("fsstream");
  FeatureSet s = make_set(1000, 24, 10, 7);
  FeatureWriteOptions o;
  o.chunk_rows = 128;
  o.dtype = "float16";
  write_feature_file(dir.file("s.h5"), s, o);
  FeatureSet full = read_feature_file(dir.file("s.h5"));
  FeatureReader r(dir.file("s.h5"));
  CHECK(r.size() == 1000);
  CHECK(r.dim() == 24);
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < r.size(); start += 300) parts.push_back(r.read_rows(start, std::min<int64_t>(300, r.size() - start)));
  CHECK(at::cat(parts).equal(full.features));
  CHECK(r.labels().equal(full.labels));
  CHECK(r.read_rows(999, 1).equal(full.features.narrow(0, 999, 1)));
  CHECK(contains(error_of([&] { r.read_rows(990, 20); }), "outside"));
}

TEST_CASE("FeatureWriter appends, resumes and commits atomically", "[feature_store]") {
  TempDir dir("fswriter");
  FeatureSet s = make_set(250, 16, 5, 8);
  const std::string target = dir.file("w.h5");
  FeatureWriteOptions o;
  o.chunk_rows = 32;
  {
    FeatureWriter w(target, 16, s.attrs, o);
    w.append(s.features.narrow(0, 0, 100), s.labels.narrow(0, 0, 100),
             std::vector<std::string>(s.ids.begin(), s.ids.begin() + 100), s.image_sizes.narrow(0, 0, 100));
    CHECK(w.rows() == 100);
    CHECK_FALSE(std::filesystem::exists(target));
    CHECK(std::filesystem::exists(FeatureWriter::partial_path(target)));
    // Destroyed without close(): an interrupted run.
  }
  CHECK_FALSE(std::filesystem::exists(target));
  {
    FeatureWriter w(target, 16, s.attrs, o, /*resume=*/true);
    REQUIRE(w.rows() == 100);
    for (int64_t start = 100; start < 250; start += 70) {
      int64_t n = std::min<int64_t>(70, 250 - start);
      w.append(s.features.narrow(0, start, n), s.labels.narrow(0, start, n),
               std::vector<std::string>(s.ids.begin() + start, s.ids.begin() + start + n), s.image_sizes.narrow(0, start, n));
    }
    CHECK(contains(error_of([&] { w.append(s.features.narrow(0, 0, 2), s.labels.narrow(0, 0, 2), {}); }), "image_sizes"));
    CHECK(contains(error_of([&] { w.append(at::zeros({2, 15}), s.labels.narrow(0, 0, 2), {}); }), "[n, 16]"));
    w.set_classes(s.class_names, s.class_embeddings);
    w.close();
  }
  CHECK(std::filesystem::exists(target));
  CHECK_FALSE(std::filesystem::exists(FeatureWriter::partial_path(target)));
  FeatureSet r = read_feature_file(target);
  CHECK(r.features.equal(s.features));
  CHECK(r.labels.equal(s.labels));
  CHECK(r.ids == s.ids);
  CHECK(r.image_sizes.equal(s.image_sizes));
  CHECK(r.class_embeddings.equal(s.class_embeddings));

  // Resuming with a different dimension is refused; without resume the partial file is replaced.
  {
    FeatureWriter w(dir.file("x.h5"), 16, s.attrs, o);
    w.append(s.features.narrow(0, 0, 10), s.labels.narrow(0, 0, 10), {});
  }
  CHECK(contains(error_of([&] { FeatureWriter w(dir.file("x.h5"), 8, s.attrs, o, true); }), "embed_dim"));
  {
    FeatureWriter w(dir.file("x.h5"), 16, s.attrs, o, false);
    CHECK(w.rows() == 0);
    CHECK(contains(error_of([&] { w.close(); }), "set_classes"));
  }
}

TEST_CASE("select_classes keeps rows of the chosen classes", "[feature_store]") {
  FeatureSet s = make_set(40, 4, 4, 9);
  FeatureSet t = select_classes(s, {1, 3});
  CHECK(t.size() == 20);
  CHECK(t.ids.size() == 20);
  CHECK(t.image_sizes.size(0) == 20);
  CHECK(t.num_classes() == 4);
  CHECK(((t.labels == 1) | (t.labels == 3)).all().item<bool>());
  CHECK(t.features[0].equal(s.features[1]));
  CHECK_THROWS_AS(select_classes(s, {4}), Error);
}

namespace {
// Grows every row-indexed dataset of a written feature file to `rows` rows
// without writing them: the file keeps its size and claims far more.
void claim_rows(const std::string& path, hsize_t rows) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  for (const char* name : {"features", "labels", "ids", "image_sizes"}) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) continue;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(s, dims, nullptr);
    dims[0] = rows;
    REQUIRE(H5Dset_extent(d, dims) >= 0);
    H5Sclose(s);
    H5Dclose(d);
  }
  hid_t a = H5Aopen(f, "num_rows", H5P_DEFAULT);
  const int64_t v = static_cast<int64_t>(rows);
  H5Awrite(a, H5T_NATIVE_INT64, &v);
  H5Aclose(a);
  H5Fclose(f);
}
hsize_t stored_bytes(const std::string& path, const char* name) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  const hsize_t n = H5Dget_storage_size(d);
  H5Dclose(d);
  H5Fclose(f);
  return n;
}
}  // namespace

TEST_CASE("a small feature file claiming 2^26 rows fails at once, naming the file", "[feature_store]") {
  TempDir dir("fsclaim");
  const std::string p = dir.file("claims.h5");
  FeatureSet s = make_set(500, 16, 4, 21);
  FeatureWriteOptions o;
  o.chunk_rows = 500;
  write_feature_file(p, s, o);
  claim_rows(p, hsize_t{1} << 26);
  REQUIRE(std::filesystem::file_size(p) < 100000);
  const std::string expected =
      fmt::format("{}: 'features' declares [67108864, 16] elements of 4 bytes (4294967296 bytes) but the file stores {} "
                  "bytes for it (truncated or damaged file)",
                  p, stored_bytes(p, "features"));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(error_of([&] { inspect_feature_file(p); }) == expected);
  CHECK(error_of([&] { read_feature_file(p); }) == expected);
  CHECK(error_of([&] { FeatureReader r(p); }) == expected);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("strings of fixed length and the types h5py writes are read, odd types refused", "[feature_store]") {
  // Written by tests/fuzz/make_data_seeds (fixed-length strings, contiguous datasets, float64
  // features, big-endian uint16 labels, uint8 image sizes).
  const std::string p = std::string(SEMCODEC_SOURCE_DIR) + "/tests/fuzz/corpus/feature_file/h5py_fixed_length.h5";
  const FeatureSet s = read_feature_file(p);
  CHECK(s.size() == 6);
  CHECK(s.dim() == 4);
  CHECK(s.labels.equal(at::tensor(std::vector<int64_t>{0, 1, 2, 0, 1, 2})));
  CHECK(s.class_names == std::vector<std::string>{"cat", "dog", "#3 bird"});
  CHECK(s.ids.front() == "a/0.jpg");
  CHECK(s.ids.back() == "c/5");
  CHECK(s.attrs.encoder_model == "h5py");
  CHECK(s.image_sizes.equal(at::full({6, 2}, 7, at::kInt)));

  TempDir dir("fstypes");
  const std::string q = dir.file("odd.h5");
  write_feature_file(q, make_set(10, 8, 2, 22));
  {
    // labels as 12-bit integers in 16-bit words, features as a float with a non-IEEE layout
    hid_t f = H5Fopen(q.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "labels", H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_STD_I16LE);
    H5Tset_precision(t, 12);
    hsize_t n = 10;
    hid_t sp = H5Screate_simple(1, &n, nullptr);
    hid_t d = H5Dcreate2(f, "labels", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<int16_t> zeros(10, 0);
    H5Dwrite(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
  }
  CHECK(error_of([&] { inspect_feature_file(q); }) == q + ": dataset 'labels' must hold 8, 16, 32 or 64-bit integers");
}
