// semcodec decompress: bitstream (.scb) -> reconstructed features (.h5).
// The stream carries only the coded items; labels, ids, class names, text
// embeddings and image sizes come from --features (docs/bitstream.md).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "codec/checkpoint_codec.h"
#include "codec/decoded_features.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/progress.h"

namespace semcodec::cli {

void add_decompress(CLI::App& app) {
  struct Opts {
    std::string checkpoint, stream, out, features, device = "auto";
    int64_t batch = 4096;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("decompress", "decode a bitstream (.scb) to reconstructed features (.h5)");
  cmd->add_option("stream", o->stream, "bitstream to decode")->required()->check(CLI::ExistingFile);
  cmd->add_option("--checkpoint", o->checkpoint, "the checkpoint the stream was made with")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", o->out, "reconstructed feature file; default <stream without .scb>.recon.h5");
  cmd->add_option("--features", o->features,
                  "feature file the stream was compressed from: labels, ids, class names, text embeddings and image "
                  "sizes are copied from it (default: none; labels 0, ids item/<row>, one class 'unknown')")
      ->check(CLI::ExistingFile);
  add_batch_option(cmd, o->batch, "rows");
  add_device_option(cmd, o->device, "where a network method runs; fitted methods run on the CPU");
  add_quiet_flag(cmd, o->quiet);
  cmd->callback([o] {
    std::unique_ptr<Codec> codec = load_codec(o->checkpoint, o->device);
    codec->set_batch_size(o->batch);
    const std::string bytes = read_file(o->stream);
    const uint8_t* data = reinterpret_cast<const uint8_t*>(bytes.data());
    // Validate the whole stream (and its fingerprint) before any network work.
    DecodedStream layout;
    try {
      layout = scan_stream(data, bytes.size());
    } catch (const Error& e) {
      fail("{}: {}", o->stream, e.what());
    }
    const std::string path = o->out.empty()
                                 ? std::filesystem::path(o->stream).replace_extension(".recon.h5").string()
                                 : o->out;
    // Rows go to the file a batch at a time: memory stays bounded by the stream's indices, not [N, D].
    DecodedFeatureFile out(path, layout.header.items, codec->quantizer().embed_dim(), codec->fingerprint(),
                           o->features, o->stream);
    ProgressBar bar("decompress", layout.header.items, "items", !o->quiet);
    int64_t done = 0;
    StreamRate rate;
    try {
      rate = codec->decode_rows(data, bytes.size(), [&](const at::Tensor& rows) { out.append(rows); },
                                [&](int64_t n) {
                                  bar.advance(n - done);
                                  done = n;
                                });
    } catch (const Error& e) {
      fail("{}: {}", o->stream, e.what());
    }
    bar.finish();
    out.close();
    fmt::print("decoded {} items ({} payload bits/item, {}) -> {}\n", rate.items,
               fmt::format("{:.2f}", rate.payload_bits_per_item()), stream_coder_text(rate.coder, codec->coder_id()),
               path);
  });
}

}  // namespace semcodec::cli
