#include "codec/entropy_fit.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>

#include <algorithm>

#include "codec/checkpoint_codec.h"
#include "codec/entropy/coder_registry.h"
#include "codec/entropy/rate.h"
#include "data/feature_set.h"
#include "data/feature_store.h"
#include "models/method_registry.h"
#include "models/quantizers/stream_adaptive.h"
#include "util/error.h"
#include "util/progress.h"

namespace semcodec {

namespace {
std::string cli_name(TableMode m) {
  std::string s = table_mode_name(m);
  for (char& c : s)
    if (c == '_') c = '-';
  return s;
}

TableMode parse_tables(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (c == '-') c = '_';
  return parse_table_mode(s);
}

// Training indices, item-major, in batches with a progress bar.
std::vector<int32_t> encode_all(Quantizer& model, const at::Tensor& features, bool progress) {
  const int64_t n = features.size(0), batch = 4096;
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(n * model.slots()));
  ProgressBar bar("fit-entropy: encoding", n, "items", progress);
  for (int64_t s = 0; s < n; s += batch) {
    const int64_t b = std::min(batch, n - s);
    std::vector<int32_t> idx = indices_to_int32(model.encode(features.narrow(0, s, b)));
    out.insert(out.end(), idx.begin(), idx.end());
    bar.advance(b);
  }
  bar.finish();
  return out;
}

// Tables larger than this many counts (e.g. per-slot tables of float16's
// 768 slots x 65536 symbols) are not fitted: they would not fit in memory
// and could never be estimated from a training set anyway.
constexpr int64_t kMaxTableEntries = int64_t{1} << 24;

int64_t table_entries(TableMode m, int64_t slots, int64_t positions, int64_t subspaces, int64_t k) {
  switch (m) {
    case TableMode::shared: return k;
    case TableMode::per_subspace: return subspaces * k;
    case TableMode::per_position: return positions * k;
    case TableMode::per_slot: return slots * k;
  }
  return slots * k;
}

// The coder "auto" picks: the entropy coder that spends the fewest payload
// bits on the training items (on a tie the one registered later), if it saves
// more than 1% over the fixed-length raw code; near-uniform indices
// (well-used codebooks) would otherwise cost a few bits more than raw on
// unseen rows.
CoderId smallest_coder(const std::map<std::string, double>& coder_bits) {
  const double raw = coder_bits.at(coder_name(CoderId::raw));
  const CoderInfo* best = nullptr;
  for (const CoderInfo& info : coders())
    if (info.id != CoderId::raw && (!best || coder_bits.at(info.name) <= coder_bits.at(best->name))) best = &info;
  return best && coder_bits.at(best->name) < 0.99 * raw ? best->id : CoderId::raw;
}

// Ideal code length of one half under tables fitted on the other half, both ways, per item.
double cross_validated_bits(const std::vector<int32_t>& idx, int64_t items, int64_t slots, int64_t k, TableMode mode,
                            int64_t positions, int64_t subspaces, int64_t smoothing) {
  if (items < 2) return 0.0;
  std::vector<int32_t> half[2];
  for (int64_t i = 0; i < items; ++i)
    half[i % 2].insert(half[i % 2].end(), idx.begin() + i * slots, idx.begin() + (i + 1) * slots);
  double bits = 0;
  for (int h = 0; h < 2; ++h) {
    const int64_t n_fit = static_cast<int64_t>(half[h].size()) / slots;
    const int64_t n_code = static_cast<int64_t>(half[1 - h].size()) / slots;
    EntropyModel m = EntropyModel::fit(half[h].data(), n_fit, slots, {k}, mode, positions, subspaces, smoothing);
    bits += model_code_bits(m, half[1 - h].data(), n_code) * static_cast<double>(n_code);
  }
  return bits / static_cast<double>(items);
}
}  // namespace

