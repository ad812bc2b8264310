// OpenAI CLIP's image transform, reproduced to the pixel:
//   Resize(R, BICUBIC) of the shortest side -> CenterCrop(R) -> convert("RGB")
//   -> ToTensor (/255) -> Normalize(CLIP mean, CLIP std)
// with torchvision 0.14 on PIL images, i.e. Pillow's antialiased resampling
// (a support-scaled filter, 8-bit fixed-point coefficients, horizontal pass
// then vertical pass), done in the mode the image was decoded in: RGBA and LA
// are resized premultiplied, palette and 1-bit images with nearest neighbour.
// docs/preprocessing.md describes the details.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image_decode.h"

namespace semcodec {

enum class ResampleFilter { Nearest, Bilinear, Bicubic };

ResampleFilter parse_resample_filter(const std::string& name);  // "bicubic" | "bilinear" | "nearest"
const char* resample_filter_name(ResampleFilter filter);

struct ClipPreprocessConfig {
  int64_t resolution = 224;
  // OpenAI's transform uses bicubic; the paper's extraction used torchvision's
  // default, bilinear (antialiased on PIL images).
  ResampleFilter filter = ResampleFilter::Bicubic;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

// The `preprocessing` attribute of a feature file, e.g. "resize224-bicubic-centercrop-clipnorm".
std::string preprocessing_name(const ClipPreprocessConfig& config);

// Pillow's Image.resize(size, filter) for this image's mode, with the whole
// image as the source box. Nearest is forced for "1" and "P" images, as
// Pillow does. Only the output window [x0, x0 + out_w) x [y0, y0 + out_h) of
// a full_w x full_h result is computed: every output pixel depends only on
// its own position, so the window equals cropping the full resize.
Image resize_image(const Image& image, int64_t full_w, int64_t full_h, ResampleFilter filter);
Image resize_crop_image(const Image& image, int64_t full_w, int64_t full_h, int64_t x0, int64_t y0, int64_t out_w,
                        int64_t out_h, ResampleFilter filter);

// torchvision's Resize(R) size rule: the shorter side becomes R, the other
// int(R * long / short). Returns {width, height}.
std::array<int64_t, 2> shortest_side_size(int64_t width, int64_t height, int64_t resolution);

// Resize + center crop + convert("RGB"): the uint8 RGB image ToTensor sees.
Image clip_resize_crop_rgb(const Image& image, const ClipPreprocessConfig& config);

// ToTensor + Normalize of an RGB image into `out` ([3, H, W] float32, planar).
void normalize_rgb_into(const Image& rgb, const ClipPreprocessConfig& config, float* out);

// The whole transform: [3, R, R] float32.
at::Tensor clip_preprocess(const Image& image, const ClipPreprocessConfig& config);
// Stacked: [B, 3, R, R] float32.
at::Tensor clip_preprocess_batch(const std::vector<Image>& images, const ClipPreprocessConfig& config);

}  // namespace semcodec
