#include "data/image_decode.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>

// jpeglib.h needs FILE and size_t declared first.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "util/error.h"

// libjpeg and libpng report fatal errors through callbacks that must not
// return. They longjmp back into the decode function that called setjmp; the
// frames skipped are the libraries' C frames only, so no C++ destructor is
// bypassed, and every object touched after the jump lives in memory (its
// address was handed to the library), not in a register.

namespace semcodec {

const char* mode_name(PixelMode mode) {
  switch (mode) {
    case PixelMode::Bilevel: return "1";
    case PixelMode::L: return "L";
    case PixelMode::LA: return "LA";
    case PixelMode::P: return "P";
    case PixelMode::RGB: return "RGB";
    case PixelMode::RGBA: return "RGBA";
    case PixelMode::CMYK: return "CMYK";
    case PixelMode::I: return "I";
  }
  return "?";
}

int mode_channels(PixelMode mode) {
  switch (mode) {
    case PixelMode::LA: return 2;
    case PixelMode::RGB: return 3;
    case PixelMode::RGBA:
    case PixelMode::CMYK: return 4;
    default: return 1;
  }
}

ImageFormat sniff_image_format(std::string_view b) {
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (b.size() >= 3 && static_cast<unsigned char>(b[0]) == 0xFF && static_cast<unsigned char>(b[1]) == 0xD8 &&
      static_cast<unsigned char>(b[2]) == 0xFF)
    return ImageFormat::Jpeg;
  if (b.size() >= 8 && std::memcmp(b.data(), png_sig, 8) == 0) return ImageFormat::Png;
  return ImageFormat::Unknown;
}

namespace {

void check_dimensions(int64_t width, int64_t height, const DecodeLimits& limits, const std::string& name) {
  if (width <= 0 || height <= 0) fail("{}: image has invalid dimensions {}x{}", name, width, height);
  // Both factors are below 2^32 here, so the product cannot overflow int64.
  if (width * height > limits.max_pixels)
    fail("{}: image is {}x{} = {} pixels, above the limit of {} (a decompression bomb?)", name, width, height,
         width * height, limits.max_pixels);
}

// ------------------------------------------------------------------- JPEG

struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
  bool truncated;
};

struct JpegScanLimit {
  jpeg_progress_mgr pub;
  int max_scans;
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_on_message(j_common_ptr cinfo, int level) {
  // level -1 is a warning. A truncated file is one (libjpeg pads it with an
  // EOI and gray blocks); PIL refuses such files, and so do we. Other
  // warnings (extraneous bytes, ...) are tolerated as PIL tolerates them.
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<JpegErrors*>(cinfo->err)->truncated = true;
}

void jpeg_on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  auto* limit = reinterpret_cast<JpegScanLimit*>(cinfo->progress);
  if (d->input_scan_number > limit->max_scans) {
    auto* err = reinterpret_cast<JpegErrors*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than %d progressive scans", limit->max_scans);
    std::longjmp(err->jump, 1);
  }
}

Image decode_jpeg(std::string_view bytes, const std::string& name, const DecodeLimits& limits) {
  Image img;
  jpeg_decompress_struct cinfo;
  JpegErrors err;
  JpegScanLimit scan_limit;
  std::memset(&cinfo, 0, sizeof cinfo);
  err.message[0] = '\0';
  err.truncated = false;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_on_error;
  err.pub.emit_message = jpeg_on_message;
  scan_limit.pub.progress_monitor = jpeg_on_progress;
  scan_limit.max_scans = limits.max_jpeg_scans;
  // Failures that are ours (limits) are recorded here and raised after cleanup.
  std::string problem;

  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    fail("{}: corrupt JPEG: {}", name, err.message);
  }
  jpeg_create_decompress(&cinfo);
  cinfo.progress = &scan_limit.pub;
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (err.truncated) {
    problem = "truncated JPEG (premature end of file in the header)";
  } else if (static_cast<int64_t>(cinfo.image_width) * cinfo.image_height > limits.max_pixels ||
             cinfo.image_width == 0 || cinfo.image_height == 0) {
    problem = "dims";
  } else {
    // PIL's mode follows the number of components: 1 -> L, 3 -> RGB, 4 -> CMYK.
    switch (cinfo.num_components) {
      case 1: cinfo.out_color_space = JCS_GRAYSCALE; img.mode = PixelMode::L; break;
      case 3: cinfo.out_color_space = JCS_RGB; img.mode = PixelMode::RGB; break;
      case 4: cinfo.out_color_space = JCS_CMYK; img.mode = PixelMode::CMYK; break;  // YCCK becomes CMYK too
      default: problem = fmt::format("unsupported JPEG with {} components", cinfo.num_components);
    }
  }
  if (problem.empty()) {
    // libjpeg's defaults, which PIL keeps: integer slow DCT, fancy upsampling.
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    const int channels = mode_channels(img.mode);
    if (cinfo.output_components != channels) {
      problem = fmt::format("libjpeg produced {} components for a {} image", cinfo.output_components,
                            mode_name(img.mode));
    } else {
      img.width = cinfo.output_width;
      img.height = cinfo.output_height;
      img.pixels.resize(static_cast<size_t>(img.width * img.height * channels));
      const size_t stride = static_cast<size_t>(img.width) * channels;
      while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = img.pixels.data() + cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
      }
      if (err.truncated) problem = "truncated JPEG (premature end of file)";
      else jpeg_finish_decompress(&cinfo);
    }
  }
  const int64_t w = cinfo.image_width, h = cinfo.image_height;
  jpeg_destroy_decompress(&cinfo);
  if (problem == "dims") check_dimensions(w, h, limits, name);
  if (!problem.empty()) fail("{}: {}", name, problem);
  if (img.mode == PixelMode::CMYK) {
    // PIL opens every CMYK JPEG with raw mode "CMYK;I": Adobe's inverted convention.
    for (auto& v : img.pixels) v = static_cast<uint8_t>(255 - v);
  }
  return img;
}

