#include "util/yaml_bounded.h"

#if !__has_include(<yaml-cpp/depthguard.h>)
#error "yaml-cpp 0.7 or newer is needed: older versions parse nested YAML with unbounded recursion"
#endif
#include <yaml-cpp/depthguard.h>

#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "util/error.h"

namespace semcodec {
namespace {

// Well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF): the offset of the first bad byte, or npos.
size_t invalid_utf8_at(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // range of the second byte
    if (c < 0x80) len = 1;
    else if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char b = p[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return i;
    }
    i += len;
  }
  return std::string::npos;
}

// Iterative, so that the check itself cannot overflow; every use of an alias
// counts again, as a recursive walk would visit it again. Text must be UTF-8,
// as YAML requires: configs end up in JSON (checkpoints, hashes, results).
void check_shape(const YAML::Node& root, const std::string& source) {
  std::vector<std::pair<YAML::Node, int>> stack{{root, 0}};
  int64_t visited = 0;
  while (!stack.empty()) {
    auto [node, depth] = std::move(stack.back());
    stack.pop_back();
    if (++visited > kMaxYamlNodes)
      fail("{}: YAML expands to more than {} values (aliases repeated inside aliases?)", source, kMaxYamlNodes);
    if (depth > kMaxYamlDepth) {
      const YAML::Mark m = node.Mark();
      if (m.is_null()) fail("{}: YAML nested deeper than {} levels", source, kMaxYamlDepth);
      fail("{}: YAML nested deeper than {} levels (line {})", source, kMaxYamlDepth, m.line + 1);
    }
    if (const size_t bad = node.IsScalar() ? invalid_utf8_at(node.Scalar()) : std::string::npos;
        bad != std::string::npos) {
      const YAML::Mark m = node.Mark();
      if (m.is_null()) fail("{}: a value is not UTF-8 text (byte {} of it)", source, bad);
      fail("{}: a value is not UTF-8 text (line {}, byte {} of the value)", source, m.line + 1, bad);
    }
    if (node.IsMap()) {
      for (const auto& kv : node) {
        stack.emplace_back(kv.first, depth + 1);
        stack.emplace_back(kv.second, depth + 1);
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) stack.emplace_back(item, depth + 1);
    }
  }
}

}  // namespace

YAML::Node parse_yaml_bounded(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    fail("{}: YAML nested too deeply for the parser (more than {} levels are refused; line {})", source,
         kMaxYamlDepth, e.mark.line + 1);
  } catch (const YAML::ParserException& e) {
    fail("{}: YAML syntax error at line {}, column {}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg);
  } catch (const YAML::Exception& e) {
    fail("{}: cannot read YAML: {}", source, e.what());
  }
  check_shape(root, source);
  return root;
}

YAML::Node load_yaml_file_bounded(const std::string& path, const char* what) {
  std::error_code ec;
  require(std::filesystem::is_regular_file(path, ec), "{}: {} not found", path, what);
  const auto size = std::filesystem::file_size(path, ec);
  require(!ec, "{}: cannot read {}: {}", path, what, ec.message());
  require(size <= static_cast<uintmax_t>(kMaxYamlBytes), "{}: {} of {} bytes; a YAML file may hold at most {} MiB",
          path, what, size, kMaxYamlBytes >> 20);
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "{}: cannot open {}", path, what);
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  require(in.gcount() == static_cast<std::streamsize>(size), "{}: cannot read {} (short read)", path, what);
  return parse_yaml_bounded(text, path);
}

}  // namespace semcodec
