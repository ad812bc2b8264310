#include "codec/codec.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

#include "codec/entropy/rans_coder.h"
#include "models/quantizers/stream_adaptive.h"
#include "util/error.h"
#include "util/fmt_shape.h"
#include "util/hash.h"

namespace semcodec {

namespace {

void put_u64(Sha256& h, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  h.update(b, 8);
}

// Values as little-endian bytes, whatever the host: floating tensors as
// float32 bit patterns (tag 1), everything else as int64 (tag 2).
void put_tensor(Sha256& h, const NamedTensor& t) {
  require(t.value.defined(), "fingerprint: tensor '{}' is undefined", t.name);
  put_u64(h, t.name.size());
  h.update(t.name);
  const bool floating = at::isFloatingType(t.value.scalar_type());
  const uint8_t tag = floating ? 1 : 2;
  h.update(&tag, 1);
  put_u64(h, static_cast<uint64_t>(t.value.dim()));
  for (int64_t d : t.value.sizes()) put_u64(h, static_cast<uint64_t>(d));
  std::vector<uint8_t> bytes;
  if (floating) {
    at::Tensor v = t.value.detach().to(at::kCPU, at::kFloat).contiguous();
    const float* p = v.data_ptr<float>();
    bytes.resize(static_cast<size_t>(v.numel()) * 4);
    for (int64_t i = 0; i < v.numel(); ++i) {
      uint32_t u;
      std::memcpy(&u, p + i, 4);
      for (int k = 0; k < 4; ++k) bytes[static_cast<size_t>(i) * 4 + k] = static_cast<uint8_t>(u >> (8 * k));
    }
  } else {
    at::Tensor v = t.value.detach().to(at::kCPU, at::kLong).contiguous();
    const int64_t* p = v.data_ptr<int64_t>();
    bytes.resize(static_cast<size_t>(v.numel()) * 8);
    for (int64_t i = 0; i < v.numel(); ++i) {
      const uint64_t u = static_cast<uint64_t>(p[i]);
      for (int k = 0; k < 8; ++k) bytes[static_cast<size_t>(i) * 8 + k] = static_cast<uint8_t>(u >> (8 * k));
    }
  }
  h.update(bytes.data(), bytes.size());
}

}  // namespace

Fingerprint codec_fingerprint(const std::vector<NamedTensor>& decoder_tensors, CoderId coder,
                              const EntropyModel& model) {
  std::vector<const NamedTensor*> sorted;
  for (const auto& t : decoder_tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const NamedTensor* a, const NamedTensor* b) { return a->name < b->name; });
  for (size_t i = 1; i < sorted.size(); ++i)
    require(sorted[i]->name != sorted[i - 1]->name, "fingerprint: tensor '{}' given twice", sorted[i]->name);
  Sha256 h;
  h.update(std::string_view("semcodec.codec.v1", 18));  // with the terminating zero
  put_u64(h, sorted.size());
  for (const NamedTensor* t : sorted) put_tensor(h, *t);
  const uint8_t id = static_cast<uint8_t>(coder);
  h.update(&id, 1);
  std::vector<uint8_t> tables = model.to_bytes();
  put_u64(h, tables.size());
  h.update(tables.data(), tables.size());
  return h.digest();
}

std::vector<NamedTensor> decoding_tensors(Quantizer& quantizer) {
  std::vector<NamedTensor> out;
  for (auto& [name, t] : quantizer.decoding_state()) out.push_back({name, t});
  return out;
}

std::vector<int32_t> indices_to_int32(const at::Tensor& indices) {
  require(indices.dim() == 2, "indices must be [N, slots], got {}", indices.sizes());
  at::Tensor v = indices.detach().to(at::kCPU, at::kInt).contiguous();
  return std::vector<int32_t>(v.data_ptr<int32_t>(), v.data_ptr<int32_t>() + v.numel());
}

