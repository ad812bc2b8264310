// Fuzz target for feature files (data/feature_store.h, data/hdf5_checked.h):
// the input is written to a scratch file and read through everything the CLI
// reads from a feature file (feature_file_exercise.h). An exception other
// than semcodec::Error aborts (a finding); so do crashes, hangs and huge
// allocations, through the sanitizers and libFuzzer's limits.
//
// Built with -fsanitize=fuzzer (SEMCODEC_LIBFUZZER defined) it is a libFuzzer
// target; without, a replay driver: `fuzz_feature_file FILE_OR_DIR...` runs
// every file once and prints how many were accepted by every reader.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "feature_file_exercise.h"
#include "replay_main.h"

namespace {

const std::string& scratch() {
  static const std::string dir = [] {
    const std::string d = semcodec::fuzz::scratch_path("fuzz_feature_file");
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

int run_one(const uint8_t* data, size_t size) {
  const std::string path = scratch() + "/input.h5";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  const auto r = semcodec::fuzz::exercise_feature_file(path, scratch());
  if (r.unclean > 0) {
    std::fprintf(stderr, "fuzz invariant violated: an exception other than semcodec::Error: %s\n", r.unclean_what.c_str());
    std::abort();
  }
  return r.refused == 0 ? 1 : 0;
}

}  // namespace

SEMCODEC_FUZZ_TARGET_WITH_SCRATCH("fuzz_feature_file", run_one, scratch)
