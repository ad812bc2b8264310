// Options several commands share, declared once so that they read and mean the
// same in every command.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace semcodec::cli {

// --device: where networks run. `note` adds what the command does with it.
CLI::Option* add_device_option(CLI::App* cmd, std::string& device, const std::string& note = "");
// -q,--quiet: no progress bar.
CLI::Option* add_quiet_flag(CLI::App* cmd, bool& quiet);
// --set key.path=value (repeatable): config overrides; `scope` says which configs.
CLI::Option* add_set_option(CLI::App* cmd, std::vector<std::string>& sets, const std::string& scope = "");
// --batch: `what` (images, prompts, rows) per model call, in every command
// that has it. Training batch sizes are train.batch_size, never --batch.
CLI::Option* add_batch_option(CLI::App* cmd, int64_t& items, const std::string& what);
// --dtype of the CLIP commands: the type the model computes in (clip_compute_dtype).
CLI::Option* add_clip_dtype_option(CLI::App* cmd, std::string& dtype);

}  // namespace semcodec::cli