at::Tensor indices_to_tensor(const std::vector<int32_t>& indices, int64_t items, int64_t slots) {
  require(static_cast<int64_t>(indices.size()) == items * slots, "{} indices for {} items x {} slots", indices.size(),
          items, slots);
  return at::from_blob(const_cast<int32_t*>(indices.data()), {items, slots}, at::kInt).to(at::kLong);
}

Codec::Codec(std::shared_ptr<Quantizer> quantizer, EntropyModel model, CoderId coder, Fingerprint fingerprint)
    : quantizer_(std::move(quantizer)), model_(std::move(model)), fingerprint_(fingerprint) {
  require(quantizer_ != nullptr, "codec: no quantizer");
  require(!model_.empty(), "codec: the entropy model is empty (run `semcodec fit-entropy` on the checkpoint)");
  require(model_.slots() == quantizer_->slots(), "codec: the entropy model has {} slots, the quantizer {}",
          model_.slots(), quantizer_->slots());
  for (int64_t s = 0; s < model_.slots(); ++s)
    require(model_.alphabet_size(s) == quantizer_->alphabet_size(s),
            "codec: slot {} has alphabet {} in the entropy model but {} in the quantizer", s, model_.alphabet_size(s),
            quantizer_->alphabet_size(s));
  coder_ = make_coder(coder, model_);
  if (coder != CoderId::raw) raw_ = make_coder(CoderId::raw, model_);
}

const EntropyCoder& Codec::coder_for(CoderId id) const {
  // Another coder falls through to the checkpoint's, whose decoder refuses it by name.
  return id == CoderId::raw && raw_ ? *raw_ : *coder_;
}

std::string stream_coder_text(CoderId stream, CoderId checkpoint) {
  if (stream == checkpoint || stream != CoderId::raw) return coder_name(stream);
  return fmt::format("raw (fallback from {})", coder_name(checkpoint));
}

void Codec::set_batch_size(int64_t rows) {
  require(rows >= 1, "codec: batch size must be >= 1, got {}", rows);
  batch_size_ = rows;
}

at::Tensor Codec::quantize(const at::Tensor& features) const {
  require(features.dim() == 2 && features.size(1) == quantizer_->embed_dim(), "codec: expected [N, {}] features, got {}",
          quantizer_->embed_dim(), features.sizes());
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < features.size(0); s += batch_size_)
    parts.push_back(quantizer_->encode(features.narrow(0, s, std::min(batch_size_, features.size(0) - s))).cpu());
  if (parts.empty()) return at::empty({0, slots()}, at::kLong);
  return at::cat(parts).to(at::kLong);
}

at::Tensor Codec::reconstruct(const at::Tensor& indices) const {
  require(indices.dim() == 2 && indices.size(1) == slots(), "codec: expected [N, {}] indices, got {}", slots(),
          indices.sizes());
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < indices.size(0); s += batch_size_)
    parts.push_back(quantizer_->decode(indices.narrow(0, s, std::min(batch_size_, indices.size(0) - s))).cpu());
  if (parts.empty()) return at::empty({0, quantizer_->embed_dim()}, at::kFloat);
  return at::cat(parts).to(at::kFloat);
}

std::vector<uint8_t> Codec::encode_indices(const at::Tensor& indices) const {
  require(indices.dim() == 2 && indices.size(1) == slots(), "codec: expected [N, {}] indices, got {}", slots(),
          indices.sizes());
  std::vector<int32_t> idx = indices_to_int32(indices);
  return encode_stream(*coder_, fingerprint_, idx.data(), indices.size(0), raw_.get());
}

namespace {

// The rANS coder of an adaptive stream: one table per slot, from its side information.
RansCoder stream_coder(const StreamSideInfo& side) {
  return RansCoder(EntropyModel::from_counts(side.slots, side.alphabet_sizes, TableMode::per_slot, 0, 0,
                                             side.slot_counts));
}

}  // namespace