namespace {
// A stream-adaptive method brings its own tables (one per slot, learned at fit
// time): packets are coded with its packet context's counts and streams with
// the tables their side information names, so nothing is fitted here; the
// report still measures what those tables spend on the training rows.
EntropyFitReport store_packet_tables(Checkpoint& ckpt, Quantizer& model, StreamAdaptive& adaptive,
                                     const at::Tensor& train_features, const EntropyFitOptions& opt, CoderId coder) {
  require(coder == CoderId::rans, "fit-entropy: {} codes its streams with rANS only (got --coder {})", model.name(),
          coder_name(coder));
  require(opt.tables == "auto" || opt.tables == "per-slot",
          "fit-entropy: {} has one table per slot (its own); --tables {} does not apply", model.name(), opt.tables);
  const StreamSideInfo& packets = adaptive.packet_context();
  const int64_t slots = model.slots();
  require(packets.slots == slots && static_cast<int64_t>(packets.alphabet_sizes.size()) == slots &&
              static_cast<int64_t>(packets.slot_counts.size()) == slots,
          "fit-entropy: {}'s packet tables do not match its {} slots", model.name(), slots);
  EntropyModel em = EntropyModel::from_counts(slots, packets.alphabet_sizes, TableMode::per_slot, 0, 0,
                                              packets.slot_counts);
  at::Tensor rows = train_features;
  if (opt.max_items > 0 && rows.size(0) > opt.max_items)
    rows = rows.index_select(0, at::div(at::arange(opt.max_items, at::kLong) * rows.size(0), opt.max_items, "floor")
                                    .to(rows.device()));
  std::vector<int32_t> idx = encode_all(model, rows, opt.progress);
  const int64_t n = rows.size(0);
  EntropyFitReport rep;
  rep.coder = coder_name(coder);
  rep.table_mode = cli_name(TableMode::per_slot);
  rep.items = n;
  rep.slots = slots;
  rep.raw_bits = static_cast<double>(raw_bits_per_item(packets.alphabet_sizes));
  rep.model_bits = model_code_bits(em, idx.data(), n);
  rep.entropy_bits[rep.table_mode] =
      empirical_entropy_bits(idx.data(), n, slots, packets.alphabet_sizes, TableMode::per_slot, 0, 0);
  auto c = make_coder(coder, em);
  std::vector<uint8_t> buf;
  const int64_t probe = std::min<int64_t>(n, 20000);
  for (int64_t i = 0; i < probe; ++i) c->encode_item(idx.data() + i * slots, buf);
  rep.coder_bits[rep.coder] = 8.0 * static_cast<double>(buf.size()) / static_cast<double>(std::max<int64_t>(probe, 1));
  rep.fingerprint = codec_fingerprint(decoding_tensors(model), coder, em);
  store_entropy_tables(ckpt, em,
                       {{"coder", rep.coder},
                        {"table_mode", rep.table_mode},
                        {"tables", "the method's own (stream-adaptive)"},
                        {"fit_items", n},
                        {"fingerprint", fingerprint_hex(rep.fingerprint)}});
  return rep;
}
}  // namespace

nlohmann::json EntropyFitReport::to_json() const {
  return {{"coder", coder},
          {"table_mode", table_mode},
          {"items", items},
          {"slots", slots},
          {"raw_bits", raw_bits},
          {"model_bits", model_bits},
          {"entropy_bits", entropy_bits},
          {"heldout_bits", heldout_bits},
          {"coder_bits", coder_bits},
          {"fingerprint", fingerprint_hex(fingerprint)}};
}

std::vector<std::string> entropy_fit_coder_choices() {
  std::vector<std::string> out = {"auto"};
  for (const std::string& name : coder_names()) out.push_back(name);
  return out;
}

