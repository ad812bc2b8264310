#include "data/clip_preprocess.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "util/error.h"

// Bit-exact parity with Pillow needs the compiler to evaluate the filter and
// coefficient arithmetic exactly as written: no fused multiply-adds.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace semcodec {

ResampleFilter parse_resample_filter(const std::string& name) {
  if (name == "bicubic") return ResampleFilter::Bicubic;
  if (name == "bilinear") return ResampleFilter::Bilinear;
  if (name == "nearest") return ResampleFilter::Nearest;
  fail("unknown interpolation '{}' (expected bicubic, bilinear or nearest)", name);
}

const char* resample_filter_name(ResampleFilter filter) {
  switch (filter) {
    case ResampleFilter::Nearest: return "nearest";
    case ResampleFilter::Bilinear: return "bilinear";
    case ResampleFilter::Bicubic: return "bicubic";
  }
  return "?";
}

std::string preprocessing_name(const ClipPreprocessConfig& c) {
  return fmt::format("resize{}-{}-centercrop-clipnorm", c.resolution, resample_filter_name(c.filter));
}

namespace {

// Pillow's filters (Resample.c): the triangle and the Keys cubic with a = -0.5.
double bilinear_kernel(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic_kernel(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Pillow keeps 8-bit coefficients in 32-bit integers with 22 fractional bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

// The taps of each output sample in [first, first + count) of an axis
// resampled from in_size to out_size (Pillow's precompute_coeffs).
struct AxisCoeffs {
  int ksize = 0;
  std::vector<int> start, taps;  // per output sample: first input index, number of taps
  std::vector<double> weights;   // [count, ksize], normalized to sum 1
  std::vector<int32_t> fixed;    // the same in fixed point (8-bit modes)
};

AxisCoeffs axis_coeffs(int64_t in_size, int64_t out_size, int64_t first, int64_t count, ResampleFilter filter) {
  double (*kernel)(double) = filter == ResampleFilter::Bicubic ? bicubic_kernel : bilinear_kernel;
  const double kernel_support = filter == ResampleFilter::Bicubic ? 2.0 : 1.0;
  // Pillow passes the source box as floats; (in1 - in0) is exact for any real image size.
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / static_cast<double>(out_size);
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kernel_support * filterscale;
  AxisCoeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.start.resize(count);
  c.taps.resize(count);
  c.weights.assign(static_cast<size_t>(count * c.ksize), 0.0);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t xx = first + i;
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = static_cast<int>(in_size);
    xmax -= xmin;
    double* k = &c.weights[static_cast<size_t>(i * c.ksize)];
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = kernel((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) k[x] /= ww;
    c.start[i] = xmin;
    c.taps[i] = xmax;
  }
  c.fixed.resize(c.weights.size());
  for (size_t i = 0; i < c.weights.size(); ++i) {
    const double v = c.weights[i];
    c.fixed[i] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                       : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  // Pillow's lookup table indexes by v >> 22 (an arithmetic shift) and saturates.
  const int32_t s = v >> kPrecisionBits;
  return static_cast<uint8_t>(s < 0 ? 0 : s > 255 ? 255 : s);
}

// One 8-bit pass along x: out row r = input row (row0 + r) resampled.
// CH is a template parameter so the per-channel accumulators stay in registers.
template <int CH>
void horizontal_u8_ch(const uint8_t* in, int64_t in_w, int64_t row0, int64_t rows, const AxisCoeffs& c, uint8_t* out) {
  const int64_t out_w = static_cast<int64_t>(c.start.size());
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = in + (row0 + r) * in_w * CH;
    uint8_t* dst = out + r * out_w * CH;
    for (int64_t xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &c.fixed[static_cast<size_t>(xx * c.ksize)];
      const uint8_t* s = src + static_cast<int64_t>(c.start[xx]) * CH;
      const int taps = c.taps[xx];
      int32_t acc[CH];
      for (int b = 0; b < CH; ++b) acc[b] = 1 << (kPrecisionBits - 1);
      for (int x = 0; x < taps; ++x)
        for (int b = 0; b < CH; ++b) acc[b] += s[x * CH + b] * k[x];
      for (int b = 0; b < CH; ++b) dst[xx * CH + b] = clip8(acc[b]);
    }
  }
}

void horizontal_u8(const uint8_t* in, int64_t in_w, int ch, int64_t row0, int64_t rows, const AxisCoeffs& c,
                   uint8_t* out) {
  switch (ch) {
    case 1: return horizontal_u8_ch<1>(in, in_w, row0, rows, c, out);
    case 2: return horizontal_u8_ch<2>(in, in_w, row0, rows, c, out);
    case 3: return horizontal_u8_ch<3>(in, in_w, row0, rows, c, out);
    default: return horizontal_u8_ch<4>(in, in_w, row0, rows, c, out);
  }
}

// One 8-bit pass along y; coefficient starts are relative to row0 of `in`.
void vertical_u8(const uint8_t* in, int64_t w, int ch, int64_t row0, const AxisCoeffs& c, uint8_t* out) {
  const int64_t out_h = static_cast<int64_t>(c.start.size());
  const int64_t stride = w * ch;
  std::vector<int32_t> acc(static_cast<size_t>(stride));
  for (int64_t yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.fixed[static_cast<size_t>(yy * c.ksize)];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    const int64_t y0 = c.start[yy] - row0;
    for (int y = 0; y < c.taps[yy]; ++y) {
      const uint8_t* src = in + (y0 + y) * stride;
      const int32_t ky = k[y];
      for (int64_t i = 0; i < stride; ++i) acc[i] += src[i] * ky;
    }
    uint8_t* dst = out + yy * stride;
    for (int64_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
  }
}

inline int32_t round_up(double f) {
  // Pillow's ROUND_UP for 32-bit images: round half away from zero, then truncate.
  return static_cast<int32_t>(f >= 0.0 ? f + 0.5f : f - 0.5f);
}

void horizontal_i32(const int32_t* in, int64_t in_w, int64_t row0, int64_t rows, const AxisCoeffs& c, int32_t* out) {
  const int64_t out_w = static_cast<int64_t>(c.start.size());
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* src = in + (row0 + r) * in_w;
    for (int64_t xx = 0; xx < out_w; ++xx) {
      const double* k = &c.weights[static_cast<size_t>(xx * c.ksize)];
      double ss = 0.0;
      for (int x = 0; x < c.taps[xx]; ++x) ss += src[c.start[xx] + x] * k[x];
      out[r * out_w + xx] = round_up(ss);
    }
  }
}

void vertical_i32(const int32_t* in, int64_t w, int64_t row0, const AxisCoeffs& c, int32_t* out) {
  const int64_t out_h = static_cast<int64_t>(c.start.size());
  for (int64_t yy = 0; yy < out_h; ++yy) {
    const double* k = &c.weights[static_cast<size_t>(yy * c.ksize)];
    for (int64_t xx = 0; xx < w; ++xx) {
      double ss = 0.0;
      for (int y = 0; y < c.taps[yy]; ++y) ss += in[(c.start[yy] - row0 + y) * w + xx] * k[y];
      out[yy * w + xx] = round_up(ss);
    }
  }
}

// Pillow's nearest-neighbour scale (ImagingScaleAffine): source positions
// accumulate the step from the centre of the first output pixel.
std::vector<int64_t> nearest_positions(int64_t in_size, int64_t out_size) {
  const float in1 = static_cast<float>(in_size);
  const double step = static_cast<double>(in1) / static_cast<double>(out_size);
  std::vector<int64_t> pos(static_cast<size_t>(out_size));
  double o = 0.0 + step * 0.5;
  for (int64_t i = 0; i < out_size; ++i) {
    int64_t p = o < 0.0 ? -1 : static_cast<int64_t>(o);
    pos[i] = std::min<int64_t>(std::max<int64_t>(p, 0), in_size - 1);
    o += step;
  }
  return pos;
}

// Pillow's RGBA -> RGBa / LA -> La: colour times alpha / 255, rounded.
std::vector<uint8_t> premultiply(const Image& im) {
  const int ch = im.channels();
  std::vector<uint8_t> out(im.pixels);
  const size_t n = static_cast<size_t>(im.num_pixels());
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = &out[i * ch];
    const unsigned alpha = p[ch - 1];
    for (int b = 0; b < ch - 1; ++b) {
      const unsigned t = p[b] * alpha + 128;
      p[b] = static_cast<uint8_t>(((t >> 8) + t) >> 8);
    }
  }
  return out;
}

// RGBa -> RGBA / La -> LA: colour * 255 / alpha, truncated and clipped;
// alpha 0 and 255 leave the colour as it is.
void unpremultiply(Image& im) {
  const int ch = im.channels();
  const size_t n = static_cast<size_t>(im.num_pixels());
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = &im.pixels[i * ch];
    const unsigned alpha = p[ch - 1];
    if (alpha == 0 || alpha == 255) continue;
    for (int b = 0; b < ch - 1; ++b) {
      const unsigned v = (255u * p[b]) / alpha;
      p[b] = static_cast<uint8_t>(v > 255 ? 255 : v);
    }
  }
}

void check_window(const Image& im, int64_t full_w, int64_t full_h, int64_t x0, int64_t y0, int64_t w, int64_t h) {
  require(im.width > 0 && im.height > 0, "resize: empty {}x{} image", im.width, im.height);
  require(full_w > 0 && full_h > 0 && full_w <= (int64_t{1} << 30) && full_h <= (int64_t{1} << 30),
          "resize: invalid output size {}x{}", full_w, full_h);
  require(x0 >= 0 && y0 >= 0 && w > 0 && h > 0 && x0 + w <= full_w && y0 + h <= full_h,
          "resize: window {}x{}+{}+{} outside the {}x{} output", w, h, x0, y0, full_w, full_h);
  require(w * h <= (int64_t{1} << 31), "resize: output window {}x{} is too large", w, h);
}

}  // namespace

