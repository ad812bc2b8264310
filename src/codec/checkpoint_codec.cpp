#include "codec/checkpoint_codec.h"

#include <ATen/ATen.h>

#include "codec/entropy/coder_registry.h"
#include "models/method_registry.h"
#include "util/json_bounded.h"
#include "util/error.h"

namespace semcodec {

namespace {
constexpr const char* kTablesTensor = "tables";  // stored as "entropy.tables"
constexpr const char* kEntropyMeta = "entropy";

nlohmann::json entropy_meta(const Checkpoint& ckpt, const std::string& source) {
  auto it = ckpt.extra_metadata.find(kEntropyMeta);
  require(it != ckpt.extra_metadata.end(), "{}: entropy tables without the '{}' metadata", source, kEntropyMeta);
  nlohmann::json j = parse_json_bounded(it->second, fmt::format("{}: metadata '{}'", source, kEntropyMeta));
  require(j.is_object(), "{}: metadata '{}' is not a JSON object", source, kEntropyMeta);
  return j;
}

}  // namespace

bool has_entropy_tables(const Checkpoint& ckpt) { return ckpt.entropy.count(kTablesTensor) > 0; }

EntropyModel checkpoint_entropy_model(const Checkpoint& ckpt, const std::string& source) {
  auto it = ckpt.entropy.find(kTablesTensor);
  require(it != ckpt.entropy.end(),
          "{}: the checkpoint has no entropy-coder tables; run `semcodec fit-entropy --checkpoint {}` first", source,
          source);
  const at::Tensor& t = it->second;
  require(t.scalar_type() == at::kLong && t.dim() == 1, "{}: tensor 'entropy.{}' must be 1-D int64, got {} {}",
          source, kTablesTensor, c10::toString(t.scalar_type()), t.sizes());
  at::Tensor c = t.cpu().contiguous();
  try {
    return EntropyModel::deserialize(c.data_ptr<int64_t>(), static_cast<size_t>(c.numel()));
  } catch (const Error& e) {
    fail("{}: tensor 'entropy.{}': {}", source, kTablesTensor, e.what());
  }
}

CoderId checkpoint_coder(const Checkpoint& ckpt, const std::string& source) {
  nlohmann::json j = entropy_meta(ckpt, source);
  require(j.contains("coder") && j["coder"].is_string(), "{}: metadata 'entropy' has no coder", source);
  return parse_coder_id(j["coder"].get<std::string>());
}

void store_entropy_tables(Checkpoint& ckpt, const EntropyModel& model, const nlohmann::json& meta) {
  require(meta.contains("coder") && meta["coder"].is_string(), "store_entropy_tables: metadata without a coder");
  ckpt.entropy.clear();
  ckpt.entropy[kTablesTensor] = at::tensor(model.serialize(), at::kLong);
  ckpt.extra_metadata[kEntropyMeta] = meta.dump();
}

void copy_entropy_tables(const std::string& from, const std::string& to) {
  const Checkpoint src = load_checkpoint(from);
  require(has_entropy_tables(src), "{}: no entropy tables to copy", from);
  Checkpoint dst = load_checkpoint(to);
  dst.entropy = src.entropy;
  dst.extra_metadata[kEntropyMeta] = src.extra_metadata.at(kEntropyMeta);
  save_checkpoint(to, dst);
}

std::unique_ptr<Codec> make_codec(const Checkpoint& ckpt, const std::string& source, const std::string& device) {
  EntropyModel em = checkpoint_entropy_model(ckpt, source);
  const CoderId coder = checkpoint_coder(ckpt, source);
  std::shared_ptr<Quantizer> model = load_quantizer(ckpt, source, device);
  const Fingerprint fp = codec_fingerprint(decoding_tensors(*model), coder, em);
  return std::make_unique<Codec>(model, std::move(em), coder, fp);
}

std::unique_ptr<Codec> load_codec(const std::string& checkpoint, const std::string& device) {
  return make_codec(load_checkpoint(checkpoint), checkpoint, device);
}

}  // namespace semcodec
