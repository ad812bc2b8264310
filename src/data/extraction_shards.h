// Sharded extraction: N processes (ranks of one job, or independent jobs)
// each embed one contiguous run of batches into their own shard file, and a
// merge writes the shards, in order, into the one feature file a
// single-process extraction would have written, row for row. Each shard is an
// ordinary resumable extraction, so a rank that dies loses only the unfinished
// part of its own shard: rerunning finishes it from its `.partial` file.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/distributed_env.h"

namespace semcodec {

struct ShardSpec {
  int64_t index = 0, count = 1;
};

// "R/N" with 0 <= R < N.
ShardSpec parse_shard_spec(const std::string& text);

struct RecordRange {
  int64_t begin = 0, end = 0;
};

// The records of shard `index` of `count`: whole batches of the dataset's
// batch grid, split as evenly as the batch count allows, so every shard feeds
// the encoder the very batches a single process would. Needs count <= the
// number of batches (every shard gets at least one).
RecordRange shard_range(int64_t records, int64_t batch_size, ShardSpec shard);

// "<out>" -> "<stem>.shard-R-of-N<ext>" beside it (features.h5 -> features.shard-0-of-2.h5).
std::string shard_path(const std::string& output, ShardSpec shard);

enum class ShardState { Missing, Partial, Complete };
ShardState shard_state(const std::string& output, ShardSpec shard);

struct ShardMergeSummary {
  int64_t shards = 0, rows = 0, skipped = 0;
  std::string output, skipped_list;  // skipped_list is empty when no shard skipped an image
};

// "merged 2 shards into out.h5: 40 rows (3 images skipped, listed in ...)".
std::string describe(const ShardMergeSummary& merge);

// Writes the complete shards 0..count-1 of `output` into `output` (atomically:
// a partial file renamed at the end), with their skipped-image lists
// concatenated into `<output>.skipped.tsv`, and then, unless keep_shards,
// removes the shards. Refuses, naming the shard, when one is missing or
// unfinished, or when shards disagree on what they hold (dimension, storage
// type, classes, encoder, dataset, preprocessing) or overlap.
ShardMergeSummary merge_feature_shards(const std::string& output, int64_t count, bool keep_shards = false,
                                       bool progress = true);

struct ShardWaitOptions {
  double timeout_s = 600.0;  // give up when no unfinished shard's files change for this long
  double poll_s = 1.0;
  std::function<void(double seconds)> sleep;  // defaults to std::this_thread::sleep_for
};

// Blocks until every shard of `output` is complete. Progress is read off the
// shards' files (their partial files grow with every batch), so ranks need no
// connection to each other beyond a shared file system. Throws, naming the
// stalled shards and the command that finishes them, after timeout_s without
// progress.
void wait_for_shards(const std::string& output, int64_t count, const ShardWaitOptions& options = {});


// Which part of the images this process embeds, and whether it merges the
// shards afterwards. An explicit "R/N" (`shard`: independent jobs, e.g. a
// SLURM array) embeds shard R and nobody merges (`semcodec merge-shards`
// does); otherwise the job's ranks decide (semcodec launch, torchrun, srun):
// rank R of N embeds shard R, and rank 0 waits for the others and merges.
struct ShardPlan {
  ShardSpec spec;
  int64_t local_rank = 0;
  bool merge = false;        // this process merges the shards once they are complete
  bool independent = false;  // an explicit R/N: the shards are merged by hand
  bool sharded() const { return spec.count > 1; }
};
ShardPlan plan_shards(const std::string& shard, const DistEnv& env);

// After this process's shard of `output` is complete: the merging rank waits
// for the other shards and merges them (telling stderr while it waits when
// `progress`); every other process is told what happens next. Returns the line
// to report.
std::string finish_shard(const std::string& output, const ShardPlan& plan, const ShardWaitOptions& wait,
                         bool keep_shards, bool progress);

}  // namespace semcodec
