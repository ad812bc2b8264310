// Images to a feature file, independent of the model: records are decoded and
// preprocessed on a thread pool while the encoder callback embeds the previous
// batch; rows are appended in dataset order through FeatureWriter, so an
// interrupted run (kill -9 included) resumes from its `.partial` file and ends
// identical to an uninterrupted one. Unreadable images are skipped, counted
// and listed (`<out>.skipped.tsv`), never fatal.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/clip_preprocess.h"
#include "data/feature_store.h"
#include "data/image_dataset.h"
#include "data/image_decode.h"

namespace semcodec {

// Embeds a batch [B, 3, R, R] float32 (CPU) into [B, D]; any device, any float type.
using ImageEncoder = std::function<at::Tensor(const at::Tensor& batch)>;

struct ExtractionOptions {
  ClipPreprocessConfig preprocess;
  DecodeLimits limits;
  int64_t embed_dim = 0;        // D of the encoder's output (required: the writer needs it before the first batch)
  int64_t batch_size = 64;      // records per batch (a batch holds fewer rows when images are skipped)
  int decode_threads = 2;       // decode + preprocess workers
  int64_t prefetch_batches = 2; // batches decoded ahead of the encoder
  // Batches in page-locked host memory, so the encoder's copy to a GPU is a
  // DMA that need not block (only with a CUDA build; see cmd_extract).
  bool pin_memory = false;
  bool resume = true;           // continue an existing `.partial` file
  bool l2_normalize = true;     // store unit rows (the feature file's convention)
  int64_t max_batches = -1;     // stop after this many batches in this run (>= 0), leaving the partial file
  // Records [record_begin, record_end) only (record_end < 0: to the end): one
  // shard of a sharded extraction (data/extraction_shards.h). Indices stay the
  // dataset's, so skipped lists of shards concatenate into the whole set's.
  int64_t record_begin = 0, record_end = -1;
  bool progress = true;
  FeatureAttrs attrs;           // provenance; dataset/preprocessing are filled in when left "unknown"/"none"
  FeatureWriteOptions write;
};

struct SkippedImage {
  int64_t index = 0;  // record index in the dataset
  std::string id, path, reason;
};

struct ExtractionSummary {
  int64_t records = 0;        // records in the extracted range (the dataset, or one shard of it)
  int64_t rows = 0;           // rows in the feature file now
  int64_t resumed_rows = 0;   // rows that were already there when this run started
  int64_t processed = 0;      // records handled in this run (written or skipped)
  std::vector<SkippedImage> skipped;  // every skipped record so far, earlier runs included
  bool complete = false;      // the file was closed and renamed onto its final name
  double seconds = 0.0;
  double images_per_second = 0.0;  // records of this run per second
  std::string output, skipped_list;  // paths; skipped_list is empty when nothing was skipped
};

// The sidecar listing skipped images: "<out>.skipped.tsv".
std::string skipped_list_path(const std::string& output);
// Writes it atomically: a header, then "index  id  path  reason" per image.
void write_skipped_list(const std::string& path, const std::vector<SkippedImage>& skipped);
// Its entries (none when the file is absent); lines this code did not write are dropped.
std::vector<SkippedImage> read_skipped_list(const std::string& path);

ExtractionSummary extract_features(const ImageDataset& dataset, const std::string& output, const ImageEncoder& encoder,
                                   const ExtractionOptions& options);


// Decode + preprocess workers for a model on `device`: one on the CPU, where
// the model is ~50x slower than decoding and workers would take cores from
// its GEMMs; every core (up to 32) for a GPU, which needs them to keep up.
int default_decode_threads(const c10::Device& device);

}  // namespace semcodec
