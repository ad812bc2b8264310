// Class lists implied by integer labels, when no class list names them
// (import without --class-names, an image list without --classes): bounded,
// so that one damaged or foreign label cannot ask for a class per index up to
// it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace semcodec {

// The most classes any input may declare (ImageNet-21k has 21,841).
constexpr int64_t kMaxClasses = int64_t{1} << 20;

// max_label + 1, checked to stay below kMaxClasses and below
// max(1024, 16 x rows) (more would be mostly empty classes: labels that are
// not class indices, or a damaged file). Throws naming `source`; `hint` says
// how to give the class list instead.
int64_t classes_from_labels(int64_t max_label, int64_t rows, const std::string& source, const std::string& hint);

// "class_0" ... "class_<count-1>" (count at most kMaxClasses).
std::vector<std::string> default_class_names(int64_t count);

}  // namespace semcodec
