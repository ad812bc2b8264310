// Where a relative path written in a config or sweep file points, whatever
// the working directory (docs/config.md, "Paths").
//
// A config file's *project directory* is the folder that holds the nearest
// `configs/` folder above the file (configs/x.yaml and configs/sweeps/y.yaml of
// one clone share the clone's root); a file outside any `configs/` folder is
// its own project directory's only member (its folder). Relative paths in the
// file resolve against it, so `runs/lodo/train.h5` in configs/lodo.yaml means
// <clone>/runs/lodo/train.h5 from any working directory. Paths typed on the
// command line (`--set`, `--features`, `-o`) keep their usual meaning,
// relative to the working directory.
#pragma once
#include <string>

namespace semcodec {

// The project directory of a config file (see above), as a path relative to
// the working directory when it lies below it ("" = the working directory
// itself), else absolute.
std::string config_project_dir(const std::string& config_file);

// `path` resolved against `project_dir` ("" = the working directory): absolute
// and empty paths are returned unchanged.
std::string resolve_config_path(const std::string& project_dir, const std::string& path);

// `path` (relative to the working directory) made absolute: for command-line
// paths that a config's project directory must not re-anchor.
std::string anchor_to_working_dir(const std::string& path);

}  // namespace semcodec
