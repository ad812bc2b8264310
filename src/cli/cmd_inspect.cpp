// semcodec inspect: what a bitstream holds and where its bytes go. With
// --checkpoint it also decodes every item and compares the rate with the
// raw rate and the entropy of the decoded indices under each table mode.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>

#include "cli/commands.h"
#include "codec/checkpoint_codec.h"
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
    DecodedStream s;
    try {
      s = scan_stream(data, bytes.size());
    } catch (const Error& e) {
      fail("{}: {}", o->stream, e.what());
    }
    const StreamRate r = stream_rate(s, bytes.size());
    const auto [mn, mx] = s.payload_bytes.empty() ? std::pair<uint32_t, uint32_t>{0, 0}
                                                  : std::pair<uint32_t, uint32_t>{
                                                        *std::min_element(s.payload_bytes.begin(), s.payload_bytes.end()),
                                                        *std::max_element(s.payload_bytes.begin(), s.payload_bytes.end())};
    nlohmann::json j = {{"stream", o->stream},
                        {"format_version", s.header.version},
                        {"coder", coder_name(s.header.coder)},
                        {"fingerprint", fingerprint_hex(s.header.fingerprint)},
                        {"items", r.items},
                        {"slots", r.slots},
                        {"total_bytes", r.total_bytes},
                        {"header_bytes", r.header_bytes},
                        {"framing_bytes", r.framing_bytes},
                        {"payload_bytes", r.payload_bytes},
                        {"payload_bits_per_item", r.payload_bits_per_item()},
                        {"total_bits_per_item", r.total_bits_per_item()},
                        {"min_payload_bytes", mn},
                        {"max_payload_bytes", mx}};
    if (!o->checkpoint.empty()) {
      std::unique_ptr<Codec> codec = load_codec(o->checkpoint, "cpu");
      DecodedStream d;
      try {
        d = codec->decode_indices(data, bytes.size());
      } catch (const Error& e) {
        fail("{}: {}", o->stream, e.what());
      }
      const EntropyModel& m = codec->model();
      const int64_t n = d.header.items;
      j["raw_bits_per_item"] = raw_bits_per_item(m.alphabet_sizes());
      j["model_bits_per_item"] = model_code_bits(m, d.indices.data(), n);
      j["stored_table_mode"] = table_mode_name(m.mode());
      nlohmann::json ent = nlohmann::json::object();
      for (TableMode mode : kTableModes) {
        if ((mode == TableMode::per_subspace || mode == TableMode::per_position) && m.subspaces() == 0) continue;
        ent[table_mode_name(mode)] =
            empirical_entropy_bits(d.indices.data(), n, m.slots(), m.alphabet_sizes(), mode, m.positions(), m.subspaces());
      }
      j["entropy_bits_per_item"] = ent;
    }
    if (o->json) {
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("bitstream {}\n  format SCB1 version {}, coder {}\n  fingerprint {}\n", o->stream, s.header.version,
               coder_name(s.header.coder), fingerprint_hex(s.header.fingerprint));
    fmt::print("  items {}, slots per item {}\n", r.items, r.slots);
    fmt::print("  bytes {}: payload {}, header {}, framing (length prefixes) {}\n", r.total_bytes, r.payload_bytes,
               r.header_bytes, r.framing_bytes);
    fmt::print("  payload bits/item {:.2f} (per item min {} max {} bits); with overhead {:.2f}\n", r.payload_bits_per_item(),
               mn * 8, mx * 8, r.total_bits_per_item());
    if (j.contains("raw_bits_per_item")) {
      fmt::print("  decoded with {}: stream verified\n", o->checkpoint);
      fmt::print("  raw rate {} bits/item; ideal under the stored {} tables {:.2f}\n",
                 j["raw_bits_per_item"].get<int64_t>(), j["stored_table_mode"].get<std::string>(),
                 j["model_bits_per_item"].get<double>());
      for (const auto& [mode, bits] : j["entropy_bits_per_item"].items())
        fmt::print("  empirical entropy, {} tables: {:.2f} bits/item\n", mode, bits.get<double>());
    }
  });
}

}  // namespace semcodec::cli
