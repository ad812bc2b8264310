// Lets fmt print tensor shapes ("[64, 768]") in error messages.
#pragma once
#include <c10/util/ArrayRef.h>
#include <fmt/format.h>

template <>
struct fmt::formatter<c10::ArrayRef<int64_t>> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(c10::ArrayRef<int64_t> a, Ctx& ctx) const {
    std::string s = "[";
    for (size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + std::to_string(a[i]);
    s += "]";
    return fmt::formatter<std::string_view>::format(s, ctx);
  }
};