Image resize_crop_image(const Image& im, int64_t full_w, int64_t full_h, int64_t x0, int64_t y0, int64_t out_w,
                        int64_t out_h, ResampleFilter filter) {
  check_window(im, full_w, full_h, x0, y0, out_w, out_h);
  const bool is_int = im.mode == PixelMode::I;
  const int ch = im.channels();
  Image out;
  out.mode = im.mode;
  out.width = out_w;
  out.height = out_h;
  out.palette = im.palette;

  if (im.mode == PixelMode::P || im.mode == PixelMode::Bilevel) filter = ResampleFilter::Nearest;
  const bool same_size = full_w == im.width && full_h == im.height;
  if (filter == ResampleFilter::Nearest || same_size) {
    std::vector<int64_t> xs(static_cast<size_t>(full_w)), ys(static_cast<size_t>(full_h));
    if (same_size) {
      for (int64_t i = 0; i < full_w; ++i) xs[i] = i;
      for (int64_t i = 0; i < full_h; ++i) ys[i] = i;
    } else {
      xs = nearest_positions(im.width, full_w);
      ys = nearest_positions(im.height, full_h);
    }
    if (is_int) out.values.resize(static_cast<size_t>(out_w * out_h));
    else out.pixels.resize(static_cast<size_t>(out_w * out_h * ch));
    for (int64_t y = 0; y < out_h; ++y) {
      const int64_t sy = ys[y0 + y];
      for (int64_t x = 0; x < out_w; ++x) {
        const int64_t sx = xs[x0 + x];
        if (is_int) out.values[y * out_w + x] = im.values[sy * im.width + sx];
        else std::memcpy(&out.pixels[(y * out_w + x) * ch], &im.pixels[(sy * im.width + sx) * ch], ch);
      }
    }
    return out;
  }

  // Pillow resizes LA and RGBA premultiplied (converting to La / RGBa and back).
  const bool alpha = im.mode == PixelMode::LA || im.mode == PixelMode::RGBA;
  std::vector<uint8_t> premult;
  const uint8_t* src = im.pixels.data();
  if (alpha) {
    premult = premultiply(im);
    src = premult.data();
  }

  const bool need_h = full_w != im.width, need_v = full_h != im.height;
  AxisCoeffs cx, cy;
  if (need_h) cx = axis_coeffs(im.width, full_w, x0, out_w, filter);
  if (need_v) cy = axis_coeffs(im.height, full_h, y0, out_h, filter);
  // Input rows the vertical pass reads (Pillow's ybox_first / ybox_last).
  int64_t row_first = y0, row_last = y0 + out_h;
  if (need_v) {
    row_first = cy.start.front();
    row_last = cy.start.back() + cy.taps.back();
    for (size_t i = 0; i < cy.start.size(); ++i) {
      row_first = std::min<int64_t>(row_first, cy.start[i]);
      row_last = std::max<int64_t>(row_last, cy.start[i] + cy.taps[i]);
    }
  }
  const int64_t rows = row_last - row_first;

  if (is_int) {
    std::vector<int32_t> tmp(static_cast<size_t>(rows * out_w));
    if (need_h) {
      horizontal_i32(im.values.data(), im.width, row_first, rows, cx, tmp.data());
    } else {
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(&tmp[r * out_w], &im.values[(row_first + r) * im.width + x0], out_w * sizeof(int32_t));
    }
    if (need_v) {
      out.values.resize(static_cast<size_t>(out_w * out_h));
      vertical_i32(tmp.data(), out_w, row_first, cy, out.values.data());
    } else {
      out.values = std::move(tmp);
    }
    return out;
  }

  std::vector<uint8_t> tmp(static_cast<size_t>(rows * out_w * ch));
  if (need_h) {
    horizontal_u8(src, im.width, ch, row_first, rows, cx, tmp.data());
  } else {
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(&tmp[r * out_w * ch], src + ((row_first + r) * im.width + x0) * ch, out_w * ch);
  }
  if (need_v) {
    out.pixels.resize(static_cast<size_t>(out_w * out_h * ch));
    vertical_u8(tmp.data(), out_w, ch, row_first, cy, out.pixels.data());
  } else {
    out.pixels = std::move(tmp);
  }
  if (alpha) unpremultiply(out);
  return out;
}

