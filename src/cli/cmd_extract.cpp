#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "data/device.h"
#include "data/extraction.h"
#include "data/extraction_shards.h"
#include "data/feature_store.h"
#include "data/image_dataset.h"
#include "models/clip/clip_model.h"
#include "models/clip/clip_weights.h"
#include "util/atomic_file.h"
#include "util/distributed_env.h"
#include "util/error.h"
#include "util/progress.h"

namespace semcodec::cli {

namespace {

struct ExtractOpts {
  std::string model, out, device = "auto", dtype = "float32", resize = "bicubic", feature_dtype = "float32", shard;
  ImageSource images;
  int64_t batch = 64, stop_after_batches = -1;
  int decode_threads = 0;
  double shard_timeout = 600.0;
  bool no_resume = false, quiet = false, keep_shards = false;
};

void finish_shards(const ExtractOpts& o, const ShardPlan& plan) {
  ShardWaitOptions wait;
  wait.timeout_s = o.shard_timeout;
  fmt::print("{}\n", finish_shard(o.out, plan, wait, o.keep_shards, !o.quiet));
}

void run_extract(const ExtractOpts& o) {
  require(o.images.limit >= 0, "--limit must be >= 0, got {}", o.images.limit);
  check_image_source(o.images);
  const std::string out_dir = std::filesystem::path(o.out).parent_path().string();
  require(out_dir.empty() || std::filesystem::is_directory(out_dir), "{}: the output folder {} does not exist", o.out,
          out_dir);
  const ShardPlan plan = plan_shards(o.shard, dist_env());
  const c10::Device device = resolve_device(o.device, plan.local_rank);
  const c10::ScalarType dtype = clip_compute_dtype(o.dtype, device);
  configure_threads(0, gemm_backend_for(dtype, device));

  // Everything that can be wrong with the inputs is found before a file is created.
  ClipModel model = load_clip(o.model);
  const ImageDataset dataset = load_image_source(o.images);
  const int64_t records = static_cast<int64_t>(dataset.records.size());
  const RecordRange range = plan.sharded() ? shard_range(records, o.batch, plan.spec) : RecordRange{0, records};
  const std::string target = plan.sharded() ? shard_path(o.out, plan.spec) : o.out;
  if (plan.sharded() && !o.no_resume && shard_state(o.out, plan.spec) == ShardState::Complete) {
    fmt::print(stderr, "shard {}/{} is already complete: {}\n", plan.spec.index, plan.spec.count, target);
    finish_shards(o, plan);
    return;
  }
  model.to(device, dtype);

  ExtractionOptions x;
  x.preprocess.resolution = model.image_resolution();
  x.preprocess.filter = parse_resample_filter(o.resize);
  x.embed_dim = model.embed_dim();
  x.batch_size = o.batch;
  x.decode_threads = o.decode_threads > 0 ? o.decode_threads : default_decode_threads(device);
  x.pin_memory = device.is_cuda();
  x.resume = !o.no_resume;
  x.max_batches = o.stop_after_batches;
  x.record_begin = range.begin;
  x.record_end = range.end;
  // One bar per node: the other local ranks would only overwrite its line.
  x.progress = !o.quiet && plan.local_rank == 0;
  x.attrs.encoder_model = model.config().name();
  x.write.dtype = o.feature_dtype;

  const std::string partial = FeatureWriter::partial_path(target);
  if (x.resume && file_exists(partial))
    fmt::print(stderr, "resuming {} from {}\n", target, partial);
  else if (!x.resume && file_exists(partial))
    fmt::print(stderr, "--no-resume: starting over (replacing {})\n", partial);
  if (!o.quiet)
    fmt::print(stderr, "extract: {} ({} on {}, {}), {} images of '{}' ({} classes), {} px {}, batch {}, decode threads {}\n",
               o.model, model.config().name(), device.str(), o.dtype, dataset.records.size(), dataset.name,
               dataset.class_names.size(), x.preprocess.resolution, o.resize, o.batch, x.decode_threads);
  if (!o.quiet && plan.sharded())
    fmt::print(stderr, "shard {}/{}: images [{}, {}) into {}\n", plan.spec.index, plan.spec.count, range.begin,
               range.end, target);

  const ImageEncoder encoder = [&model](const at::Tensor& batch) {
    return model.encode_image(batch.to(model.device(), model.dtype(), /*non_blocking=*/true));
  };
  const ExtractionSummary s = extract_features(dataset, target, encoder, x);

  const int64_t skipped = static_cast<int64_t>(s.skipped.size());
  fmt::print("{} {}: {} rows x {} dims from {} images ({} skipped{}), {} classes, model {}\n",
             s.complete ? "wrote" : "stopped early; partial file", s.complete ? target : partial, s.rows,
             model.embed_dim(), s.records, skipped, skipped > 0 ? ", listed in " + s.skipped_list : std::string(),
             dataset.class_names.size(), model.config().name());
  fmt::print("this run: {} images in {} ({:.1f} images/s){}\n", s.processed, format_duration(s.seconds),
             s.images_per_second,
             s.resumed_rows > 0 ? fmt::format(", resumed after {} rows already in the partial file", s.resumed_rows)
                                : std::string());
  if (!s.complete) {
    fmt::print("rerun the same command to continue\n");
    return;
  }
  if (plan.sharded()) finish_shards(o, plan);
}

}  // namespace

void add_extract(CLI::App& app) {
  auto o = std::make_shared<ExtractOpts>();
  auto* cmd = app.add_subcommand(
      "extract",
      "embed images with a CLIP image encoder into a feature file (resumable: rerunning the same command after an "
      "interruption, kill -9 included, continues from <out>.partial and ends identical to an uninterrupted run)");
  cmd->add_option("-m,--model", o->model,
                  "CLIP weights: OpenAI .pt (ViT-B-32.pt, ...), a torch.save state dict, or safetensors (Hugging Face "
                  "openai/clip-vit-* or OpenAI names); the variant is read off the shapes")
      ->required();
  cmd->add_option("--dataset", o->images.dataset, "dataset config, e.g. configs/datasets/imagenet_val.yaml (docs/datasets.md)");
  cmd->add_option("--root", o->images.root,
                  "image folder: alone, an ImageFolder tree (<root>/<class>/<image>); with --dataset it replaces the "
                  "config's root; with --list the folder the list's paths are relative to");
  cmd->add_option("--list", o->images.list, "list file, one 'path,label' (or 'path label') per line");
  cmd->add_option("--classes", o->images.classes,
                  "class names for --root / --list (YAML or one per line; {key, name} entries resolve key labels)");
  cmd->add_option("--name", o->images.name, "dataset name stored in the file (default: the config's name or the folder name)");
  cmd->add_option("--split", o->images.split, "split name stored in the file (default: the config's split, or 'all')");
  cmd->add_option("-o,--out", o->out, "output feature file (.h5)")->required();
  add_batch_option(cmd, o->batch, "images");
  cmd->add_option("--decode-threads", o->decode_threads,
                  "image decode + preprocess threads, not the model's (default: 1 on the CPU, every core up to 32 "
                  "with CUDA)");
  add_device_option(cmd, o->device, "under semcodec launch / torchrun / srun, auto and cuda mean the local rank's GPU");
  add_clip_dtype_option(cmd, o->dtype);
  cmd->add_option("--resize", o->resize,
                  "resampling of the shortest-side resize: bicubic (OpenAI's transform) or bilinear (torchvision's "
                  "default, the paper's extraction)")
      ->capture_default_str()
      ->check(CLI::IsMember({"bicubic", "bilinear"}));
  cmd->add_option("--feature-dtype", o->feature_dtype, "storage type of the rows: float32 or float16")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "float16"}));
  cmd->add_option("--limit", o->images.limit, "embed only the first N images (a trial run; 0 = all)");
  cmd->add_option("--stop-after-batches", o->stop_after_batches,
                  "stop after N batches, leaving <out>.partial for a later run to continue (time-boxed jobs)");
  cmd->add_flag("--no-resume", o->no_resume, "start over even if <out>.partial exists (or this shard is complete)");
  cmd->add_option("--shard", o->shard,
                  "embed only shard R of N (R/N, from 0) into <out stem>.shard-R-of-N.h5, e.g. one task of a job "
                  "array; merge them with `semcodec merge-shards`. Under semcodec launch / torchrun / srun the rank "
                  "and world size choose the shard, and rank 0 merges (docs/distributed.md)");
  cmd->add_option("--shard-timeout", o->shard_timeout,
                  "seconds rank 0 waits for a shard that makes no progress before it stops with an error")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--keep-shards", o->keep_shards, "keep the shard files after the merge");
  add_quiet_flag(cmd, o->quiet);
  cmd->footer(
      "Outputs: <out> (rows in dataset order, ids = paths relative to the root, image sizes, class names);\n"
      "<out>.skipped.tsv lists unreadable images (index, id, path, reason), which are skipped, never fatal.\n"
      "While running: <out>.partial and <out>.partial.json (the settings; a rerun with different ones is refused).\n"
      "Next: semcodec embed-text --model M --bpe bpe_simple_vocab_16e6.txt.gz --features <out>  (docs/extraction.md)");
  cmd->callback([o] { run_extract(*o); });
}

}  // namespace semcodec::cli
