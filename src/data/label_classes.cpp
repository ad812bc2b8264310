#include "data/label_classes.h"

#include <algorithm>

#include "util/error.h"

namespace semcodec {

int64_t classes_from_labels(int64_t max_label, int64_t rows, const std::string& source, const std::string& hint) {
  const int64_t limit = std::min<int64_t>(kMaxClasses, std::max<int64_t>(1024, 16 * std::min<int64_t>(std::max<int64_t>(rows, 0), kMaxClasses)));
  if (max_label >= limit)
    fail("{}: label {} is too large: without a class list the classes come from the labels, and {} rows may make at "
         "most {} (max(1024, 16 x rows), never more than {}){}",
         source, max_label, rows, limit, kMaxClasses, hint.empty() ? "" : "; " + hint);
  return max_label + 1;
}

std::vector<std::string> default_class_names(int64_t count) {
  require(count >= 0 && count <= kMaxClasses, "{} classes: at most {} are allowed", count, kMaxClasses);
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) out.push_back("class_" + std::to_string(i));
  return out;
}

}  // namespace semcodec
