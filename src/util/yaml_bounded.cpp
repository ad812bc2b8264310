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

// Iterative, so that the check itself cannot overflow; every use of an alias
// counts again, as a recursive walk would visit it again.
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
