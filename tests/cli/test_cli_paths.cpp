// Relative paths in configs and sweep files resolve against the file's
// project directory (the folder holding its configs/ folder), so a run, a
// sweep and its finished cells are the same from any working directory;
// command-line paths stay relative to the working directory
// (docs/config.md, "Paths").
#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include "cli_runner.h"
#include "models/run_config.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/config_paths.h"

using namespace semcodec;
using semcodec::test::Run;
using semcodec::test::TempDir;
namespace fs = std::filesystem;

namespace {

// The binary run from `cwd` (a shell `cd`), output and exit code.
Run run_in(const std::string& cwd, const std::string& args) {
  const std::string cmd = "cd '" + cwd + "' && " + std::string(SEMCODEC_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return Run{WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// "" is the working directory (config_project_dir's spelling of it).
bool same_file(const std::string& a, const std::string& b) {
  const auto full = [](const std::string& p) { return fs::weakly_canonical(fs::absolute(p.empty() ? "." : p)); };
  return full(a) == full(b);
}

// Restores the working directory when it goes out of scope.
struct WorkingDir {
  fs::path saved = fs::current_path();
  explicit WorkingDir(const std::string& dir) { fs::current_path(dir); }
  ~WorkingDir() { fs::current_path(saved); }
};

}  // namespace

TEST_CASE("config paths: the project directory is the folder above configs/, else the file's folder", "[paths]") {
  TempDir d("paths-rule");
  fs::create_directories(d.file("clone/configs/sweeps"));
  fs::create_directories(d.file("other"));
  for (const std::string cwd : {d.path(), d.file("clone/configs/sweeps"), d.file("other")}) {
    WorkingDir here(cwd);
    INFO("working directory " << cwd);
    CHECK(same_file(config_project_dir(d.file("clone/configs/a.yaml")), d.file("clone")));
    CHECK(same_file(config_project_dir(d.file("clone/configs/sweeps/b.yaml")), d.file("clone")));
    CHECK(same_file(config_project_dir(d.file("other/c.yaml")), d.file("other")));
    const std::string project = config_project_dir(d.file("clone/configs/sweeps/b.yaml"));
    CHECK(same_file(resolve_config_path(project, "runs/x.h5"), d.file("clone/runs/x.h5")));
    CHECK(resolve_config_path(project, "/abs/x.h5") == "/abs/x.h5");
    CHECK(resolve_config_path(project, "").empty());
  }
  {
    // From the clone's root the project directory is "" and paths read as written.
    WorkingDir here(d.file("clone"));
    CHECK(config_project_dir("configs/sweeps/b.yaml").empty());
    CHECK(resolve_config_path("", "runs/x.h5") == "runs/x.h5");
  }
  // Command-line path overrides are made absolute only when the project directory is elsewhere.
  const std::vector<std::string> sets{"data.features=a.h5", "train.lr=0.5", "output.dir=out", "data.features=/x.h5"};
  CHECK(anchor_path_overrides(sets, "") == sets);
  const auto anchored = anchor_path_overrides(sets, "elsewhere");
  CHECK(anchored[0] == "data.features=" + (fs::current_path() / "a.h5").string());
  CHECK(anchored[1] == "train.lr=0.5");
  CHECK(anchored[2] == "output.dir=" + (fs::current_path() / "out").string());
  CHECK(anchored[3] == "data.features=/x.h5");
}

TEST_CASE("train and sweep read a clone's config the same from any working directory", "[cli][paths]") {
  TempDir d("cli-paths");
  const std::string clone = d.file("clone");
  fs::create_directories(clone + "/configs/sweeps");
  fs::create_directories(clone + "/data");
  fs::create_directories(d.file("elsewhere"));
  test::small_feature_file(d, "clone/data/small.h5");
  test::write_text(clone + "/configs/run.yaml",
                   "data:\n  features: data/small.h5\n  split:\n    heldout_classes: 5\nmodel:\n  method: int4\n"
                   "  embed_dim: 64\noutput:\n  dir: runs/int4\n");

  SECTION("train") {
    const Run r = run_in(clone + "/configs", "train -q -c run.yaml");
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(fs::exists(clone + "/runs/int4/best.safetensors"));
    CHECK_FALSE(fs::exists(clone + "/configs/runs"));
    // From outside the clone, a --set path is the working directory's.
    fs::copy_file(clone + "/data/small.h5", d.file("elsewhere/mine.h5"));
    const Run o = run_in(d.file("elsewhere"),
                         "train -q -c ../clone/configs/run.yaml --set data.features=mine.h5 -o out");
    INFO(o.output);
    REQUIRE(o.code == 0);
    CHECK(fs::exists(d.file("elsewhere/out/best.safetensors")));
  }

  SECTION("sweep: cells run from one folder are found done from another") {
    test::write_text(clone + "/configs/sweeps/s.yaml",
                     "name: s\nbase: configs/run.yaml\nout: experiments/s\ndatasets:\n  - name: small\n"
                     "    eval_features: data/small.h5\n    eval_classes: all\nmethods:\n  - label: int4\n");
    const Run r = run_in(clone + "/configs/sweeps", "sweep -q s.yaml");
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(fs::exists(clone + "/experiments/s/results.json"));
    CHECK_FALSE(fs::exists(clone + "/configs/sweeps/experiments"));
    const Run again = run_in(d.file("elsewhere"), "sweep -q ../clone/configs/sweeps/s.yaml");
    INFO(again.output);
    REQUIRE(again.code == 0);
    CHECK_THAT(again.output, Catch::Contains("1 cells, 1 already done, 0 run, 0 failed"));
    const Run listed = run_in(clone, "sweep --list configs/sweeps/s.yaml");
    CHECK_THAT(listed.output, Catch::Contains(" done "));
  }
}
