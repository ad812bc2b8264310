// semcodec reports every failure as an exception that carries its context
// (which file, which key, what was expected); main() catches it once.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace semcodec {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
void require(bool ok, fmt::format_string<Args...> f, Args&&... args) {
  if (!ok) throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace semcodec
