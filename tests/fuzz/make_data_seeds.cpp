// Writes the seed corpora of the data-layer fuzz targets, through the library
// and the reference encoders (tests/fuzz/corpus/<target>/ holds a copy):
//   DIR/feature_file/  feature files as synth / import / extract / merge-shards /
//                      embed-text write them (float32, float16 + gzip, optional
//                      datasets present and absent, an interrupted extraction's
//                      partial file, replaced class embeddings), and one laid out
//                      as h5py's "numpy bytes" would be (fixed-length strings,
//                      contiguous datasets, float64, big-endian and unsigned
//                      integers)
//   DIR/npy/           .npy of every dtype (versions 1.0 and 2.0, big-endian,
//                      Fortran order, 0-d and empty) and .npz, stored and deflated
//   DIR/safetensors/   checkpoints-like files with metadata, every dtype
//   DIR/image/         JPEG and PNG in every layout the decoder handles
// With --large, also DIR/feature_file/f16_1000x768.h5 (1.8 MB: for the
// mutation campaign, not committed). HDF5 stores object times, so feature
// files differ byte for byte from run to run; their content does not.
//
//   make_data_seeds DIR [--large]
#include <ATen/ATen.h>
#include <hdf5.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/feature_store.h"
#include "data/npy.h"
#include "data/safetensors.h"
#include "data/random_feature_set.h"
#include "data/test_image_writers.h"
#include "npy_bytes.h"
#include "zip_writer.h"

using namespace semcodec;
namespace fs = std::filesystem;

namespace {

void put(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

FeatureSet make_set(int64_t n, int64_t d, int64_t c, bool extras) {
  return test::random_feature_set(n, d, c, extras, "seed", "resize224");
}

// A feature file laid out as h5py writes numpy arrays of bytes: fixed-length
// string attributes and datasets, contiguous storage, float64 features,
// big-endian uint16 labels, uint8 image sizes.
void write_fixed_length_file(const std::string& path) {
  const int n = 6, d = 4, c = 3;
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  auto str_attr = [&](const char* name, const std::string& v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, v.size());
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v.data());
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
  };
  auto int_attr = [&](const char* name, int64_t v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(s);
  };
  auto dataset = [&](const char* name, hid_t ftype, hid_t mtype, std::vector<hsize_t> dims, const void* data) {
    hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t ds = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(ds);
    H5Sclose(s);
  };
  str_attr("semcodec_schema", "semcodec.features");
  int_attr("schema_version", 1);
  str_attr("encoder_model", "h5py");
  str_attr("dataset", "mine");
  str_attr("split", "all");
  str_attr("preprocessing", "none");
  str_attr("tool_version", "h5py");
  int_attr("embed_dim", d);
  int_attr("num_rows", n);
  int_attr("num_classes", c);
  std::vector<double> x(n * d);
  for (int i = 0; i < n; ++i) x[i * d + i % d] = 1.0;
  dataset("features", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n, d}, x.data());
  std::vector<uint16_t> y{0, 1, 2, 0, 1, 2};
  dataset("labels", H5T_STD_U16BE, H5T_NATIVE_UINT16, {n}, y.data());
  std::vector<uint8_t> sizes(n * 2, 7);
  dataset("image_sizes", H5T_STD_U8LE, H5T_NATIVE_UINT8, {n, 2}, sizes.data());
  hid_t s8 = H5Tcopy(H5T_C_S1);
  H5Tset_size(s8, 8);
  H5Tset_strpad(s8, H5T_STR_NULLPAD);
  const char ids[n][8] = {"a/0.jpg", "a/1.jpg", "b/2.jpg", "b/3.jpg", "c/4.jpg", "c/5"};
  dataset("ids", s8, s8, {n}, ids);
  const char names[c][8] = {"cat", "dog", "#3 bird"};
  dataset("class_names", s8, s8, {c}, names);
  H5Tclose(s8);
  H5Fclose(f);
}

void feature_files(const std::string& dir, bool large) {
  fs::create_directories(dir);
  at::manual_seed(7);
  const FeatureSet full = make_set(24, 16, 5, true);
  write_feature_file(dir + "/f32_extras.h5", full);
  FeatureWriteOptions h;
  h.dtype = "float16";
  h.gzip_level = 4;
  h.chunk_rows = 8;
  write_feature_file(dir + "/f16_gzip_chunked.h5", full, h);
  write_feature_file(dir + "/f32_minimal.h5", make_set(12, 8, 3, false));
  {
    FeatureWriter w(dir + "/interrupted.h5", 16, full.attrs, h);
    w.append(full.features.narrow(0, 0, 16), full.labels.narrow(0, 0, 16),
             std::vector<std::string>(full.ids.begin(), full.ids.begin() + 16), full.image_sizes.narrow(0, 0, 16));
  }  // destroyed without close(): "interrupted.h5.partial" stays, as after a killed extraction
  fs::rename(dir + "/interrupted.h5.partial", dir + "/interrupted_partial.h5");
  write_feature_file(dir + "/embed_text.h5", make_set(10, 8, 4, false));
  at::Tensor e = at::randn({4, 8});
  replace_class_embeddings(dir + "/embed_text.h5", e / e.norm(2, 1, true), {"a", "b", "c", "\xe2\x82\xac"});
  write_fixed_length_file(dir + "/h5py_fixed_length.h5");
  if (large) {
    FeatureWriteOptions big;
    big.dtype = "float16";
    big.chunk_rows = 256;
    write_feature_file(dir + "/f16_1000x768.h5", make_set(1000, 768, 50, true), big);
  }
}

