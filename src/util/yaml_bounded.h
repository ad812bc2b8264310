// YAML from files a user may have been sent (run configs, sweeps, dataset
// configs, class lists): the text is size-limited, yaml-cpp's own recursion
// guard is required at build time, and the parsed tree is checked for depth
// and for alias expansion, and its text for UTF-8, before any recursive walk
// (binding, merging, hashing, printing) or JSON conversion sees it.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>

namespace semcodec {

// Nesting semcodec's own YAML never comes near (sweeps are 5 levels deep).
constexpr int kMaxYamlDepth = 64;
// Values a document may expand to, counting every use of an alias: far above
// any class list, far below what a billion-laughs document expands to.
constexpr int64_t kMaxYamlNodes = 1 << 20;
constexpr int64_t kMaxYamlBytes = 64 << 20;

// Parses `text`; syntax errors, nesting deeper than kMaxYamlDepth, more than
// kMaxYamlNodes expanded values and text that is not UTF-8 are Errors starting
// with `source`.
YAML::Node parse_yaml_bounded(const std::string& text, const std::string& source);
// Reads and parses the file at `path`; `what` names it in errors ("config file",
// "class list"): missing, unreadable, larger than kMaxYamlBytes.
YAML::Node load_yaml_file_bounded(const std::string& path, const char* what);

}  // namespace semcodec
