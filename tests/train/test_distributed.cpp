// Data-parallel groundwork: the epoch sharding, the launch environment and
// SLURM host lists, against hand-made expectations; the gradient reducer on
// two ranks (threads of this process, Gloo over loopback) against gradients
// summed here by hand.
#include <ATen/ATen.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <exception>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "train/data_parallel.h"
#include "train/distributed_sampler.h"
#include "util/distributed_env.h"
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

namespace {
// A small MLP on explicit tensors; `unused` takes no part, as the codebook
// during the quantizer warm-up.
struct Mlp {
  std::vector<at::Tensor> params;  // p0 [64, 32], p1 [32, 32], p2 [32, 8], unused [4]
  explicit Mlp(const std::vector<at::Tensor>& init) {
    for (const auto& t : init) params.push_back(t.clone().requires_grad_());
  }
  at::Tensor loss(const at::Tensor& x) const {
    at::Tensor h = at::tanh(at::mm(x, params[0]));
    h = at::tanh(at::mm(h, params[1]));
    return at::mm(h, params[2]).pow(2).sum();
  }
};
}  // namespace

TEST_CASE("the c10d backend is checked against the device and the build before any rendezvous", "[train][dist]") {
  if (!have_gloo_backend()) {
    WARN("this build has no c10d support: backend checks skipped");
    return;
  }
  DistEnv env;
  env.rank = 1, env.world_size = 2, env.master_port = 1, env.launcher = "test";  // nobody listens on port 1
  DataParallelOptions o;
  o.timeout_seconds = 1;
  o.backend = "nccl";
  CHECK_THROWS_WITH(DataParallel::from_env(env, o),
                    Catch::Contains("rank 1 of 2") && Catch::Contains("nccl needs a CUDA device") &&
                        Catch::Contains("cpu"));
  if (!have_nccl_backend()) {
    o.device = c10::Device("cuda:1");
    CHECK_THROWS_WITH(DataParallel::from_env(env, o), Catch::Contains("no c10d NCCL backend"));
  }
  o.backend = "mpi";
  CHECK_THROWS_WITH(DataParallel::from_env(env, o), Catch::Contains("'mpi' is not auto, gloo or nccl"));
  // A single process never builds a group, whatever the backend.
  DistEnv single;
  CHECK(DataParallel::from_env(single, o) == nullptr);
}

TEST_CASE("the gradient reducer sums every gradient over ranks, sending buckets during backward", "[train][dist]") {
  at::manual_seed(11);
  const std::vector<at::Tensor> init = {at::randn({64, 32}) * 0.2, at::randn({32, 32}) * 0.2, at::randn({32, 8}) * 0.2,
                                        at::randn({4})};
  // Two steps, each with one input batch per rank.
  const std::vector<std::vector<at::Tensor>> inputs = {{at::randn({5, 64}), at::randn({7, 64})},
                                                       {at::randn({3, 64}), at::randn({6, 64})}};
  std::vector<std::vector<at::Tensor>> expected;  // per step: the summed gradient of p0..p2
  for (const auto& step : inputs) {
    Mlp m(init);
    (m.loss(step[0]) + m.loss(step[1])).backward();
    expected.push_back({m.params[0].grad().clone(), m.params[1].grad().clone(), m.params[2].grad().clone()});
  }

  const int64_t port = 20000 + getpid() % 20000;
  std::vector<std::vector<std::vector<at::Tensor>>> got(2);  // [rank][step][param]
  std::vector<int64_t> buckets(2), overlapped(2);
  std::vector<bool> unused_has_grad(2, true);
  std::vector<std::exception_ptr> errors(2);
  std::vector<std::thread> ranks;
  for (int64_t r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      try {
        DistEnv env;
        env.rank = r, env.world_size = 2, env.master_port = port, env.launcher = "test";
        DataParallelOptions o;
        o.timeout_seconds = 30;
        auto dp = DataParallel::from_env(env, o);
        REQUIRE(dp->backend() == "gloo");  // auto on the CPU
        REQUIRE(dp->buffer_device().is_cpu());
        Mlp m(init);
        // 4 KiB buckets, filled from the last parameter: {unused, p2, p1} and {p0}.
        GradientReducer reducer(*dp, m.params, 4096);
        buckets[r] = reducer.buckets();
        for (const auto& step : inputs) {
          for (auto& p : m.params) p.mutable_grad() = at::Tensor();
          m.loss(step[static_cast<size_t>(r)]).backward();
          reducer.finish();
          got[r].push_back({m.params[0].grad().clone(), m.params[1].grad().clone(), m.params[2].grad().clone()});
          overlapped[r] = reducer.overlapped_buckets();
          unused_has_grad[r] = m.params[3].grad().defined();
        }
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : ranks) t.join();
  for (auto& e : errors)
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        if (std::string(ex.what()).find("no c10d Gloo support") != std::string::npos) {
          WARN("this build has no c10d Gloo support: gradient reducer test skipped");
          return;
        }
        FAIL(ex.what());
      }
    }
  for (int64_t r = 0; r < 2; ++r) {
    INFO("rank " << r);
    CHECK(buckets[r] == 2);
    CHECK(overlapped[r] == 1);  // {p0} was sent before backward returned; the bucket with `unused` at finish()
    CHECK_FALSE(unused_has_grad[r]);
    for (size_t s = 0; s < inputs.size(); ++s)
      for (size_t p = 0; p < 3; ++p) {
        INFO("step " << s << " parameter " << p);
        const double scale = expected[s][p].abs().max().item<double>();
        CHECK((got[r][s][p] - expected[s][p]).abs().max().item<double>() <= 1e-5 * scale);
      }
  }
}
