// Sharded extraction: shard ranges checked against a brute-force enumeration
// of the batch grid; N shards merged equal the single-process file row for
// row (rows, ids, labels, sizes, skipped list); a shard left unfinished (a
// dead rank) blocks the merge with its name, is reported by the wait after
// its timeout, and a rerun completes it to the same file; shards of different
// extractions or overlapping shards are refused.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "data/extraction.h"
#include "data/extraction_shards.h"
#include "data/feature_store.h"
#include "extraction_fixture.h"
#include "test_support.h"
#include "util/atomic_file.h"

using namespace semcodec;
using test::fake_encoder;
using test::require_same_file;
using Fixture = test::ExtractionFixture;
namespace fs = std::filesystem;

namespace {

// Shard `s` of the fixture's dataset (batch 4) into its shard file.
ExtractionSummary extract_shard(const Fixture& fx, const std::string& out, ShardSpec s, int64_t max_batches = -1) {
  ExtractionOptions o = fx.options();
  const RecordRange r = shard_range(static_cast<int64_t>(fx.dataset.records.size()), o.batch_size, s);
  o.record_begin = r.begin;
  o.record_end = r.end;
  o.max_batches = max_batches;
  return extract_features(fx.dataset, shard_path(out, s), fake_encoder, o);
}

}  // namespace

TEST_CASE("shard specs parse R/N and refuse anything else", "[extract][shards]") {
  const ShardSpec s = parse_shard_spec("3/8");
  CHECK(s.index == 3);
  CHECK(s.count == 8);
  CHECK(parse_shard_spec("0/1").count == 1);
  for (const char* bad : {"8/8", "-1/2", "1/0", "a/b", "1/", "/2", "1/2x", "12", ""})
    CHECK_THROWS_WITH(parse_shard_spec(bad), Catch::Contains("expected R/N"));
}

TEST_CASE("shard ranges cover every record once in whole batches of the grid", "[extract][shards]") {
  for (int64_t n = 1; n <= 40; ++n)
    for (int64_t b = 1; b <= 7; ++b) {
      const int64_t batches = (n + b - 1) / b;
      for (int64_t count = 1; count <= std::min<int64_t>(batches, 6); ++count) {
        std::vector<int> covered(static_cast<size_t>(n), 0);
        int64_t min_batches = batches, max_batches = 0;
        for (int64_t r = 0; r < count; ++r) {
          const RecordRange range = shard_range(n, b, {r, count});
          INFO("n " << n << " batch " << b << " shard " << r << "/" << count);
          REQUIRE(range.begin < range.end);
          CHECK(range.begin % b == 0);                  // starts on the grid
          CHECK((range.end % b == 0 || range.end == n)); // ends on it or at the last record
          for (int64_t i = range.begin; i < range.end; ++i) ++covered[static_cast<size_t>(i)];
          const int64_t nb = (range.end - range.begin + b - 1) / b;
          min_batches = std::min(min_batches, nb);
          max_batches = std::max(max_batches, nb);
        }
        CHECK(std::all_of(covered.begin(), covered.end(), [](int c) { return c == 1; }));
        CHECK(max_batches - min_batches <= 1);
      }
      CHECK_THROWS_WITH(shard_range(n, b, {0, batches + 1}), Catch::Contains("at least one"));
    }
  CHECK(shard_path("/x/feat.h5", {1, 2}) == "/x/feat.shard-1-of-2.h5");
  CHECK(shard_path("feat.h5", {0, 16}) == "feat.shard-0-of-16.h5");
}

TEST_CASE("merged shards equal the single-process extraction row for row", "[extract][shards]") {
  Fixture fx;
  const std::string ref = fx.dir.file("ref.h5");
  extract_features(fx.dataset, ref, fake_encoder, fx.options());
  const std::string ref_skipped = read_file(skipped_list_path(ref));

  for (int64_t count : {2, 3, 8}) {
    const std::string out = fx.dir.file("sharded" + std::to_string(count) + ".h5");
    int64_t rows = 0;
    for (int64_t r = count; r-- > 0;) {  // in any order
      const ExtractionSummary s = extract_shard(fx, out, {r, count});
      CHECK(s.complete);
      rows += s.rows;
      CHECK(shard_state(out, {r, count}) == ShardState::Complete);
    }
    CHECK(rows == 27);
    const ShardMergeSummary m = merge_feature_shards(out, count, /*keep_shards=*/count == 3, false);
    CHECK(m.rows == 27);
    CHECK(m.skipped == 4);
    require_same_file(ref, out);
    CHECK(read_feature_file(out).attrs.encoder_model == "fake-meanpool");
    CHECK(read_file(skipped_list_path(out)) == ref_skipped);  // global record indices, in order
    for (int64_t r = 0; r < count; ++r) {
      const std::string shard = shard_path(out, {r, count});
      CHECK(file_exists(shard) == (count == 3));
      if (count != 3) CHECK_FALSE(file_exists(skipped_list_path(shard)));
    }
  }
}

