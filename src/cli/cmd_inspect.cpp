// semcodec inspect: what a bitstream holds and where its bytes go
// (codec/stream_inspection.h), as text or JSON.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "codec/checkpoint_codec.h"
#include "codec/stream_inspection.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace semcodec::cli {

void add_inspect(CLI::App& app) {
  struct Opts {
    std::string stream, checkpoint;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("inspect", "describe a bitstream (.scb): header, counts, bits per item, overhead");
  cmd->add_option("stream", o->stream, "bitstream to describe")->required()->check(CLI::ExistingFile);
  cmd->add_option("--checkpoint", o->checkpoint,
                  "also decode with this checkpoint: verifies the stream and reports entropy bounds (default: none)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", o->json, "print JSON instead of text");
  cmd->callback([o] {
    const std::string bytes = read_file(o->stream);
    const uint8_t* data = reinterpret_cast<const uint8_t*>(bytes.data());
    nlohmann::json j;
    try {
      j = describe_stream(data, bytes.size());
    } catch (const Error& e) {
      fail("{}: {}", o->stream, e.what());
    }
    j["stream"] = o->stream;
    if (!o->checkpoint.empty()) {
      std::unique_ptr<Codec> codec = load_codec(o->checkpoint, "cpu");
      try {
        add_decoded_rates(j, *codec, data, bytes.size());
      } catch (const Error& e) {
        fail("{}: {}", o->stream, e.what());
      }
    }
    if (o->json) {
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("bitstream {}\n  format SCB1 version {}, coder {}\n  fingerprint {}\n", o->stream,
               j["format_version"].get<int>(), j["coder"].get<std::string>(), j["fingerprint"].get<std::string>());
    fmt::print("  items {}, slots per item {}\n", j["items"].get<int64_t>(), j["slots"].get<int64_t>());
    fmt::print("  bytes {}: payload {}, header {}, framing (length prefixes) {}\n", j["total_bytes"].get<uint64_t>(),
               j["payload_bytes"].get<uint64_t>(), j["header_bytes"].get<uint64_t>(), j["framing_bytes"].get<uint64_t>());
    if (j["adaptive"].get<bool>())
      fmt::print("  adaptive stream: side information {} bytes ({:.2f} bits/item), one rANS message of {} bytes\n",
                 j["side_info_bytes"].get<uint64_t>(), j["side_info_bits_per_item"].get<double>(),
                 j["message_bytes"].get<uint64_t>());
    fmt::print("  payload bits/item {:.2f}", j["payload_bits_per_item"].get<double>());
    if (j.contains("min_payload_bytes"))
      fmt::print(" (per item min {} max {} bits)", j["min_payload_bytes"].get<uint32_t>() * 8,
                 j["max_payload_bytes"].get<uint32_t>() * 8);
    fmt::print("; with overhead {:.2f}\n", j["total_bits_per_item"].get<double>());
    if (j.contains("raw_bits_per_item")) {
      fmt::print("  decoded with {}: stream verified\n", o->checkpoint);
    }
    if (j.contains("model_bits_per_item")) {
      fmt::print("  raw rate {} bits/item; ideal under the stored {} tables {:.2f}\n",
                 j["raw_bits_per_item"].get<int64_t>(), j["stored_table_mode"].get<std::string>(),
                 j["model_bits_per_item"].get<double>());
      for (const auto& [mode, bits] : j["entropy_bits_per_item"].items())
        fmt::print("  empirical entropy, {} tables: {:.2f} bits/item\n", mode, bits.get<double>());
    }
  });
}

}  // namespace semcodec::cli