std::vector<uint8_t> Codec::encode(const at::Tensor& features, const CodecProgress& progress) const {
  require(features.dim() == 2 && features.size(1) == quantizer_->embed_dim(), "codec: expected [N, {}] features, got {}",
          quantizer_->embed_dim(), features.sizes());
  const int64_t n = features.size(0);
  if (auto* adaptive = dynamic_cast<StreamAdaptive*>(quantizer_.get())) {
    // The side information sees every row: the stream is planned, then coded as one message.
    std::shared_ptr<const StreamSideInfo> side = adaptive->plan_stream(features);
    const std::vector<int32_t> idx = indices_to_int32(adaptive_indices(*adaptive, *side, features, nullptr, progress));
    return encode_adaptive_stream(stream_coder(*side), fingerprint_, side->bytes, idx.data(), n);
  }
  StreamWriter writer(*coder_, fingerprint_, raw_.get());
  for (int64_t s = 0; s < n; s += batch_size_) {
    const int64_t b = std::min(batch_size_, n - s);
    std::vector<int32_t> idx = indices_to_int32(quantizer_->encode(features.narrow(0, s, b)));
    writer.add_items(idx.data(), b);
    if (progress) progress(s + b);
  }
  return writer.finish();
}

at::Tensor Codec::adaptive_indices(StreamAdaptive& adaptive, const StreamSideInfo& side, const at::Tensor& features,
                                   at::Tensor* reconstruction, const CodecProgress& progress) const {
  const int64_t n = features.size(0);
  std::vector<at::Tensor> idx, rows;
  for (int64_t s = 0; s < n; s += batch_size_) {
    const int64_t b = std::min(batch_size_, n - s);
    idx.push_back(adaptive.encode(features.narrow(0, s, b), side).cpu().to(at::kLong));
    if (reconstruction) rows.push_back(adaptive.decode(idx.back(), side).cpu().to(at::kFloat));
    if (progress) progress(s + b);
  }
  if (reconstruction)
    *reconstruction = rows.empty() ? at::empty({0, quantizer_->embed_dim()}, at::kFloat) : at::cat(rows);
  return idx.empty() ? at::empty({0, side.slots}, at::kLong) : at::cat(idx);
}

Codec::StreamRows Codec::stream_rows(const at::Tensor& features, bool reconstruct, const CodecProgress& progress) const {
  require(features.dim() == 2 && features.size(1) == quantizer_->embed_dim(), "codec: expected [N, {}] features, got {}",
          quantizer_->embed_dim(), features.sizes());
  StreamRows out;
  if (auto* adaptive = dynamic_cast<StreamAdaptive*>(quantizer_.get())) {
    std::shared_ptr<const StreamSideInfo> side = adaptive->plan_stream(features);
    out.indices = adaptive_indices(*adaptive, *side, features, reconstruct ? &out.reconstruction : nullptr, progress);
    return out;
  }
  out.indices = quantize(features);
  if (reconstruct) out.reconstruction = this->reconstruct(out.indices);
  if (progress) progress(features.size(0));
  return out;
}

std::shared_ptr<const StreamSideInfo> Codec::read_side_info(const uint8_t* data, size_t size,
                                                            const StreamHeader& header) const {
  check_stream_fingerprint(header, fingerprint_);
  auto* adaptive = dynamic_cast<StreamAdaptive*>(quantizer_.get());
  require(adaptive != nullptr, "bitstream is an adaptive stream, but the checkpoint's method {} does not adapt to streams",
          quantizer_->name());
  std::shared_ptr<const StreamSideInfo> side;
  try {
    side = adaptive->read_side_info(data + header.side_offset, header.side_size);
  } catch (const Error& e) {
    fail("bitstream side information (offset {}): {}", header.side_offset, e.what());
  }
  require(side->slots == header.slots, "bitstream has {} slots per item but its side information describes {}",
          header.slots, side->slots);
  return side;
}

