// semcodec: semantic compression of CLIP embeddings. One tool, many
// subcommands; every error surfaces here once, as a message and exit code 1.
#include <ATen/Context.h>
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <torch/version.h>

#include "cli/commands.h"
#include "data/device.h"
#include "semcodec_version.h"
#include "train/data_parallel.h"
#include "util/error.h"

namespace {
// What this build and machine can do: the first thing to ask of a GPU box.
std::string version_text() {
  const bool cuda = at::hasCUDA();
  std::string backends = semcodec::have_gloo_backend() ? "gloo" : "";
  if (semcodec::have_nccl_backend()) backends += backends.empty() ? "nccl" : ", nccl";
  return fmt::format("semcodec {}\n  LibTorch {}\n  CUDA: {}\n  c10d backends: {}\n  CPU bfloat16 GEMMs: {}",
                     SEMCODEC_VERSION, TORCH_VERSION,
                     cuda ? fmt::format("{} GPU(s)", static_cast<int>(at::getNumGPUs())) : std::string("none"),
                     backends.empty() ? "none (single process only)" : backends,
                     semcodec::cpu_has_native_bfloat16() ? "native (AMX / AVX512-BF16)" : "emulated");
}
}  // namespace

int main(int argc, char** argv) {
  semcodec::prefer_avx512_blas(argv);
  CLI::App app{"semcodec " SEMCODEC_VERSION
               ": compress CLIP embeddings to a few hundred bits and measure what semantics survive"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text, "print the version and what this build and machine support");
  semcodec::cli::add_quickstart(app);
  semcodec::cli::add_synth(app);
  semcodec::cli::add_import(app);
  semcodec::cli::add_convert_release(app);
  semcodec::cli::add_extract(app);
  semcodec::cli::add_merge_shards(app);
  semcodec::cli::add_embed_text(app);
  semcodec::cli::add_train(app);
  semcodec::cli::add_eval(app);
  semcodec::cli::add_sweep(app);
  semcodec::cli::add_report(app);
  semcodec::cli::add_launch(app);
  semcodec::cli::add_fit_entropy(app);
  semcodec::cli::add_compress(app);
  semcodec::cli::add_decompress(app);
  semcodec::cli::add_inspect(app);
  semcodec::cli::add_info(app);
  semcodec::cli::add_config(app);
  try {
    semcodec::configure_threads(0);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const semcodec::Error& e) {
    fmt::print(stderr, "semcodec: error: {}\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    fmt::print(stderr, "semcodec: error (LibTorch): {}\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "semcodec: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
