#include "train/distributed_sampler.h"

#include <algorithm>

#include "util/error.h"

namespace semcodec {

int64_t steps_per_epoch(int64_t n, int64_t batch) {
  require(n >= 0 && batch >= 1, "steps_per_epoch: n = {}, batch = {}", n, batch);
  return (n + batch - 1) / batch;
}

RankSlice rank_slice(int64_t n, int64_t batch, int64_t step, int64_t rank, int64_t world) {
  require(world >= 1 && rank >= 0 && rank < world, "rank_slice: rank {} of world {}", rank, world);
  require(step >= 0 && step < steps_per_epoch(n, batch), "rank_slice: step {} of {} (n = {}, batch = {})", step,
          steps_per_epoch(n, batch), n, batch);
  RankSlice s;
  const int64_t start = step * batch;
  s.batch = std::min(batch, n - start);
  s.begin = start + rank * s.batch / world;
  s.end = start + (rank + 1) * s.batch / world;
  return s;
}

}  // namespace semcodec
