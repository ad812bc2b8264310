// End-to-end throughput of `semcodec extract`: JPEG decode + CLIP preprocessing
// on the decode thread pool, the CLIP image encoder (random weights in the
// real shapes) and the feature-file writes, on generated JPEGs of ImageNet's
// typical size. Next to it, each stage alone (decode + preprocess with a
// trivial encoder; the model on random pixels), so the figure can be read as
// "bounded by decoding" or "bounded by the model", and the model's GFLOPs per
// image (2 per multiply-add, from the shapes) with the GFLOP/s reached.
// Usage: see kUsage (or run with --help).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <jpeglib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_args.h"
#include "data/device.h"
#include "data/extraction.h"
#include "data/image_dataset.h"
#include "models/clip/clip_config.h"
#include "models/clip/clip_model.h"
#include "clip_bench_model.h"
#include "data/test_image_writers.h"

using namespace semcodec;
using semcodec::bench::image_flops;
using semcodec::bench::random_weights;
using semcodec::bench::transformer_flops;
using semcodec::test::encode_jpeg;
namespace fs = std::filesystem;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// A photo-like JPEG (smooth gradients plus texture), quality 90.
std::string photo_jpeg(int width, int height, int seed) {
  std::vector<uint8_t> px(static_cast<size_t>(width) * height * 3);
  uint32_t state = 12345u + static_cast<uint32_t>(seed) * 7919u;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      state = state * 1664525u + 1013904223u;
      uint8_t* p = &px[(static_cast<size_t>(y) * width + x) * 3];
      const int noise = static_cast<int>(state >> 28);
      p[0] = static_cast<uint8_t>((x * 255 / width + seed * 31 + noise) & 255);
      p[1] = static_cast<uint8_t>((y * 255 / height + noise) & 255);
      p[2] = static_cast<uint8_t>(((x ^ y) + seed * 17) & 255);
    }
  return encode_jpeg(width, height, 3, JCS_RGB, px, 90);
}

}  // namespace

constexpr const char* kUsage =
    "usage: bench_extract [--model b32|b16|l14|l14-336] [--images N] [--batch B] "
    "[--decode-threads T] [--device cpu|cuda] [--dtype float32|float16|bfloat16] [--size 500x375] "
    "[--workdir DIR]";

