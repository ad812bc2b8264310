// Fuzz target for the image decoder (data/image_decode.h: libjpeg-turbo and
// libpng into PIL's modes). An image that is decoded must have a buffer of
// exactly width x height x channels (values for mode I, a 768-byte palette for
// mode P), stay within the pixel limit, and convert to RGB with
// width x height x 3 bytes, else the target aborts.
//
// Built with -fsanitize=fuzzer (SEMCODEC_LIBFUZZER defined) it is a libFuzzer
// target; without, a replay driver: `fuzz_image FILE_OR_DIR...`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "data/image_decode.h"
#include "replay_main.h"
#include "util/error.h"

using namespace semcodec;

namespace {

using semcodec::fuzz::die;

int run_one(const uint8_t* data, size_t size) {
  DecodeLimits limits;
  limits.max_pixels = 1 << 22;  // keeps each input's work small; the checks are the same
  limits.max_jpeg_scans = 100;
  try {
    const Image img = decode_image(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.img", limits);
    if (img.width <= 0 || img.height <= 0 || img.num_pixels() > limits.max_pixels) die("bad dimensions");
    const size_t n = static_cast<size_t>(img.num_pixels());
    if (img.mode == PixelMode::I) {
      if (img.values.size() != n || !img.pixels.empty()) die("mode I buffer has the wrong size");
    } else if (img.pixels.size() != n * static_cast<size_t>(img.channels())) {
      die("pixel buffer has the wrong size");
    }
    if ((img.mode == PixelMode::P) != (img.palette.size() == 768)) die("palette has the wrong size");
    const Image rgb = to_rgb(img);
    if (rgb.mode != PixelMode::RGB || rgb.width != img.width || rgb.height != img.height || rgb.pixels.size() != n * 3)
      die("to_rgb has the wrong size");
    return 1;
  } catch (const Error&) {
    return 0;
  }
}

}  // namespace

SEMCODEC_FUZZ_TARGET("fuzz_image", run_one)
