#include "data/extraction.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/progress.h"

namespace semcodec {

std::string skipped_list_path(const std::string& output) { return output + ".skipped.tsv"; }

namespace {

std::string state_path(const std::string& output) { return FeatureWriter::partial_path(output) + ".json"; }

// One record after decode + preprocess.
struct Decoded {
  bool ok = false;
  std::vector<float> pixels;  // [3, R, R]
  int32_t height = 0, width = 0;
  std::string error;
};

Decoded decode_record(const ImageRecord& record, const ClipPreprocessConfig& pre, const DecodeLimits& limits) {
  Decoded d;
  try {
    Image image = read_image(record.path, limits);
    d.height = static_cast<int32_t>(image.height);
    d.width = static_cast<int32_t>(image.width);
    Image rgb = clip_resize_crop_rgb(image, pre);
    d.pixels.resize(static_cast<size_t>(3 * pre.resolution * pre.resolution));
    normalize_rgb_into(rgb, pre, d.pixels.data());
    d.ok = true;
  } catch (const std::bad_alloc&) {
    d.error = fmt::format("{}: out of memory while decoding", record.path);
  } catch (const std::exception& e) {
    d.error = e.what();
  }
  return d;
}

// Decodes records [begin, end) on worker threads, grouped in batches of
// `batch` records on the dataset's grid (batch k starts at a multiple of
// `batch`), at most `prefetch` batches ahead of the consumer.
class DecodePool {
 public:
  DecodePool(const ImageDataset& dataset, int64_t begin, int64_t end, int64_t batch, int threads, int64_t prefetch,
             const ClipPreprocessConfig& pre, const DecodeLimits& limits)
      : dataset_(dataset), begin_(begin), end_(end), batch_(batch), prefetch_(prefetch), pre_(pre), limits_(limits),
        next_(begin), first_batch_(begin / batch) {
    for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  }
  ~DecodePool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  DecodePool(const DecodePool&) = delete;
  DecodePool& operator=(const DecodePool&) = delete;

  int64_t batch_begin(int64_t k) const { return std::max(begin_, k * batch_); }
  int64_t batch_end(int64_t k) const { return std::min(end_, (k + 1) * batch_); }
  int64_t first_batch() const { return first_batch_; }
  int64_t last_batch() const { return (end_ - 1) / batch_; }  // inclusive

  // Blocks until batch k is decoded; batches must be taken in order.
  std::vector<Decoded> take(int64_t k) {
    std::unique_lock<std::mutex> lock(mutex_);
    Slot& slot = slot_for(k);
    done_cv_.wait(lock, [&] { return slot.remaining == 0; });
    std::vector<Decoded> items = std::move(slot.items);
    slots_.erase(k);
    taken_ = k + 1;
    lock.unlock();
    work_cv_.notify_all();
    return items;
  }

 private:
  struct Slot {
    std::vector<Decoded> items;
    int64_t remaining = 0;
  };

  Slot& slot_for(int64_t k) {
    auto it = slots_.find(k);
    if (it == slots_.end()) {
      Slot s;
      s.remaining = batch_end(k) - batch_begin(k);
      s.items.resize(static_cast<size_t>(s.remaining));
      it = slots_.emplace(k, std::move(s)).first;
    }
    return it->second;
  }

  void work() {
    for (;;) {
      int64_t index = 0, k = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_cv_.wait(lock, [&] {
          return stop_ || next_ >= end_ || next_ / batch_ < std::max(taken_, first_batch_) + prefetch_ + 1;
        });
        if (stop_ || next_ >= end_) return;
        index = next_++;
        k = index / batch_;
        slot_for(k);
      }
      Decoded d = decode_record(dataset_.records[static_cast<size_t>(index)], pre_, limits_);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        Slot& slot = slots_.at(k);
        slot.items[static_cast<size_t>(index - batch_begin(k))] = std::move(d);
        if (--slot.remaining == 0) done_cv_.notify_all();
      }
    }
  }