EntropyFitReport fit_checkpoint_entropy(Checkpoint& ckpt, Quantizer& model, const at::Tensor& train_features,
                                        const EntropyFitOptions& opt) {
  require(train_features.dim() == 2 && train_features.size(0) > 0 && train_features.size(1) == model.embed_dim(),
          "fit-entropy: expected [N > 0, {}] training features, got {}", model.embed_dim(), train_features.sizes());
  const std::vector<std::string> choices = entropy_fit_coder_choices();
  require(std::find(choices.begin(), choices.end(), opt.coder) != choices.end(), "fit-entropy: unknown coder '{}' ({})",
          opt.coder, fmt::join(choices, " | "));
  CoderId coder = opt.coder == "auto" ? CoderId::rans : parse_coder_id(opt.coder);
  if (auto* adaptive = dynamic_cast<StreamAdaptive*>(&model))
    return store_packet_tables(ckpt, model, *adaptive, train_features, opt, coder);
  const int64_t slots = model.slots(), k = model.alphabet_size(0);
  for (int64_t s = 1; s < slots; ++s)
    require(model.alphabet_size(s) == k, "fit-entropy: {} has slots of different alphabet sizes ({} and {})",
            model.name(), k, model.alphabet_size(s));
  const int64_t subspaces = model.subspaces(), positions = slots / subspaces;
  require(subspaces >= 1 && positions * subspaces == slots, "fit-entropy: {} slots are not positions x {} sub-spaces",
          slots, subspaces);
  require(opt.max_items >= 0, "fit-entropy: max_items must be >= 0, got {}", opt.max_items);
  if (auto* net = dynamic_cast<torch::nn::Module*>(&model)) net->eval();
  at::Tensor rows = train_features;
  if (opt.max_items > 0 && rows.size(0) > opt.max_items) {
    std::vector<int64_t> pick(static_cast<size_t>(opt.max_items));
    for (int64_t i = 0; i < opt.max_items; ++i) pick[static_cast<size_t>(i)] = i * rows.size(0) / opt.max_items;
    rows = rows.index_select(0, at::tensor(pick, at::kLong).to(rows.device()));
  }
  std::vector<int32_t> idx = encode_all(model, rows, opt.progress);
  const int64_t n = rows.size(0);

  EntropyFitReport rep;
  rep.coder = coder_name(coder);
  rep.items = n;
  rep.slots = slots;
  rep.raw_bits = static_cast<double>(raw_bits_per_item(std::vector<int64_t>(static_cast<size_t>(slots), k)));
  TableMode best = TableMode::shared;
  double best_bits = 0;
  for (TableMode m : kTableModes) {
    if (table_entries(m, slots, positions, subspaces, k) > kMaxTableEntries) continue;
    rep.entropy_bits[cli_name(m)] = empirical_entropy_bits(idx.data(), n, slots, {k}, m, positions, subspaces);
    const double cv = cross_validated_bits(idx, n, slots, k, m, positions, subspaces, opt.smoothing);
    rep.heldout_bits[cli_name(m)] = cv;
    // Strictly better only: ties keep the mode with fewer tables (listed first).
    if (m == TableMode::shared || cv < best_bits) best = m, best_bits = cv;
  }
  const TableMode mode = opt.tables == "auto" ? (coder == CoderId::raw ? TableMode::shared : best)
                                              : parse_tables(opt.tables);
  require(table_entries(mode, slots, positions, subspaces, k) <= kMaxTableEntries,
          "fit-entropy: {} tables for {} ({} slots x {} symbols) would hold over {} counts; use shared{} tables",
          cli_name(mode), model.name(), slots, k, kMaxTableEntries, subspaces > 1 ? " or per-subspace" : "");
  EntropyModel em = EntropyModel::fit(idx.data(), n, slots, {k}, mode, positions, subspaces, opt.smoothing);
  // Payload bits each coder actually spends on (up to 20,000 of) the training
  // items: rANS pays ~32 bits per item for its state, Huffman up to 1 bit per
  // slot, so which is smaller depends on the rate.
  const int64_t probe = std::min<int64_t>(n, 20000);
  for (const CoderInfo& info : coders()) {
    auto c = info.make(em);
    std::vector<uint8_t> buf;
    for (int64_t i = 0; i < probe; ++i) c->encode_item(idx.data() + i * slots, buf);
    rep.coder_bits[info.name] = 8.0 * static_cast<double>(buf.size()) / static_cast<double>(probe);
  }
  if (opt.coder == "auto") coder = smallest_coder(rep.coder_bits);
  rep.coder = coder_name(coder);
  rep.table_mode = cli_name(mode);
  rep.model_bits = model_code_bits(em, idx.data(), n);
  rep.fingerprint = codec_fingerprint(decoding_tensors(model), coder, em);

  store_entropy_tables(ckpt, em,
                       {{"coder", rep.coder},
                        {"table_mode", rep.table_mode},
                        {"smoothing", opt.smoothing},
                        {"fit_items", n},
                        {"fingerprint", fingerprint_hex(rep.fingerprint)}});
  return rep;
}

EntropyFitReport fit_entropy_in_file(const std::string& checkpoint, const at::Tensor& train_features,
                                     const EntropyFitOptions& opt) {
  Checkpoint ck = load_checkpoint(checkpoint);
  auto model = load_quantizer(ck, checkpoint, opt.device);
  EntropyFitReport rep = fit_checkpoint_entropy(ck, *model, train_features, opt);
  save_checkpoint(checkpoint, ck);
  return rep;
}

EntropyFitReport fit_entropy_from_features(const std::string& checkpoint, const std::string& features,
                                           const EntropyFitOptions& opt) {
  Checkpoint ck = load_checkpoint(checkpoint);
  std::string path = features;
  if (path.empty()) path = ck.dataset.value("features", std::string());
  require(!path.empty(), "{}: the checkpoint does not record its training features; pass --features", checkpoint);
  FeatureSet set = read_feature_file(path);
  require(set.dim() == ck.config.model.embed_dim, "{}: features have D = {} but checkpoint {} was trained on D = {}",
          path, set.dim(), checkpoint, ck.config.model.embed_dim);
  require(ck.dataset.value("num_classes", int64_t{-1}) == set.num_classes(),
          "{}: {} classes, but checkpoint {} was trained on {} classes: its training split does not apply", path,
          set.num_classes(), checkpoint, ck.dataset.value("num_classes", int64_t{-1}));
  FeatureSet train = select_classes(set, ck.train_classes);
  require(train.size() > 0, "{}: no row belongs to the checkpoint's {} training classes", path,
          ck.train_classes.size());
  auto model = load_quantizer(ck, checkpoint, opt.device);
  EntropyFitReport rep = fit_checkpoint_entropy(ck, *model, train.features, opt);
  save_checkpoint(checkpoint, ck);
  return rep;
}

}  // namespace semcodec