int main(int argc, char** argv) {
  if (int rc = check_bench_args(argc, argv, kUsage); rc >= 0) return rc;
  std::string model_name = "b32", device_name = "cpu", dtype_name = "float32", size = "500x375", workdir;
  int64_t images = 0, batch = 0;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model") model_name = argv[i + 1];
    else if (a == "--images") images = std::stoll(argv[i + 1]);
    else if (a == "--batch") batch = std::stoll(argv[i + 1]);
    else if (a == "--decode-threads") threads = std::stoi(argv[i + 1]);
    else if (a == "--device") device_name = argv[i + 1];
    else if (a == "--dtype") dtype_name = argv[i + 1];
    else if (a == "--size") size = argv[i + 1];
    else if (a == "--workdir") workdir = argv[i + 1];
    else {
      fmt::print(stderr, "unknown option {}\n", a);
      return 2;
    }
  }
  ClipConfig config;
  if (model_name == "b32") config = ClipConfig::vit_b_32();
  else if (model_name == "b16") config = ClipConfig::vit_b_16();
  else if (model_name == "l14") config = ClipConfig::vit_l_14();
  else if (model_name == "l14-336") config = ClipConfig::vit_l_14_336();
  else {
    fmt::print(stderr, "unknown model {} (b32, b16, l14, l14-336)\n", model_name);
    return 2;
  }
  const at::ScalarType dtype = dtype_name == "float16" ? at::kHalf : dtype_name == "bfloat16" ? at::kBFloat16 : at::kFloat;
  configure_threads(0, dtype == at::kFloat ? GemmBackend::Blas : GemmBackend::OneDnn);
  const c10::Device device = resolve_device(device_name);
  if (device.is_cpu() && dtype == at::kHalf) {
    fmt::print(stderr, "--dtype float16 needs --device cuda (the CPU runs float32 or bfloat16)\n");
    return 2;
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 0) threads = device.is_cuda() ? std::min(cores, 32) : 1;
  if (batch <= 0) batch = device.is_cuda() ? 256 : 8;
  if (images <= 0) images = device.is_cuda() ? 4096 : 4 * batch;
  const int width = std::stoi(size.substr(0, size.find('x'))), height = std::stoi(size.substr(size.find('x') + 1));

  // Generated JPEGs in an ImageFolder tree (10 classes); a few distinct files
  // are written and repeated as records, which decodes the same bytes again.
  const fs::path dir = workdir.empty() ? fs::temp_directory_path() / fmt::format("semcodec-bench-extract-{}", ::getpid())
                                       : fs::path(workdir);
  fs::create_directories(dir);
  ImageDataset dataset;
  dataset.name = "bench";
  for (int c = 0; c < 10; ++c) dataset.class_names.push_back(fmt::format("class{}", c));
  const int64_t distinct = std::min<int64_t>(images, 64);
  for (int64_t i = 0; i < distinct; ++i) {
    std::ofstream(dir / fmt::format("img{}.jpg", i), std::ios::binary) << photo_jpeg(width, height, static_cast<int>(i));
  }
  for (int64_t i = 0; i < images; ++i)
    dataset.records.push_back({(dir / fmt::format("img{}.jpg", i % distinct)).string(), i % 10, fmt::format("r{}", i)});

  ClipModel model(random_weights(config), config.name() + " (random)");
  model.to(device, dtype);
  const double gflops = image_flops(config) / 1e9;
  fmt::print("# extract: {} (random weights), device {}, dtype {}, batch {}, decode threads {}, OpenMP threads {} (BLAS: every core), "
             "{} JPEGs of {}x{}\n",
             config.name(), device.str(), dtype_name, batch, threads, at::get_num_threads(), images, width, height);

  ExtractionOptions x;
  x.preprocess.resolution = model.image_resolution();
  x.embed_dim = model.embed_dim();
  x.batch_size = batch;
  x.decode_threads = threads;
  x.pin_memory = device.is_cuda();
  x.resume = false;
  x.progress = false;
  const std::string out = (dir / "bench.h5").string();

  // Stage 1: decode + preprocess + writes alone (an encoder that does nothing).
  const int64_t d = model.embed_dim();
  const ImageEncoder trivial = [d](const at::Tensor& b) { return at::ones({b.size(0), d}); };
  const ExtractionSummary s1 = extract_features(dataset, out, trivial, x);
  // Stage 2: the model alone, on random pixels (after a warm-up batch).
  const at::Tensor pixels = at::randn({batch, 3, model.image_resolution(), model.image_resolution()}).to(device, dtype);
  model.encode_image(pixels).sum().item<float>();
  const int64_t iters = std::max<int64_t>(1, std::min<int64_t>(images / batch, device.is_cuda() ? 20 : 3));
  double t0 = now();
  for (int64_t i = 0; i < iters; ++i) model.encode_image(pixels).sum().item<float>();
  const double model_rate = static_cast<double>(iters * batch) / (now() - t0);
  // Stage 3: the whole pipeline.
  const ImageEncoder encoder = [&model](const at::Tensor& b) { return model.encode_image(b.to(model.device(), model.dtype(), /*non_blocking=*/true)); };
  const ExtractionSummary s3 = extract_features(dataset, out, encoder, x);

  fmt::print("| model | device | dtype | batch | decode threads | GFLOPs/image | decode+preprocess img/s | model img/s | "
             "extract img/s | extract GFLOP/s |\n|---|---|---|---|---|---|---|---|---|---|\n");
  fmt::print("| {} | {} | {} | {} | {} | {:.1f} | {:.1f} | {:.2f} | {:.2f} | {:.0f} |\n", config.name(), device.str(),
             dtype_name, batch, threads, gflops, s1.images_per_second, model_rate, s3.images_per_second,
             s3.images_per_second * gflops);
  if (workdir.empty()) fs::remove_all(dir);
  return 0;
}
