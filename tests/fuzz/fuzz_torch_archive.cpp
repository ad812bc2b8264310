// Fuzz target for the PyTorch archive reader (data/torch_archive.h and
// data/zip_archive.h: pure C++ + fmt + zlib, no LibTorch).
//
// Input: an archive (bytes starting with "PK"), read with CRC checks off so
// that mutated entries reach the pickle VM; anything else is taken as a
// data.pkl and wrapped into a TorchScript-like archive with storages
// data/0..3 (24, 8, 2 and 16 bytes) and code/__torch__.py defining classes
// M and A.
// Every archive that is accepted must keep the reader's promises, else the
// target aborts: each tensor's view lies inside its storage, whose bytes
// match its declaration, and contiguous_bytes() returns nbytes() bytes.
//
// Built with -fsanitize=fuzzer (SEMCODEC_LIBFUZZER defined) it is a libFuzzer
// target; without, a replay driver: `fuzz_torch_archive FILE_OR_DIR...` runs
// every file once and prints how many were accepted.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "data/torch_archive.h"
#include "replay_main.h"
#include "util/error.h"
#include "zip_writer.h"

using namespace semcodec;

namespace {

using semcodec::fuzz::die;

void check_tensor(const TorchTensor& t) {
  if (!t.storage) die("tensor without storage");
  const TorchStorage& s = *t.storage;
  if (s.dtype != t.dtype) die("tensor and storage dtypes differ");
  if (s.bytes.size() != s.numel * element_size(s.dtype)) die("storage bytes do not match its declaration");
  if (t.shape.size() != t.strides.size()) die("rank mismatch");
  const int64_t n = t.numel();
  if (n > 0) {
    int64_t last = t.storage_offset;
    for (size_t d = 0; d < t.shape.size(); ++d) last += (t.shape[d] - 1) * t.strides[d];
    if (t.storage_offset < 0 || last < 0 || static_cast<uint64_t>(last) >= s.numel) die("view outside its storage");
  }
  if (t.nbytes() <= (1u << 22) && t.contiguous_bytes().size() != t.nbytes()) die("contiguous_bytes has the wrong size");
}

TorchArchiveLimits fuzz_limits() {
  TorchArchiveLimits l;
  l.zip.verify_crc = false;
  l.zip.max_inflated_entry_bytes = 64u << 20;
  l.max_pickle_bytes = 4u << 20;
  l.max_code_bytes = 1u << 20;
  l.max_values = 1u << 18;
  l.max_memo = 1u << 16;
  l.max_string_bytes = 1u << 20;
  return l;
}

std::string wrap_pickle(std::string_view pickle) {
  return test::make_zip({{"archive/data.pkl", std::string(pickle)},
                         {"archive/data/0", std::string(24, '\x01')},
                         {"archive/data/1", std::string(8, '\x02')},
                         {"archive/data/2", std::string(2, '\x03')},
                         {"archive/data/3", std::string(16, '\x04')},
                         {"archive/code/__torch__.py", "class M(Module):\n  x : Tensor\nclass A(Module):\n  y : int\n"},
                         {"archive/constants.pkl", std::string("\x80\x02).", 4)},
                         {"archive/version", "3\n"}});
}

// 1 when the input was accepted.
int run_one(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const bool is_zip = size >= 2 && data[0] == 'P' && data[1] == 'K';
  const std::string wrapped = is_zip ? std::string() : wrap_pickle(bytes);
  const TorchArchiveLimits limits = fuzz_limits();
  try {
    const TorchArchive a = parse_torch_archive(is_zip ? bytes : std::string_view(wrapped), "fuzz.pt", limits);
    for (const auto& [name, t] : torch_named_tensors(a.root, a.name, limits)) check_tensor(*t);
    return 1;
  } catch (const Error&) {
    return 0;
  }
}

}  // namespace

SEMCODEC_FUZZ_TARGET("fuzz_torch_archive", run_one)