// -------------------------------------------------------------------- PNG

struct PngSource {
  const unsigned char* data;
  size_t size, pos;
};

struct PngErrors {
  char message[256];
};

void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "truncated PNG (unexpected end of file)");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

[[noreturn]] void png_on_error(png_structp png, png_const_charp msg) {
  auto* err = static_cast<PngErrors*>(png_get_error_ptr(png));
  std::snprintf(err->message, sizeof err->message, "%s", msg ? msg : "unknown libpng error");
  std::longjmp(png_jmpbuf(png), 1);
}

void png_on_warning(png_structp, png_const_charp) {}

Image decode_png(std::string_view bytes, const std::string& name, const DecodeLimits& limits) {
  Image img;
  PngErrors err;
  err.message[0] = '\0';
  PngSource src{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0};
  std::vector<png_bytep> rows;
  std::vector<uint8_t> raw;  // 16-bit gray samples before widening to int32
  std::string problem;
  png_uint_32 width = 0, height = 0;

  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error, png_on_warning);
  if (!png) fail("{}: cannot create a PNG reader", name);
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    fail("{}: cannot create a PNG reader", name);
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    fail("{}: corrupt PNG: {}", name, err.message);
  }
  png_set_read_fn(png, &src, png_read_bytes);
  png_read_info(png, info);
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  if (static_cast<int64_t>(width) * height > limits.max_pixels || width == 0 || height == 0) {
    problem = "dims";
  } else {
    bool gray16 = false;
    switch (color_type) {
      case PNG_COLOR_TYPE_GRAY:
        if (bit_depth == 16) {
          img.mode = PixelMode::I;
          gray16 = true;
        } else {
          img.mode = bit_depth == 1 ? PixelMode::Bilevel : PixelMode::L;
          if (bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);  // v * 255 / (2^bits - 1), as PIL's L;2 / L;4
        }
        break;
      case PNG_COLOR_TYPE_GRAY_ALPHA: img.mode = PixelMode::LA; break;
      case PNG_COLOR_TYPE_PALETTE:
        img.mode = PixelMode::P;
        if (bit_depth < 8) png_set_packing(png);
        break;
      case PNG_COLOR_TYPE_RGB: img.mode = PixelMode::RGB; break;
      case PNG_COLOR_TYPE_RGB_ALPHA: img.mode = PixelMode::RGBA; break;
      default: problem = fmt::format("unsupported PNG color type {}", color_type);
    }
    if (problem.empty()) {
      // PIL's ";16B" raw modes keep the most significant byte: strip, not scale.
      if (bit_depth == 16 && !gray16) png_set_strip_16(png);
      png_set_interlace_handling(png);
      png_read_update_info(png, info);
      const size_t bytes_per_pixel = gray16 ? 2 : static_cast<size_t>(mode_channels(img.mode));
      const size_t stride = static_cast<size_t>(width) * bytes_per_pixel;
      if (png_get_rowbytes(png, info) != stride) {
        problem = fmt::format("unexpected PNG row size {} (expected {})", png_get_rowbytes(png, info), stride);
      } else {
        std::vector<uint8_t>& buf = gray16 ? raw : img.pixels;
        buf.resize(stride * height);
        rows.resize(height);
        for (png_uint_32 y = 0; y < height; ++y) rows[y] = buf.data() + y * stride;
        if (img.mode == PixelMode::P) {
          img.palette.assign(256 * 3, 0);
          png_colorp plte = nullptr;
          int n = 0;
          if (png_get_PLTE(png, info, &plte, &n) && plte) {
            for (int i = 0; i < n && i < 256; ++i) {
              img.palette[3 * i] = plte[i].red;
              img.palette[3 * i + 1] = plte[i].green;
              img.palette[3 * i + 2] = plte[i].blue;
            }
          }
        }
        // Reads every pass of an interlaced image; errors (truncated or corrupt
        // IDAT, bad CRC) longjmp. Chunks after the image data are not needed.
        png_read_image(png, rows.data());
      }
    }
  }
  png_destroy_read_struct(&png, &info, nullptr);
  if (problem == "dims") check_dimensions(width, height, limits, name);
  if (!problem.empty()) fail("{}: {}", name, problem);
  img.width = width;
  img.height = height;
  if (img.mode == PixelMode::I) {
    img.values.resize(static_cast<size_t>(img.width * img.height));
    for (size_t i = 0; i < img.values.size(); ++i) img.values[i] = (raw[2 * i] << 8) | raw[2 * i + 1];
  }
  return img;
}

}  // namespace

