#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "data/device.h"
#include "data/extraction.h"
#include "data/extraction_shards.h"
#include "data/feature_store.h"
#include "data/image_dataset.h"
#include "models/clip/clip_weights.h"
#include "train/distributed_env.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/progress.h"

namespace semcodec::cli {

namespace {

struct ExtractOpts {
  std::string model, dataset, root, list, classes, name, split, out, device = "auto", dtype = "float32";
  std::string resize = "bicubic", feature_dtype = "float32", shard;
  int64_t batch = 64, limit = 0, stop_after_batches = -1;
  int threads = 0;
  double shard_timeout = 600.0;
  bool no_resume = false, quiet = false, keep_shards = false;
};

// Which part of the images this process embeds, and whether it merges the
// shards afterwards: --shard R/N names it (independent jobs, e.g. a SLURM
// array: nobody merges, `semcodec merge-shards` does); under semcodec launch,
// torchrun or srun the rank does, and rank 0 waits for the others and merges.
struct ShardPlan {
  ShardSpec spec;
  int64_t local_rank = 0;
  bool merge = false;
  bool sharded() const { return spec.count > 1; }
};

ShardPlan shard_plan(const ExtractOpts& o) {
  ShardPlan p;
  if (!o.shard.empty()) {
    p.spec = parse_shard_spec(o.shard);
    return p;
  }
  const DistEnv env = dist_env();
  p.spec = {env.rank, env.world_size};
  p.local_rank = env.local_rank;
  p.merge = env.distributed() && env.rank == 0;
  return p;
}

c10::ScalarType model_dtype(const std::string& name, const c10::Device& device) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") {
    // oneDNN's bfloat16 GEMMs on the CPU: ~7x float32 on a Xeon with AMX, slower than float32 without
    // native bfloat16 (still correct).
    if (device.is_cpu() && !cpu_has_native_bfloat16())
      fmt::print(stderr, "warning: this CPU has no native bfloat16 (AMX / AVX512-BF16); --dtype bfloat16 will be "
                         "slower than float32 here\n");
    return at::kBFloat16;
  }
  require(device.is_cuda(), "--dtype float16 needs --device cuda (on the CPU use float32 or bfloat16)");
  return at::kHalf;
}

// The images to embed: a dataset config, an ImageFolder tree or a list file.
void check_image_source(const ExtractOpts& o) {
  const int sources = !o.dataset.empty() + !o.list.empty();
  require(sources <= 1, "give one of --dataset and --list (with --root for an ImageFolder tree)");
  require(sources == 1 || !o.root.empty(), "no images: give --dataset CONFIG, --root FOLDER (ImageFolder) or --list FILE");
  require(o.dataset.empty() || o.classes.empty(), "--classes is for --root / --list; a dataset config names its classes");
}

ImageDataset load_images(const ExtractOpts& o) {
  ImageDataset ds;
  if (!o.dataset.empty()) {
    ds = load_dataset(read_dataset_spec(o.dataset, o.root));
  } else if (!o.list.empty()) {
    ClassList classes;
    if (!o.classes.empty()) classes = read_class_list_file(o.classes);
    ImageListFormat format;
    format.base_dir = o.root;
    ds.records = read_image_list(o.list, classes.keys, format);
    ds.class_keys = classes.keys;
    ds.class_names = classes.names;
    ds.name = std::filesystem::path(o.list).stem().string();
    if (ds.class_names.empty()) {
      int64_t max_label = -1;
      for (const auto& r : ds.records) max_label = std::max(max_label, r.label);
      for (int64_t i = 0; i <= max_label; ++i) ds.class_names.push_back("class_" + std::to_string(i));
    }
  } else {
    require(std::filesystem::is_directory(o.root), "{}: no such image folder", o.root);
    ds = scan_image_folder(o.root);
    if (!o.classes.empty()) {
      const ClassList classes = read_class_list_file(o.classes);
      require(classes.names.size() == ds.class_names.size(), "{}: {} class names for the {} class folders of {}",
              o.classes, classes.names.size(), ds.class_names.size(), o.root);
      ds.class_names = classes.names;
    }
    ds.name = std::filesystem::path(o.root).lexically_normal().filename().string();
    if (ds.name.empty()) ds.name = std::filesystem::path(o.root).lexically_normal().parent_path().filename().string();
  }
  if (!o.name.empty()) ds.name = o.name;
  if (!o.split.empty()) ds.split = o.split;
  require(!ds.records.empty(), "dataset '{}' has no images", ds.name);
  if (o.limit > 0 && o.limit < static_cast<int64_t>(ds.records.size())) ds.records.resize(static_cast<size_t>(o.limit));
  validate_dataset(ds);
  return ds;
}

