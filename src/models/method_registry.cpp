#include "models/method_registry.h"

#include <torch/nn/module.h>

#include <set>

#include "data/device.h"
#include "models/checkpoint.h"
#include "models/pqvae/pqvae.h"
#include "util/error.h"

namespace semcodec {

// The registry: one line per method, in the order lists and docs show them.
// METHOD(x) names the function `MethodInfo x_method()` that the method's own
// file defines.
#define SEMCODEC_METHODS(METHOD) \
  METHOD(pqvae_shared)           \
  METHOD(vqvae_kmeans_pq)        \
  METHOD(learned_sq)             \
  METHOD(learned_sq_per_dim)     \
  METHOD(faiss_pq)               \
  METHOD(faiss_opq)              \
  METHOD(faiss_rq)               \
  METHOD(faiss_lsq)              \
  METHOD(float16)                \
  METHOD(int8)                   \
  METHOD(int4)                   \
  METHOD(adaptive_klt)

#define SEMCODEC_DECLARE_METHOD(x) MethodInfo x##_method();
SEMCODEC_METHODS(SEMCODEC_DECLARE_METHOD)
#undef SEMCODEC_DECLARE_METHOD

namespace {

std::vector<MethodInfo> checked(std::vector<MethodInfo> all) {
  std::set<std::string> names;
  for (const MethodInfo& m : all) {
    require(names.insert(m.name).second, "method registry: '{}' registered twice", m.name);
    require(m.make != nullptr, "method registry: '{}' has no make()", m.name);
  }
  return all;
}

std::string joined_names() {
  std::string out;
  for (const MethodInfo& m : methods()) out += (out.empty() ? "" : ", ") + m.name;
  return out;
}

// make(), then the checkpoint's tensors restored into it.
std::shared_ptr<Quantizer> make_and_restore(const MethodInfo& info, const ModelConfig& config, const TensorMap& state,
                                            const std::string& source) {
  std::shared_ptr<Quantizer> q = info.make(config);
  if (info.kind == MethodKind::network) {
    auto* net = dynamic_cast<torch::nn::Module*>(q.get());
    require(net != nullptr, "method registry: network method '{}' made no torch module", info.name);
    load_module_state(*net, state, source);
    net->eval();
  } else {
    auto* fitted = dynamic_cast<FittedQuantizer*>(q.get());
    require(fitted != nullptr, "method registry: fitted method '{}' made no FittedQuantizer", info.name);
    fitted->load_state(state, source);
  }
  return q;
}

}  // namespace

const char* method_kind_name(MethodKind kind) { return kind == MethodKind::network ? "network" : "fitted"; }

const std::vector<MethodInfo>& methods() {
#define SEMCODEC_CALL_METHOD(x) x##_method(),
  static const std::vector<MethodInfo> all = checked({SEMCODEC_METHODS(SEMCODEC_CALL_METHOD)});
#undef SEMCODEC_CALL_METHOD
  return all;
}

const MethodInfo& method_info(const std::string& name) {
  for (const MethodInfo& m : methods())
    if (m.name == name) return m;
  fail("unknown model.method '{}' (registered: {})", name, joined_names());
}

std::vector<std::string> method_names() {
  std::vector<std::string> out;
  for (const MethodInfo& m : methods()) out.push_back(m.name);
  return out;
}

std::vector<std::string> method_names(MethodKind kind) {
  std::vector<std::string> out;
  for (const MethodInfo& m : methods())
    if (m.kind == kind) out.push_back(m.name);
  return out;
}

const OptionGroups& registered_method_options() {
  static const OptionGroups all = [] {
    OptionGroups groups;
    for (const MethodInfo& m : methods())
      if (m.options) groups.add(m.options());
    return groups;
  }();
  return all;
}

void validate_method_keys(const ModelConfig& model, const std::string& source) {
  const MethodInfo& info = method_info(model.method);
  if (info.validate) info.validate(model, source);
}

std::shared_ptr<Quantizer> make_quantizer(const ModelConfig& model) {
  validate_method_keys(model, "model");
  return method_info(model.method).make(model);
}

std::shared_ptr<FittedQuantizer> make_fitted_quantizer(const ModelConfig& model) {
  const MethodInfo& info = method_info(model.method);
  require(info.kind == MethodKind::fitted,
          "model.method '{}' is not a fitted quantizer (it is trained by `semcodec train` as a network)", model.method);
  return std::dynamic_pointer_cast<FittedQuantizer>(make_quantizer(model));
}

std::shared_ptr<Quantizer> load_quantizer(const Checkpoint& ckpt, const std::string& source,
                                          const std::string& device) {
  const ModelConfig& m = ckpt.config.model;
  validate_method_keys(m, source);
  const MethodInfo& info = method_info(m.method);
  if (info.kind == MethodKind::network) {
    // The network is built from the config before its tensors are copied in:
    // a config that describes more weights than the file holds is refused first.
    int64_t stored = 0;
    for (const auto& [name, t] : ckpt.model) stored += t.numel();
    const int64_t needed = pqvae_weight_elements_lower_bound(m);
    require(needed <= stored,
            "{}: the config describes a {} network of at least {} weights but the checkpoint holds {} values "
            "(mismatched or damaged checkpoint)",
            source, m.method, needed, stored);
  }
  std::shared_ptr<Quantizer> q = info.load ? info.load(m, ckpt.model, source) : make_and_restore(info, m, ckpt.model, source);
  if (auto* net = dynamic_cast<torch::nn::Module*>(q.get())) net->to(resolve_device(device));
  return q;
}

}  // namespace semcodec
