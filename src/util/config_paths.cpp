#include "util/config_paths.h"

#include <filesystem>

namespace semcodec {

namespace fs = std::filesystem;

namespace {

// `p` relative to the working directory when below it, else absolute.
std::string display_form(const fs::path& absolute) {
  const fs::path normal = absolute.lexically_normal();
  const fs::path rel = normal.lexically_relative(fs::current_path());
  if (rel.empty() || *rel.begin() == "..") return normal.string();
  return rel == "." ? std::string() : rel.string();
}

}  // namespace

std::string config_project_dir(const std::string& config_file) {
  const fs::path file = fs::absolute(config_file).lexically_normal();
  for (fs::path dir = file.parent_path(); dir.has_relative_path(); dir = dir.parent_path())
    if (dir.filename() == "configs") return display_form(dir.parent_path());
  return display_form(file.parent_path());
}

std::string resolve_config_path(const std::string& project_dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || project_dir.empty()) return path;
  return display_form(fs::absolute(fs::path(project_dir) / path));
}

std::string anchor_to_working_dir(const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return fs::absolute(path).lexically_normal().string();
}

}  // namespace semcodec
