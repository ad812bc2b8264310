#include "data/extraction_shards.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <unordered_set>

#include "data/extraction.h"
#include "data/feature_store.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/progress.h"

namespace semcodec {

namespace fs = std::filesystem;

ShardSpec parse_shard_spec(const std::string& text) {
  const size_t slash = text.find('/');
  ShardSpec s;
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < text.size();
  if (ok) {
    try {
      size_t used_r = 0, used_n = 0;
      s.index = std::stoll(text.substr(0, slash), &used_r);
      s.count = std::stoll(text.substr(slash + 1), &used_n);
      ok = used_r == slash && used_n == text.size() - slash - 1;
    } catch (const std::exception&) {
      ok = false;
    }
  }
  require(ok && s.count >= 1 && s.index >= 0 && s.index < s.count,
          "shard '{}': expected R/N with 0 <= R < N (shard R of N, counted from 0), e.g. 0/4", text);
  return s;
}

RecordRange shard_range(int64_t records, int64_t batch_size, ShardSpec shard) {
  require(records > 0 && batch_size > 0, "shard_range: {} records in batches of {}", records, batch_size);
  require(shard.count >= 1 && shard.index >= 0 && shard.index < shard.count, "shard {}/{} does not exist",
          shard.index, shard.count);
  const int64_t batches = (records + batch_size - 1) / batch_size;
  require(shard.count <= batches,
          "{} shards for {} records: that is {} batches of {}, and every shard needs at least one (use fewer ranks "
          "or a smaller --batch)",
          shard.count, records, batches, batch_size);
  // Shard r takes batches [r*B/N, (r+1)*B/N): sizes differ by at most one batch.
  const int64_t first = shard.index * batches / shard.count, last = (shard.index + 1) * batches / shard.count;
  return {first * batch_size, std::min(records, last * batch_size)};
}

std::string shard_path(const std::string& output, ShardSpec shard) {
  const fs::path p(output);
  const std::string name =
      fmt::format("{}.shard-{}-of-{}{}", p.stem().string(), shard.index, shard.count, p.extension().string());
  return (p.parent_path() / name).string();
}

ShardState shard_state(const std::string& output, ShardSpec shard) {
  const std::string path = shard_path(output, shard);
  // A shard is complete only once its writer renamed the partial file onto
  // the final name; a final file beside a newer partial one is a rerun in progress.
  if (file_exists(FeatureWriter::partial_path(path))) return ShardState::Partial;
  if (file_exists(path)) return ShardState::Complete;
  return ShardState::Missing;
}

namespace {

int gzip_level_of(const FeatureFileInfo& info) {
  if (info.compression.rfind("gzip-", 0) == 0) return std::stoi(info.compression.substr(5));
  return 0;
}

// Everything two shards of one extraction must agree on.
void check_same_extraction(const FeatureFileInfo& a, const std::vector<std::string>& a_classes,
                           const FeatureFileInfo& b, const std::vector<std::string>& b_classes) {
  auto differs = [&](const char* what, const std::string& x, const std::string& y) {
    if (x != y)
      fail("{}: this shard has {} '{}' but {} has '{}'; the shards are not from one extraction", b.path, what, y,
           a.path, x);
  };
  differs("dimension", std::to_string(a.dim), std::to_string(b.dim));
  differs("storage type", a.dtype, b.dtype);
  differs("encoder model", a.attrs.encoder_model, b.attrs.encoder_model);
  differs("dataset", a.attrs.dataset, b.attrs.dataset);
  differs("split", a.attrs.split, b.attrs.split);
  differs("preprocessing", a.attrs.preprocessing, b.attrs.preprocessing);
  differs("image sizes", a.has_image_sizes ? "yes" : "no", b.has_image_sizes ? "yes" : "no");
  if (a_classes != b_classes)
    fail("{}: its {} class names differ from the {} of {}; the shards are not from one extraction", b.path,
         b_classes.size(), a_classes.size(), a.path);
}

}  // namespace

std::string describe(const ShardMergeSummary& m) {
  return fmt::format("merged {} shards into {}: {} rows ({} images skipped{})", m.shards, m.output, m.rows, m.skipped,
                     m.skipped_list.empty() ? std::string() : ", listed in " + m.skipped_list);
}

ShardMergeSummary merge_feature_shards(const std::string& output, int64_t count, bool keep_shards, bool progress) {
  require(count >= 1, "{}: merge needs at least one shard, got {}", output, count);
  std::vector<std::string> paths;
  for (int64_t r = 0; r < count; ++r) {
    const ShardSpec s{r, count};
    const std::string path = shard_path(output, s);
    switch (shard_state(output, s)) {
      case ShardState::Missing:
        fail("{}: cannot merge: shard {}/{} ({}) does not exist; run the extraction for it (--shard {}/{})", output, r,
             count, path, r, count);
      case ShardState::Partial:
        fail("{}: cannot merge: shard {}/{} is unfinished ({}); rerun its extraction (--shard {}/{}) to complete it",
             output, r, count, FeatureWriter::partial_path(path), r, count);
      case ShardState::Complete:
        break;
    }
    paths.push_back(path);
  }

  // Everything is checked before the output is created.
  std::vector<std::unique_ptr<FeatureReader>> shards;
  std::vector<std::string> classes;
  at::Tensor text;
  int64_t rows = 0;
  for (int64_t r = 0; r < count; ++r) {
    shards.push_back(std::make_unique<FeatureReader>(paths[r]));
    std::vector<std::string> names = shards.back()->class_names();
    if (r == 0) {
      classes = names;
      text = shards[0]->class_embeddings();
    } else {
      check_same_extraction(shards[0]->info(), classes, shards.back()->info(), names);
    }
    rows += shards.back()->size();
  }
  {
    std::unordered_set<std::string> seen;
    seen.reserve(static_cast<size_t>(rows));
    for (int64_t r = 0; r < count; ++r)
      for (const auto& id : shards[r]->ids())
        if (!seen.insert(id).second)
          fail("{}: cannot merge: row id '{}' appears in more than one shard (last in {}); the shards overlap", output,
               id, paths[r]);
  }

  const FeatureFileInfo& first = shards[0]->info();
  FeatureWriteOptions write;
  write.dtype = first.dtype == "float16" ? "float16" : "float32";
  write.chunk_rows = first.chunk_rows > 0 ? first.chunk_rows : 1024;
  write.gzip_level = gzip_level_of(first);
  FeatureWriter writer(output, first.dim, first.attrs, write, /*resume=*/false);
  writer.set_classes(classes, text);

  ShardMergeSummary summary;
  summary.shards = count;
  summary.output = output;
  ProgressBar bar("merge " + fs::path(output).filename().string(), rows, "row", progress);
  const int64_t block = std::max<int64_t>(write.chunk_rows, 16384);
  std::vector<SkippedImage> skipped;  // dataset indices: the shards' lists concatenate in order
  for (int64_t r = 0; r < count; ++r) {
    FeatureReader& in = *shards[r];
    const at::Tensor labels = in.labels();
    const std::vector<std::string> ids = in.ids();
    const at::Tensor sizes = in.image_sizes();
    for (int64_t s = 0; s < in.size(); s += block) {
      const int64_t c = std::min(block, in.size() - s);
      writer.append(in.read_rows(s, c), labels.narrow(0, s, c),
                    std::vector<std::string>(ids.begin() + s, ids.begin() + s + c),
                    sizes.defined() ? sizes.narrow(0, s, c) : at::Tensor());
      bar.advance(c);
    }
    for (SkippedImage& e : read_skipped_list(skipped_list_path(paths[r]))) skipped.push_back(std::move(e));
  }
  bar.finish();

  // The skipped list goes first: a complete-looking output always has its list.
  const std::string sidecar = skipped_list_path(output);
  if (!skipped.empty()) {
    write_skipped_list(sidecar, skipped);
    summary.skipped_list = sidecar;
    summary.skipped = static_cast<int64_t>(skipped.size());
  } else if (file_exists(sidecar)) {
    std::remove(sidecar.c_str());
  }
  writer.close();
  summary.rows = writer.rows();
  shards.clear();
  if (!keep_shards)
    for (const auto& p : paths) {
      std::remove(p.c_str());
      std::remove(skipped_list_path(p).c_str());
    }
  return summary;
}

void wait_for_shards(const std::string& output, int64_t count, const ShardWaitOptions& o) {
  require(o.timeout_s > 0 && o.poll_s > 0, "wait_for_shards: timeout and poll interval must be positive");
  // What can be seen of a shard without opening it (HDF5 locks files that
  // another process writes): its state and its partial file's size and time.
  auto signature = [&](const std::string& partial, ShardState state) {
    std::error_code ec;
    const auto size = fs::file_size(partial, ec);
    const auto time = fs::last_write_time(partial, ec);
    return fmt::format("{}:{}:{}", static_cast<int>(state), ec ? 0 : size, ec ? 0 : time.time_since_epoch().count());
  };
  std::vector<std::string> last(static_cast<size_t>(count));
  double idle = 0.0;
  for (;;) {
    std::string unfinished;  // one line per shard not complete in this poll
    bool changed = false;
    for (int64_t r = 0; r < count; ++r) {
      const ShardSpec s{r, count};
      const ShardState state = shard_state(output, s);
      const std::string partial = FeatureWriter::partial_path(shard_path(output, s));
      const std::string sig = signature(partial, state);
      if (sig != last[r]) changed = true;
      last[r] = sig;
      if (state != ShardState::Complete)
        unfinished += fmt::format("\n  shard {}/{}: {}", r, count,
                                  state == ShardState::Missing ? "not started (" + shard_path(output, s) + " absent)"
                                                               : "unfinished, " + partial);
    }
    if (unfinished.empty()) return;
    idle = changed ? 0.0 : idle + o.poll_s;
    if (idle >= o.timeout_s)
      fail("{}: waited {:.0f} s for shards that made no progress (their rank may have died):{}\nrerun the same "
           "command: finished shards are kept, unfinished ones resume, and the merge follows",
           output, idle, unfinished);
    if (o.sleep)
      o.sleep(o.poll_s);
    else
      std::this_thread::sleep_for(std::chrono::duration<double>(o.poll_s));
  }
}


ShardPlan plan_shards(const std::string& shard, const DistEnv& env) {
  ShardPlan p;
  if (!shard.empty()) {
    p.spec = parse_shard_spec(shard);
    p.independent = true;
    return p;
  }
  p.spec = {env.rank, env.world_size};
  p.local_rank = env.local_rank;
  p.merge = env.distributed() && env.rank == 0;
  return p;
}

std::string finish_shard(const std::string& output, const ShardPlan& plan, const ShardWaitOptions& wait,
                         bool keep_shards, bool progress) {
  if (!plan.merge)
    return fmt::format("shard {}/{} done; {}", plan.spec.index, plan.spec.count,
                       plan.independent ? fmt::format("once every shard is done, merge them with: semcodec "
                                                      "merge-shards -o {} --shards {}", output, plan.spec.count)
                                        : "rank 0 merges the shards into " + output);
  if (progress) fmt::print(stderr, "waiting for the other {} shards of {}\n", plan.spec.count - 1, output);
  wait_for_shards(output, plan.spec.count, wait);
  return describe(merge_feature_shards(output, plan.spec.count, keep_shards, progress));
}

}  // namespace semcodec
