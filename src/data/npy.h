// NumPy .npy / .npz reading and .npy writing. These files come from users and
// other tools, so every size in them is checked before it is trusted.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace semcodec {

// One array, always in C order with little-endian elements: big-endian and
// Fortran-ordered inputs are converted on load, so consumers never see them.
struct NpyArray {
  std::string dtype;            // normalized NumPy descr: "<f4", "<i8", "|u1", "|b1", ...
  std::vector<int64_t> shape;   // empty for a 0-d array
  std::vector<char> data;       // numel() * item_size() bytes

  int64_t numel() const;
  int64_t item_size() const;    // bytes per element, from dtype
  char kind() const { return dtype.size() > 1 ? dtype[1] : '?'; }  // 'f', 'i', 'u' or 'b'
};

// Reads a .npy file (format 1.0, 2.0 or 3.0).
NpyArray read_npy(const std::string& path);
// Parses .npy bytes; `name` labels error messages (a path, or "a.npz:key").
NpyArray parse_npy(std::string_view bytes, const std::string& name);

class ByteSource;
class ZipArchive;

// A .npz (a zip of .npy files, stored or deflated, zip64 included), read
// through ZipArchive: the directory is checked as a whole when it is opened
// (members that overlap or repeat are refused) and a member is inflated only
// when it is read, bounded by the file and by deflate's ratio. Keys drop the
// ".npy" suffix, as numpy.load does.
class NpzReader {
 public:
  explicit NpzReader(const std::string& path);
  explicit NpzReader(std::shared_ptr<const ByteSource> source);  // named by source->name()
  const std::vector<std::string>& keys() const { return keys_; }  // in archive order
  NpyArray read(const std::string& key) const;

 private:
  std::string path_;
  std::shared_ptr<const ZipArchive> zip_;
  std::vector<std::string> keys_;
  std::vector<size_t> entry_;  // index into the archive's entries, per key
};

// Every array of a .npz (each member inflated once).
std::map<std::string, NpyArray> read_npz(const std::string& path);

// Converts to a CPU tensor of the matching dtype. Unsigned types wider than a
// byte, which LibTorch lacks, widen to the next signed type (u2->int32,
// u4/u8->int64; a u8 value above INT64_MAX is an error). With
// half_to_float, float16 arrays come back as float32.
at::Tensor npy_to_tensor(const NpyArray& array, bool half_to_float = false, const std::string& name = "array");

// .npy bytes of a CPU tensor (format 1.0, or 2.0 when the header needs it).
std::string encode_npy(const at::Tensor& tensor);
// Writes encode_npy(tensor) atomically.
void write_npy(const std::string& path, const at::Tensor& tensor);

}  // namespace semcodec
