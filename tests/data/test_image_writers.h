// Writes small JPEG and PNG files with libjpeg / libpng for the image tests,
// so every layout the decoder handles (gray, palette, alpha, 16-bit, CMYK,
// interlaced, progressive) is produced by the reference encoders themselves.
#pragma once
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

namespace semcodec::test {

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// `pixels` holds height rows of width * components samples.
inline std::string encode_jpeg(int width, int height, int components, J_COLOR_SPACE in_space,
                               const std::vector<uint8_t>& pixels, int quality = 95,
                               J_COLOR_SPACE file_space = JCS_UNKNOWN, bool progressive = false) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = width;
  c.image_height = height;
  c.input_components = components;
  c.in_color_space = in_space;
  jpeg_set_defaults(&c);
  if (file_space != JCS_UNKNOWN) jpeg_set_colorspace(&c, file_space);  // CMYK/YCCK also write the Adobe marker
  jpeg_set_quality(&c, quality, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels.data()) + static_cast<size_t>(c.next_scanline) * width * components;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  std::free(buf);
  return out;
}

inline void png_append(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}
inline void png_no_flush(png_structp) {}

// `rows` holds height rows of packed PNG samples (16-bit samples big-endian).
inline std::string encode_png(int width, int height, int color_type, int bit_depth, const std::vector<uint8_t>& rows,
                              const std::vector<png_color>& palette = {}, const std::vector<uint8_t>& trns = {},
                              bool interlaced = false) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng write failed");
  }
  png_set_write_fn(png, &out, png_append, png_no_flush);
  png_set_IHDR(png, info, width, height, bit_depth, color_type,
               interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty())
    png_set_PLTE(png, info, const_cast<png_color*>(palette.data()), static_cast<int>(palette.size()));
  if (!trns.empty()) {
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
      png_set_tRNS(png, info, const_cast<uint8_t*>(trns.data()), static_cast<int>(trns.size()), nullptr);
    } else {
      png_color_16 c{};
      c.gray = trns[0];
      png_set_tRNS(png, info, nullptr, 0, &c);
    }
  }
  png_write_info(png, info);
  const size_t stride = rows.size() / height;
  std::vector<png_bytep> ptrs(height);
  for (int y = 0; y < height; ++y) ptrs[y] = const_cast<uint8_t*>(rows.data()) + y * stride;
  png_write_image(png, ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// A smooth RGB test pattern.
inline std::vector<uint8_t> rgb_pattern(int width, int height, int seed = 0) {
  std::vector<uint8_t> px(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &px[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>((x * 255) / std::max(1, width - 1));
      p[1] = static_cast<uint8_t>((y * 255) / std::max(1, height - 1));
      p[2] = static_cast<uint8_t>((x + y + seed * 37) * 5);
    }
  return px;
}

}  // namespace semcodec::test
