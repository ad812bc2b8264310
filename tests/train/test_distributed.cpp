// Data-parallel groundwork: the epoch sharding, the launch environment and
// SLURM host lists, against hand-made expectations.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "train/distributed_env.h"
#include "train/distributed_sampler.h"
#include "util/error.h"

using namespace semcodec;

TEST_CASE("rank slices cover every position of an epoch exactly once, in global-batch order", "[train][dist]") {
  for (int64_t n : {1, 7, 64, 100, 1001}) {
    for (int64_t batch : {1, 5, 16, 64}) {
      for (int64_t world : {1, 2, 3, 4, 8}) {
        INFO("n " << n << " batch " << batch << " world " << world);
        std::vector<int> seen(static_cast<size_t>(n), 0);
        const int64_t steps = steps_per_epoch(n, batch);
        CHECK(steps == (n + batch - 1) / batch);
        for (int64_t s = 0; s < steps; ++s) {
          double share = 0;
          int64_t expect_begin = s * batch;
          for (int64_t r = 0; r < world; ++r) {
            const RankSlice sl = rank_slice(n, batch, s, r, world);
            // Contiguous: rank r starts where rank r - 1 ended, inside step s's batch.
            CHECK(sl.begin == expect_begin);
            CHECK(sl.end >= sl.begin);
            CHECK(sl.end <= std::min(n, (s + 1) * batch));
            CHECK(sl.batch == std::min(batch, n - s * batch));
            // Balanced: slice sizes differ by at most one row.
            CHECK(sl.rows() >= sl.batch / world);
            CHECK(sl.rows() <= (sl.batch + world - 1) / world);
            for (int64_t i = sl.begin; i < sl.end; ++i) ++seen[static_cast<size_t>(i)];
            share += sl.share();
            expect_begin = sl.end;
          }
          CHECK(expect_begin == std::min(n, (s + 1) * batch));
          CHECK(share == Approx(1.0));  // the shares weight the per-rank mean losses into the global mean
        }
        for (int c : seen) CHECK(c == 1);
      }
    }
  }
  // 10 rows, batch 4, 3 ranks by hand: step 2 holds rows 8, 9 -> ranks get [8,8), [8,9), [9,10).
  CHECK(rank_slice(10, 4, 2, 0, 3).rows() == 0);
  CHECK(rank_slice(10, 4, 2, 1, 3).begin == 8);
  CHECK(rank_slice(10, 4, 2, 2, 3).begin == 9);
  CHECK_THROWS_AS(rank_slice(10, 4, 3, 0, 3), Error);
  CHECK_THROWS_AS(rank_slice(10, 4, 0, 3, 3), Error);
}

TEST_CASE("SLURM host lists expand like scontrol show hostnames", "[train][dist]") {
  using V = std::vector<std::string>;
  CHECK(expand_slurm_nodelist("gpu5") == V{"gpu5"});
  CHECK(expand_slurm_nodelist("node[01-03,07],gpu5") == V{"node01", "node02", "node03", "node07", "gpu5"});
  CHECK(expand_slurm_nodelist("a[8-10]") == V{"a8", "a9", "a10"});
  CHECK(expand_slurm_nodelist("x[1],y[002-003]") == V{"x1", "y002", "y003"});
  CHECK_THROWS_WITH(expand_slurm_nodelist("node[01-03"), Catch::Contains("node[01-03"));
  CHECK_THROWS_AS(expand_slurm_nodelist("node[3-1]"), Error);
  CHECK_THROWS_AS(expand_slurm_nodelist("node[a-b]"), Error);
}

TEST_CASE("the launch environment comes from torchrun's or SLURM's variables", "[train][dist]") {
  auto env = [](std::map<std::string, std::string> vars) {
    return dist_env_from([vars](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    });
  };
  const DistEnv none = env({});
  CHECK_FALSE(none.distributed());
  CHECK(none.launcher == "none");

  const DistEnv t = env({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "10.0.0.2"},
                         {"MASTER_PORT", "29400"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "9"}});
  CHECK(t.launcher == "torchrun");
  CHECK(t.rank == 3);
  CHECK(t.world_size == 4);
  CHECK(t.local_rank == 1);
  CHECK(t.master_addr == "10.0.0.2");
  CHECK(t.master_port == 29400);
  CHECK(t.distributed());

  const DistEnv s = env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                         {"SLURM_JOB_NODELIST", "gpu[12-15]"}});
  CHECK(s.launcher == "slurm");
  CHECK(s.rank == 5);
  CHECK(s.world_size == 8);
  CHECK(s.local_rank == 1);
  CHECK(s.master_addr == "gpu12");

  CHECK_THROWS_WITH(env({{"RANK", "4"}, {"WORLD_SIZE", "4"}}), Catch::Contains("RANK"));
  CHECK_THROWS_WITH(env({{"RANK", "x"}, {"WORLD_SIZE", "4"}}), Catch::Contains("RANK='x'"));
  CHECK_THROWS_WITH(env({{"RANK", "0"}}), Catch::Contains("WORLD_SIZE"));
  CHECK_THROWS_WITH(env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}),
                    Catch::Contains("MASTER_PORT"));
}