DecodedStream Codec::decode_indices(const uint8_t* data, size_t size) const {
  const StreamHeader header = read_stream_header(data, size);
  if (!header.adaptive) return decode_stream(data, size, coder_for(header.coder), fingerprint_);
  return decode_adaptive_stream(data, size, stream_coder(*read_side_info(data, size, header)), fingerprint_);
}

CodecDecoded Codec::decode(const uint8_t* data, size_t size, const CodecProgress& progress) const {
  CodecDecoded out;
  std::vector<at::Tensor> parts;
  out.rate = decode_rows(data, size, [&](const at::Tensor& rows) { parts.push_back(rows); }, progress, &out.indices,
                         &out.payload_bytes);
  out.features = parts.empty() ? at::empty({0, quantizer_->embed_dim()}, at::kFloat) : at::cat(parts);
  return out;
}

StreamRate Codec::decode_rows(const uint8_t* data, size_t size, const RowSink& sink, const CodecProgress& progress,
                              at::Tensor* indices, std::vector<uint32_t>* payload_bytes) const {
  const StreamHeader header = read_stream_header(data, size);
  std::shared_ptr<const StreamSideInfo> side;
  DecodedStream ds;
  if (header.adaptive) {
    side = read_side_info(data, size, header);
    ds = decode_adaptive_stream(data, size, stream_coder(*side), fingerprint_);
  } else {
    ds = decode_stream(data, size, coder_for(header.coder), fingerprint_);
  }
  const StreamRate rate = stream_rate(ds, size);
  const int64_t n = ds.header.items;
  const int64_t slots = ds.header.slots;
  if (payload_bytes) *payload_bytes = std::move(ds.payload_bytes);
  if (indices) *indices = indices_to_tensor(ds.indices, n, slots);
  for (int64_t s = 0; s < n; s += batch_size_) {
    const int64_t b = std::min(batch_size_, n - s);
    // int64 one batch at a time: the whole stream's indices stay int32.
    const at::Tensor part =
        at::from_blob(ds.indices.data() + s * slots, {b, slots}, at::TensorOptions().dtype(at::kInt)).to(at::kLong);
    sink((side ? dynamic_cast<StreamAdaptive&>(*quantizer_).decode(part, *side) : quantizer_->decode(part))
             .cpu()
             .to(at::kFloat)
             .contiguous());
    if (progress) progress(s + b);
  }
  return rate;
}

std::vector<uint8_t> Codec::encode_packet(const at::Tensor& feature) const {
  at::Tensor x = feature.dim() == 1 ? feature.unsqueeze(0) : feature;
  require(x.dim() == 2 && x.size(0) == 1 && x.size(1) == quantizer_->embed_dim(),
          "codec: a packet holds one feature [{}] or [1, {}], got {}", quantizer_->embed_dim(),
          quantizer_->embed_dim(), feature.sizes());
  std::vector<int32_t> idx = indices_to_int32(quantizer_->encode(x));
  std::vector<uint8_t> packet = semcodec::encode_packet(*coder_, fingerprint_, idx.data());
  if (raw_) {
    std::vector<uint8_t> raw = semcodec::encode_packet(*raw_, fingerprint_, idx.data());
    if (raw.size() < packet.size()) return raw;
  }
  return packet;
}

CodecDecoded Codec::decode_packet(const uint8_t* data, size_t size) const {
  std::vector<int32_t> idx(static_cast<size_t>(slots()));
  const CoderId coder = packet_coder(data, size);
  semcodec::decode_packet(data, size, coder_for(coder), fingerprint_, idx.data());
  CodecDecoded out;
  out.indices = indices_to_tensor(idx, 1, slots());
  out.features = quantizer_->decode(out.indices).cpu().to(at::kFloat);
  out.rate.coder = coder;
  out.rate.items = 1;
  out.rate.slots = slots();
  out.rate.total_bytes = size;
  out.rate.header_bytes = kPacketHeader;
  out.rate.payload_bytes = size - kPacketHeader;
  out.payload_bytes = {static_cast<uint32_t>(size - kPacketHeader)};
  return out;
}

}  // namespace semcodec