// After this process's shard is complete: rank 0 of a launched job waits for
// the other shards and merges them; everyone else says how the merge happens.
void finish_shards(const ExtractOpts& o, const ShardPlan& plan) {
  const std::string merge_cmd = fmt::format("semcodec merge-shards -o {} --shards {}", o.out, plan.spec.count);
  if (!plan.merge) {
    fmt::print("shard {}/{} done; {}\n", plan.spec.index, plan.spec.count,
               o.shard.empty() ? "rank 0 merges the shards into " + o.out
                               : "once every shard is done, merge them with: " + merge_cmd);
    return;
  }
  ShardWaitOptions wait;
  wait.timeout_s = o.shard_timeout;
  if (!o.quiet) fmt::print(stderr, "waiting for the other {} shards of {}\n", plan.spec.count - 1, o.out);
  wait_for_shards(o.out, plan.spec.count, wait);
  const ShardMergeSummary m = merge_feature_shards(o.out, plan.spec.count, o.keep_shards, !o.quiet);
  fmt::print("{}\n", describe(m));
}

void run_extract(const ExtractOpts& o) {
  require(o.batch > 0, "--batch must be positive, got {}", o.batch);
  require(o.limit >= 0, "--limit must be >= 0, got {}", o.limit);
  check_image_source(o);
  const std::string out_dir = std::filesystem::path(o.out).parent_path().string();
  require(out_dir.empty() || std::filesystem::is_directory(out_dir), "{}: the output folder {} does not exist", o.out,
          out_dir);
  const ShardPlan plan = shard_plan(o);
  const c10::Device device = resolve_device(o.device, plan.local_rank);
  const c10::ScalarType dtype = model_dtype(o.dtype, device);
  // bfloat16 products run in oneDNN on the OpenMP pool: it gets the cores.
  if (device.is_cpu() && dtype == at::kBFloat16) configure_threads(0, GemmBackend::OneDnn);

  // Everything that can be wrong with the inputs is found before a file is created.
  ClipModel model = load_clip(o.model);
  const ImageDataset dataset = load_images(o);
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
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // On the CPU the model is ~50x slower than decoding, and decode threads take
  // cores from its GEMMs; a GPU needs every core decoding to keep up.
  x.decode_threads = o.threads > 0 ? o.threads : (device.is_cuda() ? std::min(cores, 32) : 1);
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
  cmd->add_option("--dataset", o->dataset, "dataset config, e.g. configs/datasets/imagenet_val.yaml (docs/datasets.md)");
  cmd->add_option("--root", o->root,
                  "image folder: alone, an ImageFolder tree (<root>/<class>/<image>); with --dataset it replaces the "
                  "config's root; with --list the folder the list's paths are relative to");
  cmd->add_option("--list", o->list, "list file, one 'path,label' (or 'path label') per line");
  cmd->add_option("--classes", o->classes,
                  "class names for --root / --list (YAML or one per line; {key, name} entries resolve key labels)");
  cmd->add_option("--name", o->name, "dataset name stored in the file (default: the config's name or the folder name)");
  cmd->add_option("--split", o->split, "split name stored in the file (default: the config's split, or 'all')");
  cmd->add_option("-o,--out", o->out, "output feature file (.h5)")->required();
  cmd->add_option("--batch", o->batch, "images per model call")->capture_default_str();
  cmd->add_option("--threads", o->threads, "decode + preprocess threads (default: 1 on the CPU, all cores with CUDA)");
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o->dtype,
                  "model compute type: float32 (OpenAI's reference numerics), bfloat16 (CUDA, or CPUs with AMX / "
                  "AVX512-BF16: ~7x faster there, embeddings within ~1e-2), float16 (CUDA)")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "float16", "bfloat16"}));
  cmd->add_option("--resize", o->resize,
                  "resampling of the shortest-side resize: bicubic (OpenAI's transform) or bilinear (torchvision's "
                  "default, the paper's extraction)")
      ->capture_default_str()
      ->check(CLI::IsMember({"bicubic", "bilinear"}));
  cmd->add_option("--feature-dtype", o->feature_dtype, "storage type of the rows: float32 or float16")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "float16"}));
  cmd->add_option("--limit", o->limit, "embed only the first N images (a trial run; 0 = all)");
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
  cmd->add_flag("-q,--quiet", o->quiet, "no progress bar");
  cmd->footer(
      "Outputs: <out> (rows in dataset order, ids = paths relative to the root, image sizes, class names);\n"
      "<out>.skipped.tsv lists unreadable images (index, id, path, reason), which are skipped, never fatal.\n"
      "While running: <out>.partial and <out>.partial.json (the settings; a rerun with different ones is refused).\n"
      "Next: semcodec embed-text --model M --bpe bpe_simple_vocab_16e6.txt.gz --features <out>  (docs/extraction.md)");
  cmd->callback([o] { run_extract(*o); });
}

}  // namespace semcodec::cli
