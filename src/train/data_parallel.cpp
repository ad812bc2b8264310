#include "train/data_parallel.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <chrono>

#include "util/error.h"

#ifdef SEMCODEC_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "train/c10d_backend.h"
#endif

namespace semcodec {

bool have_gloo_backend() {
#ifdef SEMCODEC_HAVE_C10D_GLOO
  return true;
#else
  return false;
#endif
}

bool have_nccl_backend() {
#ifdef SEMCODEC_HAVE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

#ifdef SEMCODEC_HAVE_C10D_GLOO
namespace {
// The backend a run asks for, checked against the device and this build.
std::string choose_backend(const DistEnv& env, const DataParallelOptions& o) {
  const std::string where = fmt::format("rank {} of {}", env.rank, env.world_size);
  if (o.backend == "auto") return o.device.is_cuda() && have_nccl_backend() ? "nccl" : "gloo";
  if (o.backend == "gloo") return "gloo";
  require(o.backend == "nccl", "{}: train.dist_backend '{}' is not auto, gloo or nccl", where, o.backend);
  require(o.device.is_cuda(), "{}: train.dist_backend nccl needs a CUDA device (train.device is {})", where,
          o.device.str());
  require(have_nccl_backend(),
          "{}: train.dist_backend nccl: this build of semcodec has no c10d NCCL backend (build against a LibTorch "
          "with CUDA and NCCL; see docs/distributed.md), or use gloo",
          where);
  return "nccl";
}

// Runs one collective step (starting it, or starting and waiting for it); an
// exception (a peer died or timed out) becomes an error naming this rank.
template <class Step>
auto collective(const DataParallel& dp, const char* what, Step&& step) {
  try {
    return step();
  } catch (const std::exception& e) {
    fail("rank {} of {}: {} failed (a peer died or timed out): {}", dp.rank(), dp.world_size(), what, e.what());
  }
}
}  // namespace

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<C10dBackend> pg;
  c10::Device device = c10::Device(c10::kCPU);  // where collective buffers live
  c10d::BarrierOptions barrier_options;
};

std::unique_ptr<DataParallel> DataParallel::from_env(const DistEnv& env, const DataParallelOptions& o) {
  if (!env.distributed()) return nullptr;
  require(o.timeout_seconds > 0, "train.dist_timeout_s must be > 0");
  const std::string backend = choose_backend(env, o);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_seconds * 1000));
  auto g = std::make_unique<Group>();
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<int>(env.world_size);
    so.timeout = timeout;
    g->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    if (backend == "nccl") {
#ifdef SEMCODEC_HAVE_C10D_NCCL
      const int index = o.device.has_index() ? o.device.index() : 0;
      g->pg = make_nccl_backend(g->store, static_cast<int>(env.rank), static_cast<int>(env.world_size), timeout, index);
      g->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
      // NCCL's barrier runs a collective on a device; name ours, not rank % GPUs.
      g->barrier_options.device_ids = {index};
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create();
      opts->timeout = timeout;
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, static_cast<int>(env.rank),
                                                           static_cast<int>(env.world_size), opts);
    }
  } catch (const std::exception& e) {
    fail("rank {} of {}: cannot join the {} process group at {}:{} ({} s timeout): {}", env.rank, env.world_size,
         backend, env.master_addr, env.master_port, o.timeout_seconds, e.what());
  }
  return std::unique_ptr<DataParallel>(new DataParallel(env, backend, std::move(g)));
}

c10::Device DataParallel::buffer_device() const { return group_->device; }

void DataParallel::broadcast(const std::vector<at::Tensor>& tensors) {
  for (const at::Tensor& t : tensors) {
    if (!t.defined()) continue;
    // The collective runs on the group's buffer device (the host for Gloo);
    // tensors elsewhere go through a copy.
    const c10::Device& dev = group_->device;
    at::Tensor buf = t.device() == dev && t.is_contiguous() ? t : t.to(dev).contiguous();
    std::vector<at::Tensor> v = {buf};
    collective(*this, "broadcast", [&] { group_->pg->broadcast(v)->wait(); });
    if (!buf.is_same(t)) {
      at::NoGradGuard g;
      t.copy_(buf);
    }
  }
}

void DataParallel::allreduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  // Tensors of one dtype, flattened into one buffer on the group's device: one collective.
  auto reduce = [&](const std::vector<at::Tensor>& group) {
    std::vector<at::Tensor> flat;
    for (const at::Tensor& t : group) flat.push_back(t.detach().to(group_->device).reshape({-1}));
    std::vector<at::Tensor> buf = {at::cat(flat)};
    collective(*this, "all-reduce", [&] { group_->pg->allreduce(buf)->wait(); });
    int64_t off = 0;
    at::NoGradGuard g;
    for (const at::Tensor& t : group) {
      t.copy_(buf[0].narrow(0, off, t.numel()).view(t.sizes()));
      off += t.numel();
    }
  };
  // float32 tensors travel in buckets of up to bucket_bytes.
  std::vector<at::Tensor> bucket;
  int64_t bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    reduce(bucket);
    bucket.clear();
    bytes = 0;
  };
  for (const at::Tensor& t : tensors) {
    if (!t.defined()) continue;
    require(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble || t.scalar_type() == at::kLong,
            "allreduce_sum: unsupported dtype {}", c10::toString(t.scalar_type()));
    if (t.scalar_type() != at::kFloat) {  // metrics and counts: one collective each
      reduce({t});
      continue;
    }
    bucket.push_back(t);
    bytes += t.numel() * 4;
    if (bytes >= bucket_bytes) flush();
  }
  flush();
}

