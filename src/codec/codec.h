// The library API a program uses to compress embeddings: a Codec joins a
// Quantizer (features <-> integer indices), an entropy coder built from an
// EntropyModel (indices <-> bytes) and the fingerprint that ties the bytes to
// the checkpoint. encode(features) gives a complete SCB1 stream;
// decode(bytes) gives the reconstructed features and the indices, and refuses
// streams made with another checkpoint. Packets carry one item.
//
// A stream or packet whose items the checkpoint's tables would code in more
// bytes than fixed-length codes (tables fitted on other data) is written with
// the raw coder instead, and its header says so: no stream costs more than its
// raw codes, and the decoder accepts the checkpoint's coder or raw.
//
// The fingerprint is SHA-256 over a deterministic serialization of the
// codebook, the decoder weights and the coder tables (codec_fingerprint), so it
// changes whenever anything that decoding depends on changes.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codec/entropy/bitstream.h"
#include "codec/entropy/coder_registry.h"
#include "codec/entropy/rate.h"
#include "models/quantizers/quantizer.h"
#include "models/quantizers/stream_adaptive.h"

namespace semcodec {

// How a report names the coder of a stream the codec wrote: the coder's name, or
// "raw (fallback from <coder>)" when the checkpoint's tables would have cost more.
std::string stream_coder_text(CoderId stream, CoderId checkpoint);

struct NamedTensor {
  std::string name;
  at::Tensor value;
};

// SHA-256 over: the tag "semcodec.codec.v1", the tensors sorted by name (each:
// name, dtype, shape, values; floating tensors as float32 bit patterns, integer
// tensors as int64, all little-endian), the coder id and the model's tables
// (EntropyModel::to_bytes). Independent of the device and of the host's byte order.
Fingerprint codec_fingerprint(const std::vector<NamedTensor>& decoder_tensors, CoderId coder,
                              const EntropyModel& model);
// What decoding with the quantizer depends on (Quantizer::decoding_state): for
// the PQ-VAEs "pq.codebook", every "decoder.*" tensor and, when the model
// centres features, "feature_mean"; for the fitted baselines their state.
std::vector<NamedTensor> decoding_tensors(Quantizer& quantizer);

// Reports items done so far (for progress bars); may be empty.
using CodecProgress = std::function<void(int64_t items_done)>;

struct CodecDecoded {
  at::Tensor features;  // [N, D] float32, CPU
  at::Tensor indices;   // [N, slots] int64, CPU
  StreamRate rate;      // where the stream's bytes went (packets: header = 5 bytes, no framing)
  std::vector<uint32_t> payload_bytes;  // per item
};

class Codec {
 public:
  // The model must describe the quantizer's slots and alphabets.
  Codec(std::shared_ptr<Quantizer> quantizer, EntropyModel model, CoderId coder, Fingerprint fingerprint);

  Quantizer& quantizer() const { return *quantizer_; }
  const EntropyModel& model() const { return model_; }
  const EntropyCoder& coder() const { return *coder_; }
  CoderId coder_id() const { return coder_->id(); }
  const Fingerprint& fingerprint() const { return fingerprint_; }
  int64_t slots() const { return coder_->slots(); }

  // Rows per network call (memory bound; results do not depend on it beyond float rounding).
  int64_t batch_size() const { return batch_size_; }
  void set_batch_size(int64_t rows);

  // Features [N, D] -> indices [N, slots] int64 on the CPU, and back to [N, D] float32.
  at::Tensor quantize(const at::Tensor& features) const;
  at::Tensor reconstruct(const at::Tensor& indices) const;

  // Multi-item stream (docs/bitstream.md). A method that adapts to streams
  // (StreamAdaptive, e.g. adaptive_klt) writes an adaptive stream: its side
  // information planned from all rows, then every item in one rANS message.
  std::vector<uint8_t> encode(const at::Tensor& features, const CodecProgress& progress = {}) const;
  // The indices [N, slots] int64 that encode(features) puts in its stream
  // (an adaptive method plans them from every row, as encode does) and, with
  // `reconstruct`, the rows [N, D] float32 that decoding that stream gives,
  // batched as decode batches them (a network's floats depend on the batch).
  struct StreamRows {
    at::Tensor indices, reconstruction;
  };
  StreamRows stream_rows(const at::Tensor& features, bool reconstruct, const CodecProgress& progress = {}) const;
  std::vector<uint8_t> encode_indices(const at::Tensor& indices) const;
  CodecDecoded decode(const uint8_t* data, size_t size, const CodecProgress& progress = {}) const;
  CodecDecoded decode(const std::vector<uint8_t>& stream) const { return decode(stream.data(), stream.size()); }
  // decode() without holding every row: the reconstructions go to `sink` in
  // order, batch_size() rows [b, D] float32 at a time (what decode() would
  // return, row for row); only the indices, which the stream's bytes bound,
  // are held whole. Returns the stream's rate; `indices` and `payload_bytes`
  // receive what CodecDecoded holds when given.
  using RowSink = std::function<void(const at::Tensor& rows)>;
  StreamRate decode_rows(const uint8_t* data, size_t size, const RowSink& sink, const CodecProgress& progress = {},
                         at::Tensor* indices = nullptr, std::vector<uint32_t>* payload_bytes = nullptr) const;
  // Indices only (no network): what decode() checks and reads, without reconstructing.
  DecodedStream decode_indices(const uint8_t* data, size_t size) const;
  // An adaptive stream's side information, parsed by the quantizer (after the fingerprint check).
  std::shared_ptr<const StreamSideInfo> read_side_info(const uint8_t* data, size_t size,
                                                       const StreamHeader& header) const;

  // Single-item packet: feature [D] or [1, D] -> bytes -> reconstruction [1, D].
  std::vector<uint8_t> encode_packet(const at::Tensor& feature) const;
  CodecDecoded decode_packet(const uint8_t* data, size_t size) const;
  CodecDecoded decode_packet(const std::vector<uint8_t>& packet) const { return decode_packet(packet.data(), packet.size()); }

 private:
  // An adaptive stream's indices in batches of batch_size(), and its decoded rows when asked.
  at::Tensor adaptive_indices(StreamAdaptive& adaptive, const StreamSideInfo& side, const at::Tensor& features,
                              at::Tensor* reconstruction, const CodecProgress& progress) const;

  std::shared_ptr<Quantizer> quantizer_;
  EntropyModel model_;
  // The coder a stream or packet header names: the checkpoint's, or raw (the fallback).
  const EntropyCoder& coder_for(CoderId id) const;

  std::unique_ptr<EntropyCoder> coder_;
  std::unique_ptr<EntropyCoder> raw_;  // the fallback; null when the checkpoint's coder is raw
  Fingerprint fingerprint_;
  int64_t batch_size_ = 4096;
};

// int64 [N, S] tensor <-> item-major int32 indices.
std::vector<int32_t> indices_to_int32(const at::Tensor& indices);
at::Tensor indices_to_tensor(const std::vector<int32_t>& indices, int64_t items, int64_t slots);

}  // namespace semcodec
