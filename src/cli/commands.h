// One function per subcommand: it declares its options on the CLI11 app and
// sets the callback that calls into the library. main.cpp only wires them.
#pragma once
namespace CLI {
class App;
}

namespace semcodec::cli {

void add_synth(CLI::App& app);
void add_import(CLI::App& app);
void add_convert_release(CLI::App& app);
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_quickstart(CLI::App& app);
void add_info(CLI::App& app);
void add_config(CLI::App& app);
void add_fit_entropy(CLI::App& app);
void add_compress(CLI::App& app);
void add_decompress(CLI::App& app);
void add_inspect(CLI::App& app);
void add_extract(CLI::App& app);
void add_merge_shards(CLI::App& app);
void add_embed_text(CLI::App& app);
void add_sweep(CLI::App& app);
void add_report(CLI::App& app);
void add_launch(CLI::App& app);

}  // namespace semcodec::cli
