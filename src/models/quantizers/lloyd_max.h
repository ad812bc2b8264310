// Lloyd-Max scalar quantizer design (Lloyd 1957/1982, Max 1960) on an
// empirical distribution: levels that minimize the mean squared error of
// rounding each value to its nearest level. Exact on the sample: values are
// sorted once and every iteration recomputes each cell's mean from prefix
// sums, so an iteration costs O(L log N).
#pragma once
#include <cstdint>
#include <vector>

namespace semcodec {

struct LloydMaxOptions {
  int64_t iterations = 100;  // upper bound; stops once no level moves by more than `tolerance`
  double tolerance = 1e-10;
  double lo = -0.5, hi = 0.5;  // values are clamped into [lo, hi], so the levels lie inside it
};

// `levels` ascending levels for `values` (any order, at least one value).
// Initialized at the means of L equal-count groups of the sorted values; a
// cell that becomes empty keeps its level.
std::vector<double> lloyd_max_levels(std::vector<double> values, int64_t levels, const LloydMaxOptions& options = {});

// Decision thresholds: midpoints between neighbouring levels (L - 1 of them).
// A value v belongs to the first level whose threshold is >= v.
std::vector<double> lloyd_max_thresholds(const std::vector<double>& levels);

}  // namespace semcodec