Image resize_image(const Image& image, int64_t full_w, int64_t full_h, ResampleFilter filter) {
  return resize_crop_image(image, full_w, full_h, 0, 0, full_w, full_h, filter);
}

std::array<int64_t, 2> shortest_side_size(int64_t w, int64_t h, int64_t r) {
  require(w > 0 && h > 0 && r > 0, "resize: invalid sizes {}x{} -> {}", w, h, r);
  const int64_t short_side = std::min(w, h), long_side = std::max(w, h);
  // Python's int(r * long / short): true division of exact integers, then truncation.
  const int64_t new_long =
      static_cast<int64_t>(static_cast<double>(r * long_side) / static_cast<double>(short_side));
  return w <= h ? std::array<int64_t, 2>{r, new_long} : std::array<int64_t, 2>{new_long, r};
}

Image clip_resize_crop_rgb(const Image& image, const ClipPreprocessConfig& config) {
  const int64_t r = config.resolution;
  require(r > 0 && r <= 4096, "preprocessing: resolution must be in [1, 4096], got {}", r);
  auto [w, h] = shortest_side_size(image.width, image.height, r);
  // torchvision's CenterCrop: int(round((size - R) / 2.0)), Python rounding (half to even).
  const int64_t top = static_cast<int64_t>(std::nearbyint(static_cast<double>(h - r) / 2.0));
  const int64_t left = static_cast<int64_t>(std::nearbyint(static_cast<double>(w - r) / 2.0));
  return to_rgb(resize_crop_image(image, w, h, left, top, r, r, config.filter));
}

