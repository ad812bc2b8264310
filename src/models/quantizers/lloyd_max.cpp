#include "models/quantizers/lloyd_max.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace semcodec {

std::vector<double> lloyd_max_thresholds(const std::vector<double>& levels) {
  std::vector<double> t;
  for (size_t j = 0; j + 1 < levels.size(); ++j) t.push_back(0.5 * (levels[j] + levels[j + 1]));
  return t;
}

std::vector<double> lloyd_max_levels(std::vector<double> v, int64_t levels, const LloydMaxOptions& opt) {
  require(!v.empty(), "Lloyd-Max: no values to fit");
  require(levels >= 1 && levels <= (int64_t{1} << 20), "Lloyd-Max: {} levels outside [1, 2^20]", levels);
  require(opt.lo <= opt.hi, "Lloyd-Max: empty range [{}, {}]", opt.lo, opt.hi);
  for (double& x : v) {
    require(std::isfinite(x), "Lloyd-Max: non-finite value");
    x = std::clamp(x, opt.lo, opt.hi);
  }
  std::sort(v.begin(), v.end());
  const int64_t n = static_cast<int64_t>(v.size());
  std::vector<double> prefix(v.size() + 1, 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + v[i];
  auto mean_of = [&](int64_t s, int64_t e) { return (prefix[e] - prefix[s]) / static_cast<double>(e - s); };

  std::vector<double> level(static_cast<size_t>(levels));
  for (int64_t j = 0; j < levels; ++j) {
    int64_t s = j * n / levels, e = (j + 1) * n / levels;
    if (e <= s) e = std::min(n, s + 1), s = e - 1;  // fewer values than levels: repeat values
    level[j] = mean_of(s, e);
  }
  for (int64_t it = 0; it < opt.iterations; ++it) {
    const std::vector<double> t = lloyd_max_thresholds(level);
    double moved = 0;
    int64_t start = 0;
    for (int64_t j = 0; j < levels; ++j) {
      const int64_t end = j + 1 < levels ? std::upper_bound(v.begin(), v.end(), t[j]) - v.begin() : n;
      if (end > start) {
        const double m = mean_of(start, end);
        moved = std::max(moved, std::abs(m - level[j]));
        level[j] = m;
      }
      start = std::max(start, end);
    }
    // Means of consecutive cells are ordered, but rounding may swap equal ones.
    std::sort(level.begin(), level.end());
    if (moved <= opt.tolerance) break;
  }
  return level;
}

}  // namespace semcodec
