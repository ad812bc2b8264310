#include "cli/common_options.h"

#include <CLI/CLI.hpp>

namespace semcodec::cli {

CLI::Option* add_device_option(CLI::App* cmd, std::string& device, const std::string& note) {
  return cmd
      ->add_option("--device", device,
                   "auto (the GPU when the build and the machine have one, else the CPU) | cpu | cuda | cuda:N" +
                       (note.empty() ? "" : "; " + note))
      ->capture_default_str();
}

CLI::Option* add_quiet_flag(CLI::App* cmd, bool& quiet) { return cmd->add_flag("-q,--quiet", quiet, "no progress bar"); }

CLI::Option* add_set_option(CLI::App* cmd, std::vector<std::string>& sets, const std::string& scope) {
  return cmd->add_option("--set", sets,
                         "override a config key" + (scope.empty() ? "" : " " + scope) +
                             ", e.g. --set train.epochs=5 (repeatable; keys: semcodec config, docs/config.md)");
}

CLI::Option* add_batch_option(CLI::App* cmd, int64_t& items, const std::string& what) {
  return cmd->add_option("--batch", items, what + " per model call")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
}

CLI::Option* add_clip_dtype_option(CLI::App* cmd, std::string& dtype) {
  return cmd
      ->add_option("--dtype", dtype,
                   "model compute type: float32 (OpenAI's reference numerics), bfloat16 (CUDA, or the CPU: fast "
                   "with AMX / AVX512-BF16, embeddings within ~1e-2), float16 (CUDA)")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "float16", "bfloat16"}));
}

}  // namespace semcodec::cli