void DataParallel::barrier() {
  collective(*this, "barrier", [&] { group_->pg->barrier(group_->barrier_options)->wait(); });
}
struct GradientReducer::State {
  using Work = decltype(std::declval<C10dBackend&>().allreduce(std::declval<std::vector<at::Tensor>&>()));
  struct Bucket {
    std::vector<size_t> members;  // indices into params
    std::vector<int64_t> offsets;
    at::Tensor buffer;            // float32, on the group's buffer device
    size_t waiting = 0;
    std::vector<char> got;
    Work work;
    bool launched = false;
  };
  DataParallel* dp = nullptr;
  std::vector<at::Tensor> params;
  std::vector<unsigned> hooks;
  std::vector<std::pair<size_t, size_t>> slot;  // param -> (bucket, member)
  std::vector<Bucket> buckets;
  int64_t overlapped = 0, overlapped_last = 0;

  void launch(Bucket& b) {
    std::vector<at::Tensor> v = {b.buffer};
    b.work = collective(*dp, "gradient all-reduce", [&] { return dp->group_->pg->allreduce(v); });
    b.launched = true;
  }

  void ready(size_t param, const at::Tensor& grad) {
    auto [bi, mi] = slot[param];
    Bucket& b = buckets[bi];
    if (b.launched || b.got[mi]) return;  // a second backward before finish(): the first one's sums stand
    at::NoGradGuard g;
    b.buffer.narrow(0, b.offsets[mi], grad.numel()).copy_(grad.detach().reshape({-1}));
    b.got[mi] = 1;
    if (--b.waiting == 0) {
      launch(b);
      ++overlapped;
    }
  }
};

GradientReducer::GradientReducer(DataParallel& dp, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.dp = &dp;
  s.params = std::move(params);
  s.slot.resize(s.params.size());
  int64_t bytes = 0;
  for (size_t i = s.params.size(); i-- > 0;) {
    const at::Tensor& p = s.params[i];
    require(p.scalar_type() == at::kFloat, "GradientReducer: parameter {} is {}, not float32", i,
            c10::toString(p.scalar_type()));
    if (s.buckets.empty() || bytes >= bucket_bytes) {
      s.buckets.emplace_back();
      bytes = 0;
    }
    State::Bucket& b = s.buckets.back();
    s.slot[i] = {s.buckets.size() - 1, b.members.size()};
    b.offsets.push_back(b.members.empty() ? 0 : b.offsets.back() + s.params[b.members.back()].numel());
    b.members.push_back(i);
    bytes += p.numel() * 4;
  }
  for (State::Bucket& b : s.buckets) {
    b.buffer = at::zeros({b.offsets.back() + s.params[b.members.back()].numel()},
                         at::TensorOptions().dtype(at::kFloat).device(dp.buffer_device()));
    b.got.assign(b.members.size(), 0);
    b.waiting = b.members.size();
  }
  State* raw = state_.get();
  for (size_t i = 0; i < s.params.size(); ++i)
    s.hooks.push_back(s.params[i].register_hook([raw, i](const at::Tensor& grad) { raw->ready(i, grad); }));
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < state_->params.size(); ++i) state_->params[i].remove_hook(state_->hooks[i]);
}

void GradientReducer::finish() {
  State& s = *state_;
  for (State::Bucket& b : s.buckets) {
    if (b.launched) continue;
    for (size_t m = 0; m < b.members.size(); ++m)
      if (!b.got[m]) b.buffer.narrow(0, b.offsets[m], s.params[b.members[m]].numel()).zero_();
    s.launch(b);
  }
  at::NoGradGuard g;
  for (State::Bucket& b : s.buckets) {
    collective(*s.dp, "gradient all-reduce", [&] { b.work->wait(); });
    for (size_t m = 0; m < b.members.size(); ++m) {
      if (!b.got[m]) continue;
      at::Tensor& p = s.params[b.members[m]];
      at::Tensor sum = b.buffer.narrow(0, b.offsets[m], p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(sum);
      else p.mutable_grad() = sum.to(p.device()).clone();
    }
    b.launched = false;
    b.work.reset();
    b.got.assign(b.members.size(), 0);
    b.waiting = b.members.size();
  }
  s.overlapped_last = s.overlapped;
  s.overlapped = 0;
}

int64_t GradientReducer::overlapped_buckets() const { return state_->overlapped_last; }
int64_t GradientReducer::buckets() const { return static_cast<int64_t>(state_->buckets.size()); }

#else
struct DataParallel::Group {};

std::unique_ptr<DataParallel> DataParallel::from_env(const DistEnv& env, const DataParallelOptions&) {
  if (!env.distributed()) return nullptr;
  fail("rank {} of {} ({}): this build of semcodec has no c10d Gloo support (install libgloo-dev and rebuild)",
       env.rank, env.world_size, env.launcher);
}
c10::Device DataParallel::buffer_device() const { return c10::Device(c10::kCPU); }
void DataParallel::broadcast(const std::vector<at::Tensor>&) {}
void DataParallel::allreduce_sum(const std::vector<at::Tensor>&, int64_t) {}
void DataParallel::barrier() {}

struct GradientReducer::State {};
GradientReducer::GradientReducer(DataParallel&, std::vector<at::Tensor>, int64_t) {
  fail("this build of semcodec has no c10d Gloo support (install libgloo-dev and rebuild)");
}
GradientReducer::~GradientReducer() = default;
void GradientReducer::finish() {}
int64_t GradientReducer::overlapped_buckets() const { return 0; }
int64_t GradientReducer::buckets() const { return 0; }
#endif

DataParallel::DataParallel(const DistEnv& env, std::string backend, std::unique_ptr<Group> group)
    : env_(env), backend_(std::move(backend)), group_(std::move(group)) {}
DataParallel::~DataParallel() = default;

}  // namespace semcodec
