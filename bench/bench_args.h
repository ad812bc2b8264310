// The benchmarks take "--name value" pairs. A lone "--help" (or a name with
// no value) used to fall through the pair loop and start a full run.
#pragma once
#include <cstdio>
#include <cstring>

namespace semcodec {

// -1 when argv holds only "--name value" pairs; otherwise prints `usage` and
// returns main's exit code: 0 for -h / --help, 2 for an option without a value.
inline int check_bench_args(int argc, char** argv, const char* usage) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("%s\n", usage);
      return 0;
    }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "%s: option %s has no value\n%s\n", argv[0], argv[argc - 1], usage);
    return 2;
  }
  return -1;
}

}  // namespace semcodec
