// Exact nearest-codeword search by squared Euclidean distance, tiled so that
// memory stays bounded for any codebook size (K = 65536 included).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace semcodec {

// x [M, d], codebook [K, d] (same device and dtype) -> int64 [M] indices of
// the nearest codeword. Distances are computed in float32 whatever the input
// dtype. `max_tile_bytes` bounds the [rows, K] distance tile.
at::Tensor nearest_codeword(const at::Tensor& x, const at::Tensor& codebook, int64_t max_tile_bytes = 64 << 20);

}  // namespace semcodec
