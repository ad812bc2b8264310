// Fuzz target for checkpoints (models/checkpoint.h, models/method_registry.h):
// the bytes are a .safetensors checkpoint as `eval`, `compress` and `train
// --resume` read it. Its metadata (config, split, dataset, state: JSON inside
// the safetensors header) and tensors are untrusted: refusal must be an Error
// (never another exception, a crash or an allocation beyond what the file
// holds). An accepted checkpoint's quantizer must encode one row to indices
// inside its alphabets and decode them to one row of its dimension.
//
// Built with -fsanitize=fuzzer (SEMCODEC_LIBFUZZER defined) it is a libFuzzer
// target; without, a replay driver: `fuzz_checkpoint FILE_OR_DIR...`.
#include <ATen/ATen.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "replay_main.h"
#include "util/error.h"

using namespace semcodec;

namespace {

using semcodec::fuzz::die;

const std::string& scratch_file() {
  static const std::string path = semcodec::fuzz::scratch_path("fuzz_checkpoint", ".safetensors");
  return path;
}

int run_one(const uint8_t* data, size_t size) {
  {
    std::ofstream out(scratch_file(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::shared_ptr<Quantizer> q;
  try {
    const Checkpoint ckpt = load_checkpoint(scratch_file());
    q = load_quantizer(ckpt, scratch_file(), "cpu");
  } catch (const Error&) {
    return 0;
  }
  const int64_t d = q->embed_dim();
  at::Tensor x = at::ones({1, d}, at::kFloat) / std::sqrt(static_cast<double>(d));
  at::Tensor idx, y;
  try {
    idx = q->encode(x);
    y = q->decode(idx);
  } catch (const Error&) {
    return 0;
  }
  if (idx.dim() != 2 || idx.size(0) != 1 || idx.size(1) != q->slots()) die("encode gave indices of the wrong shape");
  for (int64_t s = 0; s < q->slots(); ++s) {
    const int64_t v = idx[0][s].item<int64_t>();
    if (v < 0 || v >= q->alphabet_size(s)) die("encode gave an index outside its alphabet");
  }
  if (y.dim() != 2 || y.size(0) != 1 || y.size(1) != d) die("decode gave a row of the wrong shape");
  return 1;
}

}  // namespace

SEMCODEC_FUZZ_TARGET_WITH_SCRATCH("fuzz_checkpoint", run_one, scratch_file)
