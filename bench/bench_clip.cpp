// Throughput of the native CLIP encoders with random weights in the real
// shapes of OpenAI's ViT-B/32 and ViT-L/14@336px, next to the FLOPs per
// image / text computed from the shapes (2 per multiply-add), so a figure can
// be read as a fraction of the machine's peak.
// Usage: see kUsage (or run with --help).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "bench_args.h"
#include "data/device.h"
#include "models/clip/clip_config.h"
#include "models/clip/clip_model.h"
#include "clip_bench_model.h"

using namespace semcodec;
using semcodec::bench::image_flops;
using semcodec::bench::random_weights;
using semcodec::bench::transformer_flops;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

double text_flops(const ClipConfig& c, int64_t len) {
  return transformer_flops(c.transformer_layers, len, c.transformer_width) +
         2.0 * static_cast<double>(c.transformer_width * c.embed_dim);
}

}  // namespace

constexpr const char* kUsage =
    "usage: bench_clip [--models b32,l14-336] [--device cpu|cuda] "
    "[--dtype float32|float16|bfloat16] [--batches 8,32] [--iters N] [--text-batch N] "
    "[--threads T]";

int main(int argc, char** argv) {
  if (int rc = check_bench_args(argc, argv, kUsage); rc >= 0) return rc;
  std::string models = "b32,l14-336", device = "cpu", dtype_name = "float32", batches_arg;
  int64_t iters = 3, threads = 0, text_batch = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--models") models = argv[i + 1];
    else if (a == "--device") device = argv[i + 1];
    else if (a == "--dtype") dtype_name = argv[i + 1];
    else if (a == "--batches") batches_arg = argv[i + 1];
    else if (a == "--iters") iters = std::stoll(argv[i + 1]);
    else if (a == "--text-batch") text_batch = std::stoll(argv[i + 1]);
    else if (a == "--threads") threads = std::stoll(argv[i + 1]);
    else {
      fmt::print(stderr, "unknown option {}\n", a);
      return 2;
    }
  }
  const at::ScalarType dtype = dtype_name == "float16"    ? at::kHalf
                               : dtype_name == "bfloat16" ? at::kBFloat16
                                                          : at::kFloat;
  configure_threads(threads, dtype == at::kFloat ? GemmBackend::Blas : GemmBackend::OneDnn);
  const c10::Device dev = resolve_device(device);
  fmt::print("# CLIP encoders: device {}, dtype {}, threads {} (OpenMP {}), {} timed iterations\n", dev.str(),
             dtype_name, threads, at::get_num_threads(), iters);
  fmt::print("| model | batch | GFLOPs/image | images/s | GFLOP/s | text len | GFLOPs/text | texts/s |\n");
  fmt::print("|---|---|---|---|---|---|---|---|\n");
  for (const std::string& m : split(models)) {
    ClipConfig c;
    if (m == "b32") c = ClipConfig::vit_b_32();
    else if (m == "b16") c = ClipConfig::vit_b_16();
    else if (m == "l14") c = ClipConfig::vit_l_14();
    else if (m == "l14-336") c = ClipConfig::vit_l_14_336();
    else {
      fmt::print(stderr, "unknown model {} (b32, b16, l14, l14-336)\n", m);
      return 2;
    }
    ClipModel model(random_weights(c), c.name() + " (random)");
    model.to(dev, dtype);
    std::vector<int64_t> batches;
    for (const std::string& b : split(batches_arg)) batches.push_back(std::stoll(b));
    if (batches.empty()) batches.push_back(dev.is_cpu() ? (c.vision_width > 768 ? 1 : 8) : 64);
    // Text: prompts of 10 tokens ("a photo of a <class>." is 7-12), end token last.
    const int64_t text_len = 10;
    at::Tensor tokens = at::randint(1, 49000, {text_batch, c.context_length}, at::kLong);
    tokens.narrow(1, text_len, c.context_length - text_len).zero_();
    tokens.select(1, text_len - 1).fill_(49407);
    model.encode_text(tokens).sum().item<float>();  // warm-up
    double t0 = now();
    for (int64_t i = 0; i < iters; ++i) model.encode_text(tokens).sum().item<float>();
    const double text_rate = static_cast<double>(iters * text_batch) / (now() - t0);
    for (int64_t batch : batches) {
      // Already on the device: the model's rate, not the host-to-device copy's
      // (bench_extract times the whole pipeline).
      const at::Tensor images = at::randn({batch, 3, c.image_resolution, c.image_resolution}).to(dev, dtype);
      model.encode_image(images).sum().item<float>();  // warm-up (and synchronizes CUDA)
      t0 = now();
      for (int64_t i = 0; i < iters; ++i) model.encode_image(images).sum().item<float>();
      const double rate = static_cast<double>(iters * batch) / (now() - t0);
      fmt::print("| {} | {} | {:.1f} | {:.2f} | {:.0f} | {} | {:.3f} | {:.0f} |\n", c.name(), batch, image_flops(c) / 1e9,
                 rate, rate * image_flops(c) / 1e9, text_len, text_flops(c, text_len) / 1e9, text_rate);
    }
  }
  return 0;
}