void npy_files(const std::string& dir) {
  fs::create_directories(dir);
  const at::Tensor f = at::arange(12, at::kFloat).reshape({3, 4}) / 7;
  put(dir + "/f4_3x4.npy", encode_npy(f));
  put(dir + "/f2_3x4.npy", encode_npy(f.to(at::kHalf)));
  put(dir + "/f8_3.npy", encode_npy(at::arange(3, at::kDouble)));
  put(dir + "/i8_labels.npy", encode_npy(at::tensor({0, 1, 2}, at::kLong)));  // f4_3x4's labels
  put(dir + "/i4_2x1.npy", encode_npy(at::tensor({3, 4}, at::kInt).reshape({2, 1})));
  put(dir + "/u1.npy", encode_npy(at::tensor({1, 2, 255}, at::kByte)));
  put(dir + "/b1.npy", encode_npy(at::tensor({1, 0, 1}, at::kByte).to(at::kBool)));
  put(dir + "/scalar.npy", encode_npy(at::scalar_tensor(5.0, at::kFloat)));
  put(dir + "/empty.npy", encode_npy(at::zeros({0, 4})));
  const std::string be(
      "\x3f\x80\x00\x00"
      "\x40\x00\x00\x00",
      8);
  put(dir + "/f4_big_endian_v2.npy", test::npy_with_header(2, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", be));
  std::string fortran;
  for (int v : {0, 3, 1, 4, 2, 5}) fortran += std::string(reinterpret_cast<const char*>(&v), 4);
  put(dir + "/i4_fortran.npy", test::npy_with_header(1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", fortran));
  std::string u2;
  for (uint16_t v : {1, 65535}) u2 += std::string(reinterpret_cast<const char*>(&v), 2);
  put(dir + "/u2.npy", test::npy_with_header(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", u2));
  const test::ZipFiles members{{"image.npy", encode_npy(f)}, {"labels.npy", encode_npy(at::tensor({0, 1, 2}, at::kLong))}};
  put(dir + "/stored.npz", test::make_zip(members));
  put(dir + "/deflated.npz", test::make_zip(members, false, true));
  put(dir + "/zip64.npz", test::make_zip({{"x.npy", encode_npy(at::arange(4, at::kInt))}}, true));
}

void safetensors_files(const std::string& dir) {
  fs::create_directories(dir);
  std::map<std::string, at::Tensor> t{{"encoder.weight", at::arange(6, at::kFloat).reshape({2, 3})},
                                      {"codebook", at::arange(4, at::kDouble)},
                                      {"half", at::ones({2}, at::kHalf)},
                                      {"bf16", at::ones({3}, at::kBFloat16)},
                                      {"step", at::tensor({7}, at::kLong)},
                                      {"i32", at::tensor({-1, 2}, at::kInt)},
                                      {"i16", at::tensor({5}, at::kShort)},
                                      {"i8", at::tensor({-3}, at::kChar)},
                                      {"u8", at::tensor({200}, at::kByte)},
                                      {"flag", at::tensor({1, 0}, at::kByte).to(at::kBool)},
                                      {"empty", at::zeros({0, 2})}};
  put(dir + "/all_dtypes.safetensors",
      serialize_safetensors(t, {{"format", "pt"}, {"config", "{\"model\": {\"method\": \"pqvae-shared\"}}"}}));
  put(dir + "/one.safetensors", serialize_safetensors({{"w", at::ones({1})}}));
}

void image_files(const std::string& dir) {
  fs::create_directories(dir);
  const auto rgb = test::rgb_pattern(8, 6);
  put(dir + "/rgb.jpg", test::encode_jpeg(8, 6, 3, JCS_RGB, rgb, 90));
  put(dir + "/rgb_progressive.jpg", test::encode_jpeg(8, 6, 3, JCS_RGB, rgb, 90, JCS_UNKNOWN, true));
  std::vector<uint8_t> gray(8 * 6);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i * 5);
  put(dir + "/gray.jpg", test::encode_jpeg(8, 6, 1, JCS_GRAYSCALE, gray, 90));
  std::vector<uint8_t> cmyk(8 * 6 * 4, 100);
  put(dir + "/cmyk.jpg", test::encode_jpeg(8, 6, 4, JCS_CMYK, cmyk, 90));
  put(dir + "/rgb.png", test::encode_png(8, 6, PNG_COLOR_TYPE_RGB, 8, rgb));
  put(dir + "/rgb_interlaced.png", test::encode_png(8, 6, PNG_COLOR_TYPE_RGB, 8, rgb, {}, {}, true));
  put(dir + "/gray1.png", test::encode_png(4, 1, PNG_COLOR_TYPE_GRAY, 1, {0xB0}));
  put(dir + "/gray16.png", test::encode_png(2, 1, PNG_COLOR_TYPE_GRAY, 16, {0x00, 0x10, 0xFF, 0x00}));
  put(dir + "/gray_alpha.png", test::encode_png(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {10, 20, 30, 40}));
  const std::vector<png_color> pal{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  put(dir + "/palette_trns.png", test::encode_png(3, 1, PNG_COLOR_TYPE_PALETTE, 8, {2, 0, 1}, pal, {0, 128}));
  put(dir + "/rgba16.png", test::encode_png(1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, {1, 255, 2, 255, 3, 255, 4, 255}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [--large]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const bool large = argc > 2 && std::string(argv[2]) == "--large";
  feature_files(dir + "/feature_file", large);
  npy_files(dir + "/npy");
  safetensors_files(dir + "/safetensors");
  image_files(dir + "/image");
  std::printf("make_data_seeds: wrote seeds under %s\n", dir.c_str());
  return 0;
}