  const ImageDataset& dataset_;
  const int64_t begin_, end_, batch_, prefetch_;
  const ClipPreprocessConfig pre_;
  const DecodeLimits limits_;
  std::mutex mutex_;
  std::condition_variable work_cv_, done_cv_;
  std::map<int64_t, Slot> slots_;
  int64_t next_, taken_ = 0, first_batch_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

std::string tsv_field(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

// What a partial file was made with: a resumed run must match it.
nlohmann::json run_fingerprint(const ImageDataset& dataset, const ExtractionOptions& o, const FeatureAttrs& attrs) {
  return {{"dataset", attrs.dataset},      {"split", attrs.split},         {"encoder_model", attrs.encoder_model},
          {"preprocessing", attrs.preprocessing}, {"embed_dim", o.embed_dim}, {"records", dataset.records.size()},
          {"batch_size", o.batch_size},    {"l2_normalize", o.l2_normalize},
          {"record_begin", o.record_begin}, {"record_end", o.record_end}};
}

void check_fingerprint(const std::string& output, const nlohmann::json& now) {
  const std::string path = state_path(output);
  if (!file_exists(path)) return;
  nlohmann::json before;
  try {
    before = nlohmann::json::parse(read_file(path));
  } catch (const std::exception& e) {
    fail("{}: unreadable extraction state ({}); delete it and {} to start over", path, e.what(),
         FeatureWriter::partial_path(output));
  }
  for (auto it = now.begin(); it != now.end(); ++it) {
    if (!before.contains(it.key()) || before[it.key()] != it.value())
      fail("{}: cannot resume: the partial file was made with {} = {}, this run uses {} (delete {} to start over, "
           "or run without resume)",
           output, it.key(), before.contains(it.key()) ? before[it.key()].dump() : "(unset)", it.value().dump(),
           FeatureWriter::partial_path(output));
  }
}

}  // namespace

void write_skipped_list(const std::string& path, const std::vector<SkippedImage>& skipped) {
  std::string text = "index\tid\tpath\treason\n";
  for (const auto& s : skipped)
    text += fmt::format("{}\t{}\t{}\t{}\n", s.index, tsv_field(s.id), tsv_field(s.path), tsv_field(s.reason));
  write_file_atomic(path, text);
}

std::vector<SkippedImage> read_skipped_list(const std::string& path) {
  std::vector<SkippedImage> out;
  std::ifstream in(path);
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      continue;
    }
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) f.push_back(field);
    if (f.size() < 4) continue;
    try {
      out.push_back({std::stoll(f[0]), f[1], f[2], f[3]});
    } catch (const std::exception&) {
      // A line this code did not write: the record is redone.
    }
  }
  return out;
}

