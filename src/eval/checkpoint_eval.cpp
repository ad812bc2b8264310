#include "eval/checkpoint_eval.h"

#include <ATen/ATen.h>

#include <filesystem>

#include "codec/checkpoint_codec.h"
#include "data/class_split.h"
#include "data/device.h"
#include "data/feature_store.h"
#include "eval/evaluate.h"
#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace semcodec {

namespace {
std::vector<int64_t> all_classes(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Classes that actually have rows, in ascending order.
std::vector<int64_t> present(const FeatureSet& set, const std::vector<int64_t>& classes) {
  at::Tensor counts = at::bincount(set.labels.to(at::kLong), {}, set.num_classes());
  std::vector<int64_t> out;
  for (int64_t c : classes)
    if (c < counts.size(0) && counts[c].item<int64_t>() > 0) out.push_back(c);
  return out;
}

// Accuracy of what decodes from real bytes, at the payload rate of those bytes
// (header and framing overhead reported beside it, not in bits_per_item).
nlohmann::json evaluate_from_bitstream(const Checkpoint& ck, const std::string& checkpoint, const FeatureSet& set,
                                       const FeatureSet& subset, EvalSpec spec, const CheckpointEvalOptions& opt) {
  require(opt.bitstream.empty() || !opt.via_bitstream, "eval: give either --bitstream or --via-bitstream, not both");
  std::unique_ptr<Codec> codec = make_codec(ck, checkpoint, opt.device);
  at::Tensor recon;
  StreamRate rate;      // the whole stream's
  uint64_t payload = 0;  // the evaluated rows'
  if (opt.via_bitstream) {
    std::vector<uint8_t> bytes = codec->encode(subset.features);
    CodecDecoded d = codec->decode(bytes);
    recon = d.features;
    rate = d.rate;
    payload = rate.payload_bytes;
    spec.rate_source = fmt::format("bitstream (in memory, {})",
                                   dynamic_cast<StreamAdaptive*>(&codec->quantizer())
                                       ? std::string("adaptive rans")
                                       : stream_coder_text(rate.coder, codec->coder_id()));
  } else {
    std::string bytes = read_file(opt.bitstream);
    CodecDecoded d;
    try {
      d = codec->decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const Error& e) {
      fail("{}: {}", opt.bitstream, e.what());
    }
    require(d.rate.items == set.size(),
            "{}: the stream holds {} items but the feature file has {} rows; eval --bitstream needs the stream "
            "`compress` made from that feature file",
            opt.bitstream, d.rate.items, set.size());
    // The evaluated classes' rows, in file order (as select_classes keeps them).
    std::vector<char> keep(static_cast<size_t>(set.num_classes()), 0);
    for (int64_t c : spec.classes) keep[static_cast<size_t>(c)] = 1;
    at::Tensor labels = set.labels.to(at::kCPU, at::kLong).contiguous();
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < set.size(); ++i) {
      const int64_t l = labels.data_ptr<int64_t>()[i];
      if (l >= 0 && l < set.num_classes() && keep[static_cast<size_t>(l)]) rows.push_back(i);
    }
    if (d.payload_bytes.empty()) {
      // An adaptive stream's items share its side information and one message:
      // the evaluated rows cost the stream's average.
      payload = set.size() ? d.rate.payload_bytes * rows.size() / static_cast<uint64_t>(set.size()) : 0;
    } else {
      for (int64_t i : rows) payload += d.payload_bytes[static_cast<size_t>(i)];
    }
    recon = d.features.index_select(0, at::tensor(rows, at::kLong));
    rate = d.rate;
    spec.rate_source = opt.bitstream;
  }
  spec.bits_per_item = subset.size() ? 8.0 * static_cast<double>(payload) / static_cast<double>(subset.size()) : 0.0;
  nlohmann::json r = evaluate_reconstruction(recon, subset, spec, codec->quantizer().raw_bits());
  r["coder"] = coder_name(codec->coder_id());
  r["stream_coder"] = coder_name(rate.coder);  // raw where the checkpoint's tables would cost more
  r["table_mode"] = table_mode_name(codec->model().mode());
  r["fingerprint"] = fingerprint_hex(codec->fingerprint());
  r["stream_bytes"] = rate.total_bytes;
  r["header_bytes"] = rate.header_bytes;
  r["framing_bytes"] = rate.framing_bytes;
  return r;
}
}  // namespace

nlohmann::json evaluate_checkpoint(const std::string& checkpoint, const std::string& features,
                                   const CheckpointEvalOptions& opt) {
  Checkpoint ck = load_checkpoint(checkpoint);
  auto model = load_quantizer(ck, checkpoint, opt.device);  // any method: networks and fitted quantizers
  FeatureSet set = read_feature_file(features);
  require(set.dim() == ck.config.model.embed_dim,
          "{}: features have D = {} but checkpoint {} was trained on D = {}", features, set.dim(), checkpoint,
          ck.config.model.embed_dim);

  // The checkpoint's split applies only to the dataset it was trained on.
  const bool same_dataset = ck.dataset.value("num_classes", int64_t{-1}) == set.num_classes() &&
                            ck.dataset.value("dataset", std::string()) == set.attrs.dataset;
  std::vector<int64_t> classes;
  std::string which = opt.classes;
  if (which == "auto") which = same_dataset ? "heldout" : "all";
  if (which == "heldout" || which == "train") {
    require(same_dataset, "{}: --classes {} refers to the checkpoint's split, but {} is another dataset ({}, {} classes)",
            checkpoint, which, features, set.attrs.dataset, set.num_classes());
    classes = which == "heldout" ? ck.heldout_classes : ck.train_classes;
  } else if (which == "all") {
    classes = all_classes(set.num_classes());
  } else {
    classes = read_class_list(which);
  }
  classes = present(set, classes);
  require(!classes.empty(), "{}: none of the evaluated classes has a row", features);
  FeatureSet subset = select_classes(set, classes);

  FeatureSet reference;
  EvalSpec spec;
  spec.classes = classes;
  spec.classifier = opt.classifier;
  if (!opt.reference_features.empty()) {
    reference = read_feature_file(opt.reference_features);
    spec.reference = &reference;
  }
  spec.label = opt.label.empty() ? std::filesystem::path(checkpoint).parent_path().filename().string() : opt.label;
  nlohmann::json r;
  if (opt.via_bitstream || !opt.bitstream.empty())
    r = evaluate_from_bitstream(ck, checkpoint, set, subset, spec, opt);
  else
    r = evaluate_quantizer(*model, subset, spec);
  r["checkpoint"] = checkpoint;
  r["features"] = features;
  r["class_set"] = which;
  r["dataset"] = set.attrs.dataset;
  return r;
}

}  // namespace semcodec
