// Fuzz target for run configs (util/config.h, util/yaml_bounded.h): the bytes
// are a YAML run config as `semcodec train -c` reads it. Refusal must be an
// Error; an accepted config must survive both round trips a run depends on:
// the resolved YAML written beside a run and the JSON stored in checkpoints
// both read back to a config with the same hash.
//
// Built with -fsanitize=fuzzer (SEMCODEC_LIBFUZZER defined) it is a libFuzzer
// target; without, a replay driver: `fuzz_run_config FILE_OR_DIR...`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "models/run_config.h"
#include "replay_main.h"
#include "util/config.h"
#include "util/error.h"

using namespace semcodec;

namespace {

using semcodec::fuzz::die;

int run_one(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  RunConfig config;
  try {
    config = config_from_yaml_string<RunConfig>(text, "fuzz.yaml", {});
  } catch (const Error&) {
    return 0;
  }
  const std::string hash = config_hash(config);
  try {
    if (config_hash(config_from_yaml_string<RunConfig>(to_yaml(config), "resolved.yaml", {})) != hash)
      die("the resolved YAML reads back to another config");
    if (config_hash(from_json<RunConfig>(to_json(config), "checkpoint [config]")) != hash)
      die("the checkpoint JSON reads back to another config");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    die("an accepted config's own output was refused");
  }
  return 1;
}

}  // namespace

SEMCODEC_FUZZ_TARGET("fuzz_run_config", run_one)