TEST_CASE("a dead rank's shard blocks the merge until a rerun completes it", "[extract][shards]") {
  Fixture fx;
  const std::string ref = fx.dir.file("ref.h5");
  extract_features(fx.dataset, ref, fake_encoder, fx.options());
  const std::string out = fx.dir.file("out.h5");

  extract_shard(fx, out, {0, 2});
  CHECK_THROWS_WITH(merge_feature_shards(out, 2, false, false),
                    Catch::Contains("shard 1/2") && Catch::Contains("does not exist"));
  // Rank 1 dies after one batch: its partial file stays.
  CHECK_FALSE(extract_shard(fx, out, {1, 2}, 1).complete);
  CHECK(shard_state(out, {1, 2}) == ShardState::Partial);
  CHECK_THROWS_WITH(merge_feature_shards(out, 2, false, false),
                    Catch::Contains("shard 1/2 is unfinished") && Catch::Contains(".partial"));
  CHECK_FALSE(file_exists(out));

  // Rank 0 waits, sees no progress and gives up after the timeout, naming the shard.
  ShardWaitOptions w;
  w.timeout_s = 5;
  int polls = 0;
  w.sleep = [&](double) { ++polls; };
  CHECK_THROWS_WITH(wait_for_shards(out, 2, w),
                    Catch::Contains("no progress") && Catch::Contains("shard 1/2: unfinished"));
  CHECK(polls == 5);
  CHECK_THROWS_WITH(wait_for_shards(out, 3, w), Catch::Contains("shard 2/3: not started"));

  // While the shard keeps growing the wait goes on past the timeout: each
  // poll lets rank 1 embed one more batch (3 left), with a timeout of 2 polls.
  polls = 0;
  w.timeout_s = 2;
  w.sleep = [&](double) {
    ++polls;
    extract_shard(fx, out, {1, 2}, 1);
  };
  wait_for_shards(out, 2, w);
  CHECK(polls == 3);
  CHECK(shard_state(out, {1, 2}) == ShardState::Complete);
  merge_feature_shards(out, 2, false, false);
  require_same_file(ref, out);
}

TEST_CASE("shards of different extractions or overlapping shards are not merged", "[extract][shards]") {
  Fixture fx;
  const std::string out = fx.dir.file("out.h5");
  extract_shard(fx, out, {0, 2});
  SECTION("another encoder") {
    ExtractionOptions o = fx.options();
    o.attrs.encoder_model = "another-model";
    const RecordRange r = shard_range(static_cast<int64_t>(fx.dataset.records.size()), 4, {1, 2});
    o.record_begin = r.begin;
    o.record_end = r.end;
    extract_features(fx.dataset, shard_path(out, {1, 2}), fake_encoder, o);
    CHECK_THROWS_WITH(merge_feature_shards(out, 2, false, false),
                      Catch::Contains("encoder model 'another-model'") && Catch::Contains("not from one extraction"));
  }
  SECTION("the same rows twice") {
    fs::copy_file(shard_path(out, {0, 2}), shard_path(out, {1, 2}));
    CHECK_THROWS_WITH(merge_feature_shards(out, 2, false, false), Catch::Contains("more than one shard"));
  }
  CHECK_FALSE(file_exists(out));
  CHECK_FALSE(file_exists(FeatureWriter::partial_path(out)));
  CHECK(file_exists(shard_path(out, {0, 2})));  // nothing is removed when the merge is refused
}

TEST_CASE("a record range outside the dataset is refused", "[extract][shards]") {
  Fixture fx;
  ExtractionOptions o = fx.options();
  o.record_begin = 10;
  o.record_end = 10;
  CHECK_THROWS_WITH(extract_features(fx.dataset, fx.dir.file("a.h5"), fake_encoder, o),
                    Catch::Contains("record range [10, 10)"));
  o.record_end = 1000;
  CHECK_THROWS_WITH(extract_features(fx.dataset, fx.dir.file("a.h5"), fake_encoder, o),
                    Catch::Contains("31 records"));
}
