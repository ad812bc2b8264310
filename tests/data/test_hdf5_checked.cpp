// The checked HDF5 reads (data/hdf5_checked.h): variable-length strings read
// without libhdf5's global-heap code, declared sizes checked against the
// stored bytes, and libhdf5's metadata parsing probed in a child process.
#include <hdf5.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "data/hdf5_checked.h"
#include "test_support.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {

using semcodec::test::error_of;
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A file with one variable-length string attribute and a 1-D string dataset.
void write_strings(const std::string& path, const std::string& attr, const std::vector<std::string>& strings) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hid_t scalar = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "name", t, scalar, H5P_DEFAULT, H5P_DEFAULT);
  const char* p = attr.c_str();
  H5Awrite(a, t, &p);
  H5Aclose(a);
  hsize_t n = strings.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(f, "strings", t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<const char*> ptrs;
  for (const auto& s : strings) ptrs.push_back(s.c_str());
  H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data());
  H5Dclose(d);
  H5Sclose(space);
  H5Sclose(scalar);
  H5Tclose(t);
  H5Fclose(f);
}

struct Read {
  std::string attr;
  std::vector<std::string> strings;
};
Read read_strings(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  Read r;
  try {
    HdfFile hf(f, path);
    hid_t a = H5Aopen(f, "name", H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "strings", H5P_DEFAULT);
    try {
      r.attr = hf.read_string_attribute(a, "name");
      r.strings = hf.read_string_dataset(d, "strings");
    } catch (...) {
      H5Aclose(a);
      H5Dclose(d);
      throw;
    }
    H5Aclose(a);
    H5Dclose(d);
  } catch (...) {
    H5Fclose(f);
    throw;
  }
  H5Fclose(f);
  return r;
}

uint64_t le64(const std::string& b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}
void set_le(std::string& b, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

}  // namespace

TEST_CASE("variable-length strings are read from the global heap by our own reader", "[hdf5_checked]") {
  TempDir dir("h5vlen");
  const std::string p = dir.file("s.h5");
  const std::vector<std::string> strings{"a", "", "caf\xc3\xa9", std::string(300, 'x')};
  write_strings(p, "semcodec.features", strings);
  const Read r = read_strings(p);
  CHECK(r.attr == "semcodec.features");
  CHECK(r.strings == strings);
}

TEST_CASE("a damaged global heap is an error naming the file, never a libhdf5 read", "[hdf5_checked]") {
  TempDir dir("h5heap");
  const std::string good = dir.file("good.h5");
  write_strings(good, "semcodec.features", {"alpha", "beta"});
  const std::string bytes = slurp(good);
  const size_t gcol = bytes.find("GCOL");
  REQUIRE(gcol != std::string::npos);
  const uint64_t size = le64(bytes, gcol + 8);
  // The attribute's string is an object of that collection: 16-byte header (index, references, reserved, size), data.
  const size_t text = bytes.find("semcodec.features", gcol);
  REQUIRE(text != std::string::npos);
  const size_t object = text - 16;
  const unsigned index = static_cast<unsigned char>(bytes[object]) | static_cast<unsigned char>(bytes[object + 1]) << 8;
  const std::string p = dir.file("bad.h5");

  SECTION("a collection larger than the file") {
    std::string b = bytes;
    set_le(b, gcol + 8, uint64_t{1} << 40, 8);
    spit(p, b);
    CHECK(error_of([&] { read_strings(p); }) ==
          fmt::format("{}: the global heap collection at {} claims 1099511627776 bytes, outside the file (damaged file)", p,
                      gcol));
  }
  SECTION("an object that runs past its collection (libhdf5 1.10 copies past its buffer here)") {
    std::string b = bytes;
    set_le(b, object + 8, size, 8);
    spit(p, b);
    CHECK(error_of([&] { read_strings(p); }) ==
          fmt::format("{}: object {} of the global heap collection at {} overruns it (damaged file)", p, index, gcol));
  }
  SECTION("an index the collection does not hold (libhdf5 1.10 reads outside its object table here)") {
    std::string b = bytes;
    set_le(b, object, 0x7777, 2);
    spit(p, b);
    CHECK(error_of([&] { read_strings(p); }) ==
          fmt::format("{}: attribute 'name' names object {} of the global heap collection at {}, which has no such "
                      "object (damaged file)",
                      p, index, gcol));
  }
  SECTION("a string longer than its object") {
    // The attribute's descriptor: length, collection address, object index.
    std::string descriptor(16, '\0');
    set_le(descriptor, 0, 17, 4);
    set_le(descriptor, 4, gcol, 8);
    set_le(descriptor, 12, index, 4);
    const size_t at = bytes.find(descriptor);
    REQUIRE(at != std::string::npos);
    std::string b = bytes;
    set_le(b, at, 100, 4);
    spit(p, b);
    CHECK(error_of([&] { read_strings(p); }) ==
          fmt::format("{}: attribute 'name' is 100 bytes long but its global heap object holds 17 (damaged file)", p));
  }
  SECTION("a descriptor pointing where no collection is") {
    std::string b = bytes;
    b.replace(gcol, 4, "LOCG");
    spit(p, b);
    CHECK(error_of([&] { read_strings(p); }) ==
          fmt::format("{}: attribute 'name' points to address {}, which holds no global heap collection (damaged file)",
                      p, gcol));
  }
}

TEST_CASE("declared sizes are checked against the bytes stored before anything is allocated", "[hdf5_checked]") {
  TempDir dir("h5size");
  const std::string p = dir.file("grow.h5");
  hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[2] = {8, 4}, maxdims[2] = {H5S_UNLIMITED, 4}, chunk[2] = {8, 4};
  hid_t space = H5Screate_simple(2, dims, maxdims);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 2, chunk);
  hid_t d = H5Dcreate2(f, "x", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  std::vector<float> v(32, 1.0f);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  hsize_t huge[2] = {hsize_t{1} << 26, 4};
  H5Dset_extent(d, huge);  // 2^26 rows declared, one 128-byte chunk stored
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(f);

  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  f = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  d = H5Dopen2(f, "x", H5P_DEFAULT);
  const HdfFile hf(f, p);
  CHECK(error_of([&] { hf.checked_elements(d, "x"); }) ==
        fmt::format("{}: 'x' declares [67108864, 4] elements of 4 bytes (1073741824 bytes) but the file stores 128 bytes "
                    "for it (truncated or damaged file)",
                    p));
  H5Dclose(d);
  H5Fclose(f);
}

TEST_CASE("probe_hdf5_file turns a crash, a hang or an error in the child into an Error", "[hdf5_checked]") {
  CHECK(error_of([] { probe_hdf5_file("f.h5", [] {}); }) == "<no error>");
  CHECK(error_of([] { probe_hdf5_file("f.h5", [] { fail("f.h5: a message from the child"); }); }) ==
        "f.h5: a message from the child");
  CHECK(error_of([] { probe_hdf5_file("f.h5", [] { ::raise(SIGSEGV); }); }) ==
        "f.h5: damaged file: libhdf5 crashed (signal 11, Segmentation fault) while reading its metadata");
  HdfProbeLimits quick;
  quick.timeout_s = 1;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(error_of([&] { probe_hdf5_file("f.h5", [] { std::this_thread::sleep_for(std::chrono::seconds(30)); }, quick); }) ==
        "f.h5: damaged file: libhdf5 did not finish reading its metadata within 1 s");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}
