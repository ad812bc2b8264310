// The replay driver shared by the fuzz targets when they are built without
// libFuzzer: `TARGET FILE_OR_DIR...` runs every file (directories
// recursively) once through the target's run_one and prints how many inputs
// were accepted. CTest runs it over the committed seed corpora.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace semcodec::fuzz {

// A target's invariant does not hold: report it and abort (libFuzzer keeps the input).
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// A path of this process's own in the temp folder, for targets that read
// their input from a file: `stem` + "_<pid>" + `suffix`.
inline std::string scratch_path(const std::string& stem, const std::string& suffix = "") {
  return (std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + suffix)).string();
}

// run_one returns 1 when the input was accepted, 0 when it was refused cleanly.
inline int replay_main(int argc, char** argv, const char* target, int (*run_one)(const uint8_t*, size_t)) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR... (replays each file through the fuzz target)\n", argv[0]);
    return 2;
  }
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (std::filesystem::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "%s: not found\n", argv[i]);
      return 2;
    }
  }
  int accepted = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    accepted += run_one(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%s: replayed %zu inputs, %d accepted, no invariant violated\n", target, files.size(), accepted);
  return files.empty() ? 1 : 0;
}

}  // namespace semcodec::fuzz

// The entry points of a fuzz target whose `run_one` (returning 1 when the
// input was accepted, 0 when refused cleanly) checks one input: libFuzzer's
// LLVMFuzzerTestOneInput always, and the replay main in the normal build.
// The _WITH_SCRATCH form removes `scratch()` (a file or folder the target
// writes) when the replay ends.
#define SEMCODEC_FUZZ_ENTRY(run_one)                                          \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    run_one(data, size);                                                     \
    return 0;                                                                \
  }
#ifdef SEMCODEC_LIBFUZZER
#define SEMCODEC_FUZZ_TARGET(target_name, run_one) SEMCODEC_FUZZ_ENTRY(run_one)
#define SEMCODEC_FUZZ_TARGET_WITH_SCRATCH(target_name, run_one, scratch) SEMCODEC_FUZZ_ENTRY(run_one)
#else
#define SEMCODEC_FUZZ_TARGET(target_name, run_one) \
  SEMCODEC_FUZZ_ENTRY(run_one)                     \
  int main(int argc, char** argv) { return semcodec::fuzz::replay_main(argc, argv, target_name, run_one); }
#define SEMCODEC_FUZZ_TARGET_WITH_SCRATCH(target_name, run_one, scratch)              \
  SEMCODEC_FUZZ_ENTRY(run_one)                                                        \
  int main(int argc, char** argv) {                                                   \
    const int rc = semcodec::fuzz::replay_main(argc, argv, target_name, run_one);     \
    std::filesystem::remove_all(scratch());                                           \
    return rc;                                                                        \
  }
#endif
