// Bitstream container for coded items (byte layout: docs/bitstream.md).
//
// Stream: "SCB1", version, coder id, flags, 32-byte checkpoint fingerprint,
// varint item count, varint slots, then per item a varint payload length and
// the payload. Packet (what an edge device sends for one item): one byte
// (version << 4 | coder id), the first 4 fingerprint bytes, the payload.
//
// Readers treat the input as untrusted: every length is checked against the
// bytes that remain before anything is allocated, every field is validated,
// and every failure throws semcodec::Error with a message saying what is wrong.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codec/entropy/entropy_coder.h"

namespace semcodec {

using Fingerprint = std::array<uint8_t, 32>;
std::string fingerprint_hex(const Fingerprint& fp);
Fingerprint fingerprint_from_hex(const std::string& hex);  // 64 hex digits; throws Error
// SHA-256 of arbitrary bytes as a Fingerprint (e.g. of a checkpoint file).
Fingerprint fingerprint_of(const void* data, size_t size);

constexpr uint8_t kStreamVersion = 1;
constexpr uint8_t kPacketVersion = 1;
constexpr size_t kStreamFixedHeader = 40;  // magic 4 + version 1 + coder 1 + flags 2 + fingerprint 32
constexpr size_t kPacketHeader = 5;
// Stream flags (bytes 6-7, little-endian); readers refuse any other bit.
constexpr uint16_t kStreamFlagAdaptive = 1;  // side information + one rANS message (docs/bitstream.md)
// Adaptive streams: at most this many items, and at most this many symbols
// (items x slots) per byte after the header (plus kAdaptiveSymbolSlack), so a
// short hostile stream cannot ask for unbounded decoding work or memory.
constexpr int64_t kMaxAdaptiveItems = int64_t(1) << 24;
constexpr int64_t kMaxAdaptiveSymbolsPerByte = 1024;
constexpr int64_t kAdaptiveSymbolSlack = int64_t(1) << 20;

// LEB128 varints (little-endian base-128, at most 9 bytes, minimal form only).
void put_varint(std::vector<uint8_t>& out, uint64_t v);
// Reads a varint at data[*pos], advancing *pos; throws Error on truncation,
// non-minimal encodings or values above 2^62.
uint64_t get_varint(const uint8_t* data, size_t size, size_t* pos, const char* what);

struct StreamHeader {
  int version = kStreamVersion;
  CoderId coder = CoderId::raw;
  Fingerprint fingerprint{};
  int64_t items = 0;
  int64_t slots = 0;
  size_t body_offset = 0;  // first byte of item 0's length varint (adaptive: of the rANS message)
  bool adaptive = false;   // flags & kStreamFlagAdaptive
  size_t side_offset = 0, side_size = 0;  // adaptive streams: where the side information is
};

// Writes a stream item by item. With a fallback coder (Codec passes the raw
// coder), every item is coded both ways and finish() writes the smaller body
// (ties: the primary coder), under the fallback's coder id: tables fitted on
// other data can cost more than fixed-length codes on a shifted stream, and a
// stream should never cost more than its raw codes.
class StreamWriter {
 public:
  StreamWriter(const EntropyCoder& coder, const Fingerprint& fingerprint, const EntropyCoder* fallback = nullptr);
  void add_item(const int32_t* idx);                 // coder.slots() indices
  void add_items(const int32_t* idx, int64_t items);  // items x slots, item-major
  int64_t items() const { return items_; }
  CoderId coder_id() const;                          // the coder finish() writes with
  std::vector<uint8_t> finish() const;               // the complete stream

 private:
  bool use_fallback() const;

  const EntropyCoder& coder_;
  Fingerprint fingerprint_;
  const EntropyCoder* fallback_;
  int64_t items_ = 0;
  std::vector<uint8_t> body_, fallback_body_, scratch_;
};

std::vector<uint8_t> encode_stream(const EntropyCoder& coder, const Fingerprint& fingerprint, const int32_t* idx,
                                   int64_t items, const EntropyCoder* fallback = nullptr);

// Parses and validates the header (magic, version, coder id, flags, counts
// against the remaining size). Does not check the fingerprint.
StreamHeader read_stream_header(const uint8_t* data, size_t size);

struct DecodedStream {
  StreamHeader header;
  std::vector<int32_t> indices;  // items x slots, item-major
  std::vector<uint32_t> payload_bytes;  // per item: the coded payload's length (rate accounting); empty
                                        // for adaptive streams, whose items share one message
};
// Decodes a whole stream with `coder`, which must match the stream's coder id
// and slot count; `expected` must equal the stream's fingerprint.
DecodedStream decode_stream(const uint8_t* data, size_t size, const EntropyCoder& coder, const Fingerprint& expected);
// Same, building the coder the stream names from the model.
DecodedStream decode_stream(const uint8_t* data, size_t size, const EntropyModel& model, const Fingerprint& expected);

// Adaptive streams (docs/bitstream.md, "Adaptive streams"): the header with
// flag kStreamFlagAdaptive and coder rans, the side information (varint length
// + bytes), then the items x slots indices as ONE rANS message of `coder`
// (whose tables come from that side information).
class RansCoder;
std::vector<uint8_t> encode_adaptive_stream(const RansCoder& coder, const Fingerprint& fingerprint,
                                            const std::vector<uint8_t>& side_info, const int32_t* idx, int64_t items);
// Decodes the message of an adaptive stream; `coder` is built from the side
// information the header points at, and must match the stream's slot count.
DecodedStream decode_adaptive_stream(const uint8_t* data, size_t size, const RansCoder& coder,
                                     const Fingerprint& expected);
// Throws "bitstream was made with another checkpoint ..." unless the stream's fingerprint is `expected`.
void check_stream_fingerprint(const StreamHeader& header, const Fingerprint& expected);

// Single-item packets.
std::vector<uint8_t> encode_packet(const EntropyCoder& coder, const Fingerprint& fingerprint, const int32_t* idx);
CoderId packet_coder(const uint8_t* data, size_t size);  // validates version and coder id
void decode_packet(const uint8_t* data, size_t size, const EntropyCoder& coder, const Fingerprint& expected,
                   int32_t* idx);
std::vector<int32_t> decode_packet(const std::vector<uint8_t>& packet, const EntropyCoder& coder,
                                   const Fingerprint& expected);

}  // namespace semcodec