ExtractionSummary extract_features(const ImageDataset& dataset, const std::string& output, const ImageEncoder& encoder,
                                   const ExtractionOptions& o) {
  validate_dataset(dataset);
  require(!dataset.records.empty(), "extract: dataset '{}' has no images", dataset.name);
  require(!dataset.class_names.empty(), "extract: dataset '{}' has no class names", dataset.name);
  require(o.embed_dim > 0, "extract: embed_dim must be positive, got {}", o.embed_dim);
  require(o.batch_size > 0, "extract: batch_size must be positive, got {}", o.batch_size);
  require(o.decode_threads >= 1 && o.decode_threads <= 256, "extract: decode_threads must be in [1, 256], got {}",
          o.decode_threads);
  require(o.prefetch_batches >= 0, "extract: prefetch_batches must be >= 0, got {}", o.prefetch_batches);
  require(static_cast<bool>(encoder), "extract: no encoder");
  const int64_t n = static_cast<int64_t>(dataset.records.size());
  const int64_t range_end = o.record_end < 0 ? n : o.record_end;
  require(o.record_begin >= 0 && o.record_begin < range_end && range_end <= n,
          "extract: record range [{}, {}) is not a non-empty part of the {} records of '{}'", o.record_begin, range_end,
          n, dataset.name);

  FeatureAttrs attrs = o.attrs;
  if (attrs.dataset == "unknown") attrs.dataset = dataset.name;
  if (attrs.split == "all") attrs.split = dataset.split;
  if (attrs.preprocessing == "none") attrs.preprocessing = preprocessing_name(o.preprocess);

  const auto t0 = std::chrono::steady_clock::now();
  const std::string partial = FeatureWriter::partial_path(output);
  const std::string sidecar = skipped_list_path(output);
  const nlohmann::json fingerprint = run_fingerprint(dataset, o, attrs);
  const bool resuming = o.resume && file_exists(partial);
  if (resuming) check_fingerprint(output, fingerprint);

  FeatureWriter writer(output, o.embed_dim, attrs, o.write, o.resume);
  writer.set_classes(dataset.class_names);
  if (!resuming) {
    write_file_atomic(state_path(output), fingerprint.dump(2) + "\n");
    if (file_exists(sidecar)) std::remove(sidecar.c_str());  // from an older, unrelated run
  }

  ExtractionSummary summary;
  summary.records = range_end - o.record_begin;
  summary.output = output;
  summary.resumed_rows = writer.rows();

  // Where to continue: after the record of the last committed row, or of the
  // last recorded skip when a batch ended in unreadable images (batches are
  // appended before their skips are listed, so both mark finished batches).
  // Records before it without a row were skipped by an earlier run.
  int64_t start = o.record_begin;
  if (resuming) {
    std::unordered_map<std::string, int64_t> index_of;
    index_of.reserve(dataset.records.size());
    for (int64_t i = 0; i < n; ++i) index_of.emplace(dataset.records[i].id, i);
    const std::vector<std::string> ids = writer.ids();
    std::vector<char> written(static_cast<size_t>(n), 0);
    int64_t previous = o.record_begin - 1;
    for (size_t r = 0; r < ids.size(); ++r) {
      auto it = index_of.find(ids[r]);
      if (it == index_of.end())
        fail("{}: row {} of the partial file has id '{}', which is not in dataset '{}'; delete {} to start over",
             output, r, ids[r], dataset.name, partial);
      if (it->second >= range_end)
        fail("{}: row {} of the partial file ('{}', record {}) is outside this run's records [{}, {}); delete {} to "
             "start over", output, r, ids[r], it->second, o.record_begin, range_end, partial);
      if (it->second <= previous)
        fail("{}: row {} of the partial file ('{}') is out of dataset order; delete {} to start over", output, r,
             ids[r], partial);
      previous = it->second;
      written[static_cast<size_t>(previous)] = 1;
    }
    start = previous + 1;
    std::unordered_map<std::string, std::string> reasons;
    for (const SkippedImage& e : read_skipped_list(sidecar)) {
      if (e.index < o.record_begin || e.index >= range_end || dataset.records[e.index].id != e.id) continue;
      reasons[e.id] = e.reason;
      start = std::max(start, e.index + 1);
    }
    for (int64_t i = o.record_begin; i < start; ++i) {
      if (written[static_cast<size_t>(i)]) continue;
      const ImageRecord& rec = dataset.records[i];
      auto it = reasons.find(rec.id);
      summary.skipped.push_back({i, rec.id, rec.path, it != reasons.end() ? it->second : "skipped by an earlier run"});
    }
  }

  const int64_t r = o.preprocess.resolution;
  const int64_t image_floats = 3 * r * r;
  int64_t batches_run = 0;
  bool stopped_early = false;
  if (start < range_end) {
    // The first batch restarts on the batch grid, so every batch the encoder
    // sees holds the same images as in an uninterrupted run; rows of records
    // before `start` are already in the file and are not appended again.
    // Shards begin on the grid too (shard_range), so a sharded extraction
    // feeds the encoder the same batches as a single-process one.
    const int64_t grid_begin = std::max(o.record_begin, start / o.batch_size * o.batch_size);
    DecodePool pool(dataset, grid_begin, range_end, o.batch_size, o.decode_threads, o.prefetch_batches, o.preprocess, o.limits);
    ProgressBar bar("extract " + dataset.name, range_end - grid_begin, "img", o.progress);
    for (int64_t k = pool.first_batch(); k <= pool.last_batch(); ++k) {
      if (o.max_batches >= 0 && batches_run >= o.max_batches) {
        stopped_early = true;
        break;
      }
      const int64_t b0 = pool.batch_begin(k);
      std::vector<Decoded> items = pool.take(k);
      std::vector<int64_t> ok;
      bool new_skips = false;
      for (size_t j = 0; j < items.size(); ++j) {
        const int64_t index = b0 + static_cast<int64_t>(j);
        if (items[j].ok) {
          ok.push_back(static_cast<int64_t>(j));
        } else if (index >= start) {
          const ImageRecord& rec = dataset.records[index];
          summary.skipped.push_back({index, rec.id, rec.path, items[j].error});
          new_skips = true;
        }
      }
      if (!ok.empty()) {
        const int64_t m = static_cast<int64_t>(ok.size());
        at::Tensor batch = at::empty({m, 3, r, r}, at::TensorOptions().dtype(at::kFloat).pinned_memory(o.pin_memory));
        for (int64_t i = 0; i < m; ++i)
          std::memcpy(batch.data_ptr<float>() + i * image_floats, items[ok[i]].pixels.data(), image_floats * sizeof(float));
        at::Tensor emb = encoder(batch);
        require(emb.defined() && emb.dim() == 2 && emb.size(0) == m && emb.size(1) == o.embed_dim,
                "extract: the encoder returned {} for a batch of {} images; expected [{}, {}]",
                emb.defined() ? fmt::format("a {}-d tensor", emb.dim()) : "nothing", m, m, o.embed_dim);
        emb = emb.to(at::kCPU).to(at::kFloat);
        require(at::isfinite(emb).all().item<bool>(), "extract: the encoder returned NaN/Inf for batch {}", k);
        if (o.l2_normalize) {
          at::Tensor norms = emb.norm(2, {1}, true);
          require(norms.gt(0).all().item<bool>(), "extract: the encoder returned a zero embedding in batch {}", k);
          emb = emb / norms;
        }
        // Keep only rows of records not yet in the file.
        std::vector<int64_t> keep;
        std::vector<int64_t> labels;
        std::vector<int32_t> sizes;
        std::vector<std::string> ids;
        for (int64_t i = 0; i < m; ++i) {
          const int64_t index = b0 + ok[i];
          if (index < start) continue;
          keep.push_back(i);
          labels.push_back(dataset.records[index].label);
          ids.push_back(dataset.records[index].id);
          sizes.push_back(items[ok[i]].height);
          sizes.push_back(items[ok[i]].width);
        }
        if (!keep.empty()) {
          const int64_t kn = static_cast<int64_t>(keep.size());
          at::Tensor rows = kn == m ? emb : emb.index_select(0, at::tensor(keep, at::kLong));
          writer.append(rows, at::tensor(labels, at::kLong), ids, at::tensor(sizes, at::kInt).view({kn, 2}));
        }
      }
      if (new_skips) write_skipped_list(sidecar, summary.skipped);
      summary.processed += pool.batch_end(k) - std::max(b0, start);
      ++batches_run;
      bar.set_postfix(summary.skipped.empty() ? std::string() : fmt::format("skipped {}", summary.skipped.size()));
      bar.advance(static_cast<int64_t>(items.size()));
    }
    if (!stopped_early) bar.finish();
  }

  summary.rows = writer.rows();
  if (!summary.skipped.empty()) {
    write_skipped_list(sidecar, summary.skipped);
    summary.skipped_list = sidecar;
  } else if (file_exists(sidecar) && !stopped_early) {
    std::remove(sidecar.c_str());
  }
  if (!stopped_early) {
    if (writer.rows() == 0)
      fail("{}: none of the {} images of '{}' could be decoded (see {})", output, summary.records, dataset.name,
           sidecar);
    writer.close();
    std::remove(state_path(output).c_str());
    summary.complete = true;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  summary.images_per_second = summary.seconds > 0 ? summary.processed / summary.seconds : 0.0;
  return summary;
}


int default_decode_threads(const c10::Device& device) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return device.is_cuda() ? std::min(cores, 32) : 1;
}

}  // namespace semcodec
