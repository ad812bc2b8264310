// Fuzz target for NumPy files (data/npy.h): an input starting with "PK" is a
// .npz, read through NpzReader (every member, one at a time), anything else a
// .npy for parse_npy. Every array that is accepted must hold exactly
// numel x item_size bytes and convert to a tensor of that many elements, else
// the target aborts.
//
// Built with -fsanitize=fuzzer (SEMCODEC_LIBFUZZER defined) it is a libFuzzer
// target; without, a replay driver: `fuzz_npy FILE_OR_DIR...`.
#include <ATen/ATen.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "data/npy.h"
#include "data/zip_archive.h"
#include "replay_main.h"
#include "util/error.h"

using namespace semcodec;

namespace {

using semcodec::fuzz::die;

void check_array(const NpyArray& a, const std::string& name) {
  if (static_cast<int64_t>(a.data.size()) != a.numel() * a.item_size()) die("array bytes do not match its shape");
  const at::Tensor t = npy_to_tensor(a, /*half_to_float=*/true, name);
  if (t.numel() != a.numel()) die("tensor size differs from the array's");
  if (a.dtype.size() != 3 || (a.dtype[0] != '<' && a.dtype[0] != '|')) die("array dtype is not normalized");
}

int run_one(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
      const NpzReader npz(memory_source(bytes, "fuzz.npz"));
      for (const auto& key : npz.keys()) check_array(npz.read(key), "fuzz.npz:" + key);
    } else {
      check_array(parse_npy(bytes, "fuzz.npy"), "fuzz.npy");
    }
    return 1;
  } catch (const Error&) {
    return 0;
  }
}

}  // namespace

SEMCODEC_FUZZ_TARGET("fuzz_npy", run_one)
