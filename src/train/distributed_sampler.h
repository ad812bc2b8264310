// Data-parallel sharding of one epoch. Every rank draws the same seeded
// permutation; global step s covers perm[s*B, s*B + b) (b = B except for a
// short last batch), and rank r of W takes the contiguous slice
// [s*B + floor(r*b/W), s*B + floor((r+1)*b/W)) of it. The slices of a step
// partition its batch, so W ranks see exactly the rows one rank would at
// batch B; each rank scales its mean loss by its share (rows / b) before the
// gradients are summed, which makes the update equal to one rank's.
#pragma once
#include <cstdint>

namespace semcodec {

struct RankSlice {
  int64_t begin = 0, end = 0;  // positions in the epoch's permutation
  int64_t batch = 0;           // rows of the whole global step (b)
  int64_t rows() const { return end - begin; }
  double share() const { return batch > 0 ? static_cast<double>(rows()) / static_cast<double>(batch) : 0.0; }
};

// Global batches of an epoch of n rows at batch B (the last one may be short).
int64_t steps_per_epoch(int64_t n, int64_t batch);
// The slice of `step` for `rank` of `world`; errors on out-of-range arguments.
RankSlice rank_slice(int64_t n, int64_t batch, int64_t step, int64_t rank, int64_t world);

}  // namespace semcodec
