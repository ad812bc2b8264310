// semcodec compress: features (.h5) -> bitstream (.scb) with the checkpoint's codec.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <string_view>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "codec/checkpoint_codec.h"
#include "data/feature_store.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/progress.h"

namespace semcodec::cli {

void add_compress(CLI::App& app) {
  struct Opts {
    std::string checkpoint, features, out, device = "auto";
    int64_t batch = 4096;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("compress", "compress a feature file to a bitstream (.scb, docs/bitstream.md)");
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint with entropy tables (semcodec fit-entropy)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--features", o->features, "feature file to compress (.h5)")->required();
  cmd->add_option("-o,--out", o->out, "output stream; default <features without .h5>.scb");
  add_batch_option(cmd, o->batch, "rows");
  add_device_option(cmd, o->device, "where a network method runs; fitted methods run on the CPU");
  add_quiet_flag(cmd, o->quiet);
  cmd->callback([o] {
    std::unique_ptr<Codec> codec = load_codec(o->checkpoint, o->device);
    codec->set_batch_size(o->batch);
    FeatureSet set = read_feature_file(o->features);
    require(set.dim() == codec->quantizer().embed_dim(), "{}: features have D = {} but checkpoint {} codes D = {}",
            o->features, set.dim(), o->checkpoint, codec->quantizer().embed_dim());
    const std::string out =
        o->out.empty() ? std::filesystem::path(o->features).replace_extension(".scb").string() : o->out;
    ProgressBar bar("compress", set.size(), "items", !o->quiet);
    int64_t done = 0;
    std::vector<uint8_t> bytes = codec->encode(set.features, [&](int64_t n) {
      bar.advance(n - done);
      done = n;
    });
    bar.finish();
    // The stream we report on is the stream we write: re-read its layout from the bytes.
    StreamRate rate = stream_rate(scan_stream(bytes.data(), bytes.size()), bytes.size());
    write_file_atomic(out, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    fmt::print("compressed {} items ({} slots, {}) -> {}\n", rate.items, rate.slots,
               stream_coder_text(rate.coder, codec->coder_id()), out);
    fmt::print("  {} bytes: payload {} ({:.2f} bits/item), header {}, framing {} ({:.2f} bits/item with overhead)\n",
               rate.total_bytes, rate.payload_bytes, rate.payload_bits_per_item(), rate.header_bytes,
               rate.framing_bytes, rate.total_bits_per_item());
    fmt::print("  raw rate {:.0f} bits/item; fingerprint {}\n", codec->quantizer().raw_bits(),
               fingerprint_hex(codec->fingerprint()));
  });
}

}  // namespace semcodec::cli
