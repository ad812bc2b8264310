// Fuzz target for safetensors files (data/safetensors.h): the bytes are parsed
// in memory (parse_safetensors) and, from a scratch file, read as a checkpoint
// is (read_safetensors, read_safetensors_metadata). Both readers must agree:
// the same tensors (names, dtypes, shapes, bytes) and metadata, every tensor
// contiguous and no larger than the input, else the target aborts.
//
// Built with -fsanitize=fuzzer (SEMCODEC_LIBFUZZER defined) it is a libFuzzer
// target; without, a replay driver: `fuzz_safetensors FILE_OR_DIR...`.
#include <ATen/ATen.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>

#include "data/safetensors.h"
#include "replay_main.h"
#include "util/error.h"

using namespace semcodec;

namespace {

using semcodec::fuzz::die;

const std::string& scratch_file() {
  static const std::string path = semcodec::fuzz::scratch_path("fuzz_safetensors", ".safetensors");
  return path;
}

int run_one(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bool parsed = false, read = false;
  SafetensorsFile a, b;
  try {
    a = parse_safetensors(bytes, "fuzz.safetensors");
    parsed = true;
  } catch (const Error&) {
  }
  {
    std::ofstream out(scratch_file(), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  try {
    b = read_safetensors(scratch_file());
    read = true;
  } catch (const Error&) {
  }
  if (parsed != read) die("parse_safetensors and read_safetensors disagree on acceptance");
  if (read) {
    std::map<std::string, std::string> md;
    try {
      md = read_safetensors_metadata(scratch_file());
    } catch (const Error&) {
      die("read_safetensors_metadata refused a file read_safetensors accepted");
    }
    if (md != b.metadata || a.metadata != b.metadata) die("the readers disagree on the metadata");
    if (a.tensors.size() != b.tensors.size()) die("the readers disagree on the tensors");
    for (const auto& [name, t] : a.tensors) {
      const auto it = b.tensors.find(name);
      if (it == b.tensors.end()) die("a tensor is missing from one reader");
      const at::Tensor& u = it->second;
      if (!t.is_contiguous() || !u.is_contiguous()) die("a tensor is not contiguous");
      if (t.scalar_type() != u.scalar_type() || t.sizes() != u.sizes()) die("the readers disagree on a tensor");
      const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
      if (nbytes > size) die("a tensor is larger than the input");
      if (nbytes && std::memcmp(t.data_ptr(), u.data_ptr(), nbytes) != 0) die("the readers disagree on a tensor's bytes");
    }
  }
  return read ? 1 : 0;
}

}  // namespace

SEMCODEC_FUZZ_TARGET_WITH_SCRATCH("fuzz_safetensors", run_one, scratch_file)
