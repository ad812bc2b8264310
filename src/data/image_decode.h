// JPEG (libjpeg-turbo) and PNG (libpng) decoding into the pixel layouts PIL
// uses. OpenAI's CLIP preprocessing resizes an image in the mode PIL opened it
// in and converts to RGB only afterwards, so the decoder keeps that mode
// (grayscale, palette, alpha, CMYK, 16-bit gray) instead of converting early;
// to_rgb() is PIL's Image.convert("RGB"). Files are untrusted: every failure
// is a semcodec::Error naming the file and the problem, and dimensions are
// checked against DecodeLimits before any pixel buffer is allocated.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace semcodec {

// PIL's image modes, as PIL assigns them when opening a JPEG or PNG.
enum class PixelMode {
  Bilevel,  // "1": 1-bit grayscale PNG, stored as 0 / 255
  L,        // 8-bit grayscale (also 2- and 4-bit PNG gray, scaled to 8 bits)
  LA,       // gray + alpha (16-bit PNG gray+alpha keeps the high bytes)
  P,        // palette indices + a 256-entry RGB palette (tRNS is ignored, as convert("RGB") does)
  RGB,      // 8-bit RGB (16-bit PNG keeps the high bytes, as PIL's "RGB;16B")
  RGBA,     // RGB + alpha, not premultiplied
  CMYK,     // 4-channel JPEG (CMYK or YCCK), stored inverted as PIL's "CMYK;I" (Adobe convention)
  I,        // 32-bit signed integers: 16-bit grayscale PNG keeps its full range
};

const char* mode_name(PixelMode mode);  // PIL's name: "1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I"
int mode_channels(PixelMode mode);      // interleaved bytes per pixel of an 8-bit mode; 1 for I

struct Image {
  PixelMode mode = PixelMode::RGB;
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;   // 8-bit modes: height * width * mode_channels(mode), row-major, interleaved
  std::vector<int32_t> values;   // mode I: height * width
  std::vector<uint8_t> palette;  // mode P: 256 * 3 bytes (RGB); entries the file lacks are black

  int channels() const { return mode_channels(mode); }
  int64_t num_pixels() const { return width * height; }
};

struct DecodeLimits {
  // PIL's Image.MAX_IMAGE_PIXELS (a decompression-bomb guard): larger images
  // are rejected from their header, before anything is allocated.
  int64_t max_pixels = 89478485;
  int64_t max_file_bytes = int64_t{1} << 30;
  // Progressive JPEGs with absurd scan counts take quadratic time (libjpeg-turbo's djpeg -maxscans).
  int max_jpeg_scans = 1000;
};

enum class ImageFormat { Unknown, Jpeg, Png };

// Detects the format from the leading bytes (never from the file name).
ImageFormat sniff_image_format(std::string_view bytes);

// Decodes JPEG or PNG bytes; `name` (a path) labels error messages.
Image decode_image(std::string_view bytes, const std::string& name, const DecodeLimits& limits = {});
// Reads and decodes a file.
Image read_image(const std::string& path, const DecodeLimits& limits = {});

// PIL's Image.convert("RGB"): gray replicated, alpha dropped (no compositing),
// palette looked up, CMYK -> RGB with PIL's rounding, I clipped to [0, 255].
Image to_rgb(const Image& image);

}  // namespace semcodec