Image decode_image(std::string_view bytes, const std::string& name, const DecodeLimits& limits) {
  if (bytes.empty()) fail("{}: empty file (0 bytes)", name);
  switch (sniff_image_format(bytes)) {
    case ImageFormat::Jpeg: return decode_jpeg(bytes, name, limits);
    case ImageFormat::Png: return decode_png(bytes, name, limits);
    default: break;
  }
  fail("{}: not a JPEG or PNG file (unsupported or unknown image format)", name);
}

Image read_image(const std::string& path, const DecodeLimits& limits) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail("{}: cannot open image file", path);
  const std::streamoff size = in.tellg();
  if (size < 0) fail("{}: cannot determine the file size", path);
  if (size > limits.max_file_bytes)
    fail("{}: file is {} bytes, above the limit of {} bytes", path, static_cast<int64_t>(size), limits.max_file_bytes);
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (size > 0 && !in.read(bytes.data(), size)) fail("{}: cannot read image file", path);
  return decode_image(bytes, path, limits);
}

Image to_rgb(const Image& im) {
  Image out;
  out.mode = PixelMode::RGB;
  out.width = im.width;
  out.height = im.height;
  const size_t n = static_cast<size_t>(im.width * im.height);
  out.pixels.resize(3 * n);
  uint8_t* o = out.pixels.data();
  const uint8_t* p = im.pixels.data();
  auto gray = [&](int stride) {
    for (size_t i = 0; i < n; ++i) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = p[stride * i];
  };
  switch (im.mode) {
    case PixelMode::RGB: out.pixels = im.pixels; break;
    case PixelMode::Bilevel:
      for (size_t i = 0; i < n; ++i) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = p[i] ? 255 : 0;
      break;
    case PixelMode::L: gray(1); break;
    case PixelMode::LA: gray(2); break;
    case PixelMode::RGBA:
      for (size_t i = 0; i < n; ++i) std::memcpy(o + 3 * i, p + 4 * i, 3);
      break;
    case PixelMode::P:
      for (size_t i = 0; i < n; ++i) std::memcpy(o + 3 * i, im.palette.data() + 3 * p[i], 3);
      break;
    case PixelMode::CMYK:
      // PIL's cmyk2rgb: channel = nk - nk * c / 255 (rounded), nk = 255 - k.
      for (size_t i = 0; i < n; ++i) {
        const int nk = 255 - p[4 * i + 3];
        for (int c = 0; c < 3; ++c) {
          const int t = p[4 * i + c] * nk + 128;
          const int v = nk - (((t >> 8) + t) >> 8);
          o[3 * i + c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
        }
      }
      break;
    case PixelMode::I:
      for (size_t i = 0; i < n; ++i) {
        const int32_t v = im.values[i];
        o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = static_cast<uint8_t>(v <= 0 ? 0 : v >= 255 ? 255 : v);
      }
      break;
  }
  return out;
}

}  // namespace semcodec
