// Runs the real `semcodec` binary (SEMCODEC_CLI_PATH) from the CLI tests.
#pragma once
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "data/feature_store.h"
#include "data/synthetic.h"
#include "test_support.h"

namespace semcodec::test {

struct Run {
  int code;
  std::string output;
};

// `stderr_to`: "2>&1" keeps the messages with the output, "2>/dev/null" keeps stdout only (JSON).
// `env`: "NAME=value ..." set for the command.
inline Run run_cli(const std::string& args, const std::string& stderr_to = "2>&1", const std::string& env = "") {
  const std::string cmd =
      (env.empty() ? std::string() : "env " + env + " ") + SEMCODEC_CLI_PATH + " " + args + " " + stderr_to;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A small synthetic set (30 classes x 5, D = dim) for fast end-to-end runs.
inline std::string small_feature_file(const TempDir& d, const std::string& name, int64_t dim = 64) {
  SyntheticOptions o;
  o.num_classes = 30, o.per_class = 5, o.dim = dim, o.semantic_rank = 16, o.nuisance_rank = 16, o.num_superclasses = 5;
  const std::string p = d.file(name);
  write_feature_file(p, make_synthetic(o));
  return p;
}

// A narrow PQVAE-shared for those sets (5 held-out classes, one epoch).
constexpr const char* kSmallModelYaml =
    "data:\n  split:\n    heldout_classes: 5\nmodel:\n  embed_dim: 64\n  hidden_channels: 16\n  body_channels: 8\n"
    "  residual_channels: 8\n  latent_channels: 8\n  d_sub: 4\n  codebook_size: 4\n  init_samples: 200\n"
    "train:\n  epochs: 1\n  batch_size: 16\n  threads: 1\n";

}  // namespace semcodec::test
