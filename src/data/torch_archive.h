// Reading PyTorch files without executing anything: the zip archives that
// torch.save writes (PyTorch >= 1.6) and TorchScript archives (torch.jit.save,
// OpenAI's CLIP .pt files). Pure C++17 + fmt + zlib; no LibTorch
// (data/torch_archive_tensor.h turns the tensors into at::Tensor).
//
// A file is a zip (data/zip_archive.h) holding <prefix>/data.pkl, a pickle
// (protocol 2) of the saved object, and one raw little-endian storage per
// <prefix>/data/<key>. TorchScript archives add <prefix>/code/ (the classes'
// source) and constants.pkl, which are never run or needed here.
//
// The pickle is evaluated by a small VM that calls nothing. GLOBAL may name
// only:
//   - torch._utils._rebuild_tensor_v2, _rebuild_parameter and
//     _rebuild_parameter_with_state (only without hooks or extra state):
//     applied to the data by this reader, not called;
//   - torch.{Double,Float,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage
//     (as the type inside a storage's persistent id);
//   - collections.OrderedDict (an ordered dict);
//   - torch.jit._pickle.build_{int,double,bool,tensor}list and
//     restore_type_tag (TorchScript's typed lists and dicts: the value as is);
//   - in TorchScript archives only, __torch__.* classes, read as plain
//     attribute dicts when the file of code/ that defines the class does not
//     mention __setstate__ (torch::jit::load would run that method on the
//     data; OpenAI's and ordinary scripted or traced modules never define it)
//     and the object's state is a dict with string keys.
// Any other global (os.system, builtins.eval, ...) is refused at once with an
// error naming it and the file. Persistent ids ('storage', <Storage type>,
// key, location, numel) map to data/<key>; any location tag ("cpu",
// "cuda:0", ...) is accepted and only recorded. Big-endian archives
// (a byteorder record saying "big") are refused.
//
// Bounded for any input: nesting depth, values, memo entries, string bytes,
// pickle size, code-file size and zip limits all have limits
// (TorchArchiveLimits); storages are sized from their zip entries, which are
// checked against the file before anything is allocated; every tensor view is
// checked against its storage. Every error is a semcodec::Error naming the
// file and the problem.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/zip_archive.h"

namespace semcodec {

enum class TorchDtype : uint8_t { Float64, Float32, Float16, BFloat16, Int64, Int32, Int16, Int8, UInt8, Bool };
const char* to_string(TorchDtype dtype);  // "float32", "bfloat16", ...
size_t element_size(TorchDtype dtype);

struct TorchStorage {
  std::string key;       // the archive's data/<key>
  std::string location;  // as tagged in the file: "cpu", "cuda:0", ...
  TorchDtype dtype = TorchDtype::Float32;
  uint64_t numel = 0;
  std::vector<uint8_t> bytes;  // numel * element_size(dtype) bytes, little-endian
};

struct TorchTensor {
  TorchDtype dtype = TorchDtype::Float32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements, like PyTorch's
  int64_t storage_offset = 0;    // in elements
  bool requires_grad = false;
  // Checked: holds every element the view addresses. Shared by tensors that
  // view the same storage in the file.
  std::shared_ptr<const TorchStorage> storage;

  int64_t numel() const;
  uint64_t nbytes() const { return static_cast<uint64_t>(numel()) * element_size(dtype); }
  bool is_contiguous() const;
  // The elements in C order (a copy; strided views are gathered).
  std::vector<uint8_t> contiguous_bytes() const;
};
using TorchTensorPtr = std::shared_ptr<const TorchTensor>;

struct TorchDictEntry;

// The unpickled object: a tree (shared containers in the pickle are copied,
// tensors are shared). Dict keys are strings or integers.
struct TorchValue {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Tensor, Object };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;                     // String; Object: the class ("__torch__.CLIP")
  std::vector<TorchValue> items;        // Tuple, List
  std::vector<TorchDictEntry> entries;  // Dict (insertion order); Object: its attributes
  TorchTensorPtr tensor;                // Tensor

  // A Dict's or Object's value under a string key; nullptr when absent or
  // when this is neither.
  const TorchValue* find(std::string_view key) const;
};
const char* to_string(TorchValue::Kind kind);

struct TorchDictEntry {
  TorchValue key;
  TorchValue value;
};

struct TorchArchiveLimits {
  ZipLimits zip;
  uint64_t max_pickle_bytes = 256ull << 20;  // data.pkl
  uint64_t max_code_bytes = 16ull << 20;     // one code/ file read to check a class
  uint32_t max_depth = 100;                  // nesting of containers / objects, and open MARKs
  uint64_t max_values = 1ull << 21;          // pickle VM objects, and values in the result tree
  uint64_t max_memo = 1ull << 21;            // memo entries
  uint64_t max_string_bytes = 64ull << 20;   // one string
  uint32_t max_rank = 64;
  // All tensors together may address at most this many times the bytes of
  // their storages (plus 1 MiB), so that views cannot turn a small file into
  // a huge one once materialized.
  uint64_t max_view_amplification = 8;
};

enum class TorchArchiveKind { TorchSave, TorchScript };

struct TorchArchive {
  std::string name;  // the path (or the name given to parse_torch_archive)
  TorchArchiveKind kind = TorchArchiveKind::TorchSave;
  std::string prefix;  // the archive's top folder (for data.pkl, data/, code/)
  TorchValue root;     // data.pkl
};

// Reads a file (storages are read straight into their buffers; the file is
// never held in memory as a whole).
TorchArchive read_torch_archive(const std::string& path, const TorchArchiveLimits& limits = {});
// The same for bytes in memory; `name` labels errors.
TorchArchive parse_torch_archive(std::string_view bytes, const std::string& name, const TorchArchiveLimits& limits = {});

// Only the zip directory and the layout (which folder, byte order, whether
// code/ makes it TorchScript): no pickle is read. For telling formats apart.
TorchArchiveKind probe_torch_archive(const std::string& path, const TorchArchiveLimits& limits = {});

// The tensors of a value by name: nested dicts and objects joined with '.',
// list and tuple elements by index ("0", "1", ...), integer keys in decimal;
// a root tensor is named "". Values that are not tensors (None, numbers,
// strings) are skipped. For a state dict this is the usual name -> tensor
// map; for a TorchScript module, its parameters, buffers and other tensor
// attributes under their module paths (what named_parameters/named_buffers
// give). Two tensors with one name, or views adding up to more than the
// limits allow, are errors naming `name`.
std::map<std::string, TorchTensorPtr> torch_named_tensors(const TorchValue& value, const std::string& name,
                                                          const TorchArchiveLimits& limits = {});

}  // namespace semcodec