void normalize_rgb_into(const Image& rgb, const ClipPreprocessConfig& config, float* out) {
  require(rgb.mode == PixelMode::RGB, "normalize: expected an RGB image, got {}", mode_name(rgb.mode));
  const int64_t n = rgb.width * rgb.height;
  for (int c = 0; c < 3; ++c) {
    const float mean = config.mean[c], std = config.std[c];
    float* o = out + c * n;
    // ToTensor's float division by 255, then Normalize's (x - mean) / std, all in float32.
    for (int64_t i = 0; i < n; ++i) o[i] = (static_cast<float>(rgb.pixels[3 * i + c]) / 255.0f - mean) / std;
  }
}

at::Tensor clip_preprocess(const Image& image, const ClipPreprocessConfig& config) {
  Image rgb = clip_resize_crop_rgb(image, config);
  at::Tensor out = at::empty({3, rgb.height, rgb.width}, at::kFloat);
  normalize_rgb_into(rgb, config, out.data_ptr<float>());
  return out;
}

at::Tensor clip_preprocess_batch(const std::vector<Image>& images, const ClipPreprocessConfig& config) {
  const int64_t r = config.resolution;
  at::Tensor out = at::empty({static_cast<int64_t>(images.size()), 3, r, r}, at::kFloat);
  for (size_t i = 0; i < images.size(); ++i)
    normalize_rgb_into(clip_resize_crop_rgb(images[i], config), config, out[static_cast<int64_t>(i)].data_ptr<float>());
  return out;
}

}  // namespace semcodec
