#include "codec/entropy/bitstream.h"

#include <algorithm>
#include <cstring>

#include "codec/entropy/coder_registry.h"
#include "codec/entropy/rans_coder.h"
#include "util/error.h"
#include "util/hash.h"

namespace semcodec {

namespace {
constexpr uint8_t kMagic[4] = {'S', 'C', 'B', '1'};
constexpr uint64_t kMaxVarint = uint64_t(1) << 62;

std::string short_hex(const uint8_t* p, size_t n) { return to_hex(p, n); }
}  // namespace

std::string fingerprint_hex(const Fingerprint& fp) { return to_hex(fp.data(), fp.size()); }

Fingerprint fingerprint_from_hex(const std::string& hex) {
  require(hex.size() == 64, "fingerprint: expected 64 hex digits, got {} characters", hex.size());
  Fingerprint fp{};
  auto nib = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    fail("fingerprint: '{}' is not a hex digit", c);
  };
  for (size_t i = 0; i < 32; ++i) fp[i] = static_cast<uint8_t>(nib(hex[2 * i]) << 4 | nib(hex[2 * i + 1]));
  return fp;
}

Fingerprint fingerprint_of(const void* data, size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.digest();
}

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  require(v <= kMaxVarint, "varint value {} above 2^62", v);
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

uint64_t get_varint(const uint8_t* data, size_t size, size_t* pos, const char* what) {
  uint64_t v = 0;
  for (int i = 0; i < 9; ++i) {  // 9 bytes hold 63 bits, enough for 2^62
    require(*pos < size, "bitstream truncated while reading {} (offset {})", what, *pos);
    uint8_t b = data[(*pos)++];
    v |= uint64_t(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      require(i == 0 || b != 0, "bitstream: non-minimal varint for {} at offset {}", what, *pos - 1);
      require(v <= kMaxVarint, "bitstream: {} value {} is absurd (above 2^62)", what, v);
      return v;
    }
  }
  fail("bitstream: varint for {} longer than 9 bytes (offset {})", what, *pos);
}

// ---------------------------------------------------------------- writer

StreamWriter::StreamWriter(const EntropyCoder& coder, const Fingerprint& fingerprint, const EntropyCoder* fallback)
    : coder_(coder), fingerprint_(fingerprint), fallback_(fallback) {
  require(!fallback_ || fallback_->slots() == coder_.slots(),
          "bitstream writer: the fallback coder has {} slots, the coder {}", fallback_ ? fallback_->slots() : 0,
          coder_.slots());
}

namespace {
void append_record(const EntropyCoder& coder, const int32_t* idx, std::vector<uint8_t>& scratch,
                   std::vector<uint8_t>& body) {
  scratch.clear();
  coder.encode_item(idx, scratch);
  put_varint(body, scratch.size());
  body.insert(body.end(), scratch.begin(), scratch.end());
}
}  // namespace

void StreamWriter::add_item(const int32_t* idx) {
  append_record(coder_, idx, scratch_, body_);
  if (fallback_) append_record(*fallback_, idx, scratch_, fallback_body_);
  ++items_;
}

void StreamWriter::add_items(const int32_t* idx, int64_t items) {
  require(items >= 0, "bitstream writer: negative item count {}", items);
  const int64_t slots = coder_.slots();
  for (int64_t i = 0; i < items; ++i) add_item(idx + i * slots);
}

bool StreamWriter::use_fallback() const { return fallback_ && fallback_body_.size() < body_.size(); }

CoderId StreamWriter::coder_id() const { return use_fallback() ? fallback_->id() : coder_.id(); }

std::vector<uint8_t> StreamWriter::finish() const {
  const std::vector<uint8_t>& body = use_fallback() ? fallback_body_ : body_;
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  out.push_back(kStreamVersion);
  out.push_back(static_cast<uint8_t>(coder_id()));
  out.push_back(0);
  out.push_back(0);
  out.insert(out.end(), fingerprint_.begin(), fingerprint_.end());
  put_varint(out, static_cast<uint64_t>(items_));
  put_varint(out, static_cast<uint64_t>(coder_.slots()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::vector<uint8_t> encode_stream(const EntropyCoder& coder, const Fingerprint& fingerprint, const int32_t* idx,
                                   int64_t items, const EntropyCoder* fallback) {
  StreamWriter w(coder, fingerprint, fallback);
  w.add_items(idx, items);
  return w.finish();
}

// ---------------------------------------------------------------- reader

StreamHeader read_stream_header(const uint8_t* data, size_t size) {
  require(data != nullptr || size == 0, "bitstream: null data");
  require(size >= kStreamFixedHeader, "bitstream truncated: {} bytes, the header alone needs at least {}", size,
          kStreamFixedHeader + 2);
  require(std::memcmp(data, kMagic, 4) == 0,
          "not a semcodec bitstream: bad magic {} (expected \"SCB1\" = 53434231)", short_hex(data, 4));
  StreamHeader h;
  h.version = data[4];
  require(h.version == kStreamVersion, "bitstream format version {} is not supported (this build reads version {})",
          h.version, kStreamVersion);
  require(is_known_coder_id(data[5]), "bitstream: unknown coder id {} (known: {})", data[5], known_coder_ids());
  h.coder = static_cast<CoderId>(data[5]);
  const uint16_t flags = static_cast<uint16_t>(data[6] | (data[7] << 8));
  require((flags & ~kStreamFlagAdaptive) == 0, "bitstream: unknown flags {:#06x} (this build knows {:#06x})", flags,
          kStreamFlagAdaptive);
  h.adaptive = (flags & kStreamFlagAdaptive) != 0;
  require(!h.adaptive || h.coder == CoderId::rans, "bitstream: an adaptive stream must be coded with rans, not {}",
          coder_name(h.coder));
  std::memcpy(h.fingerprint.data(), data + 8, 32);
  size_t pos = kStreamFixedHeader;
  uint64_t items = get_varint(data, size, &pos, "item count");
  uint64_t slots = get_varint(data, size, &pos, "slot count");
  require(slots >= 1 && slots <= static_cast<uint64_t>(kMaxSlots), "bitstream: slot count {} out of range [1, {}]",
          slots, kMaxSlots);
  if (h.adaptive) {
    const uint64_t side = get_varint(data, size, &pos, "side information length");
    require(side <= size - pos, "bitstream truncated: the side information claims {} bytes but only {} remain", side,
            size - pos);
    h.side_offset = pos;
    h.side_size = static_cast<size_t>(side);
    pos += static_cast<size_t>(side);
    require(items <= static_cast<uint64_t>(kMaxAdaptiveItems), "bitstream: {} items in one adaptive stream (at most {})",
            items, kMaxAdaptiveItems);
    const uint64_t symbols_max =
        static_cast<uint64_t>(kMaxAdaptiveSymbolsPerByte) * (size - pos) + static_cast<uint64_t>(kAdaptiveSymbolSlack);
    require(items * slots <= symbols_max,
            "bitstream: {} items x {} slots is impossible for the {} bytes that remain (truncated?)", items, slots,
            size - pos);
  } else {
    // Every item has at least a 1-byte length varint.
    require(items <= size - pos, "bitstream: item count {} is impossible for the {} bytes that remain (truncated?)",
            items, size - pos);
  }
  h.items = static_cast<int64_t>(items);
  h.slots = static_cast<int64_t>(slots);
  h.body_offset = pos;
  return h;
}

namespace {
void check_fingerprint(const uint8_t* got, size_t n, const Fingerprint& expected, const char* what) {
  if (std::memcmp(got, expected.data(), n) == 0) return;
  fail("{} was made with another checkpoint: its fingerprint starts {} but the loaded checkpoint's is {}", what,
       short_hex(got, std::min<size_t>(n, 8)), short_hex(expected.data(), std::min<size_t>(n, 8)));
}
}  // namespace

void check_stream_fingerprint(const StreamHeader& header, const Fingerprint& expected) {
  check_fingerprint(header.fingerprint.data(), 32, expected, "bitstream");
}

DecodedStream decode_stream(const uint8_t* data, size_t size, const EntropyCoder& coder, const Fingerprint& expected) {
  DecodedStream out;
  out.header = read_stream_header(data, size);
  const StreamHeader& h = out.header;
  check_fingerprint(h.fingerprint.data(), 32, expected, "bitstream");
  require(!h.adaptive, "bitstream is an adaptive stream: it decodes with the side information it carries");
  require(h.coder == coder.id(), "bitstream was coded with {} but a {} decoder was given", coder_name(h.coder),
          coder_name(coder.id()));
  require(h.slots == coder.slots(), "bitstream has {} slots per item, the checkpoint's coder has {}", h.slots,
          coder.slots());
  const size_t slots = static_cast<size_t>(h.slots);
  // Grow as items decode: the output stays proportional to validated input.
  out.indices.reserve(std::min<size_t>(static_cast<size_t>(h.items) * slots, size_t(1) << 22));
  size_t pos = h.body_offset;
  std::vector<int32_t> item(slots);
  for (int64_t i = 0; i < h.items; ++i) {
    uint64_t len = get_varint(data, size, &pos, "payload length");
    require(len <= size - pos, "bitstream truncated: item {} of {} claims {} payload bytes but only {} remain", i,
            h.items, len, size - pos);
    try {
      coder.decode_item(data + pos, static_cast<size_t>(len), item.data());
    } catch (const Error& e) {
      fail("bitstream item {} of {} (offset {}): {}", i, h.items, pos, e.what());
    }
    for (size_t s = 0; s < slots; ++s)
      require(item[s] >= 0 && item[s] < coder.alphabet_size(static_cast<int64_t>(s)),
              "bitstream item {} slot {}: decoded index {} out of range", i, s, item[s]);
    out.indices.insert(out.indices.end(), item.begin(), item.end());
    out.payload_bytes.push_back(static_cast<uint32_t>(len));
    pos += static_cast<size_t>(len);
  }
  require(pos == size, "bitstream has {} bytes of trailing garbage after its {} items", size - pos, h.items);
  return out;
}

DecodedStream decode_stream(const uint8_t* data, size_t size, const EntropyModel& model, const Fingerprint& expected) {
  StreamHeader h = read_stream_header(data, size);
  check_fingerprint(h.fingerprint.data(), 32, expected, "bitstream");
  auto coder = make_coder(h.coder, model);
  return decode_stream(data, size, *coder, expected);
}

// ---------------------------------------------------------------- adaptive streams

std::vector<uint8_t> encode_adaptive_stream(const RansCoder& coder, const Fingerprint& fingerprint,
                                            const std::vector<uint8_t>& side_info, const int32_t* idx, int64_t items) {
  require(items >= 0 && items <= kMaxAdaptiveItems, "bitstream writer: {} items in one adaptive stream (at most {})",
          items, kMaxAdaptiveItems);
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  out.push_back(kStreamVersion);
  out.push_back(static_cast<uint8_t>(CoderId::rans));
  out.push_back(static_cast<uint8_t>(kStreamFlagAdaptive & 0xff));
  out.push_back(static_cast<uint8_t>(kStreamFlagAdaptive >> 8));
  out.insert(out.end(), fingerprint.begin(), fingerprint.end());
  put_varint(out, static_cast<uint64_t>(items));
  put_varint(out, static_cast<uint64_t>(coder.slots()));
  put_varint(out, side_info.size());
  out.insert(out.end(), side_info.begin(), side_info.end());
  const size_t message = out.size();
  if (items > 0) coder.encode_message(idx, items, out);  // an empty stream has no message (readers expect none)
  const uint64_t symbols = static_cast<uint64_t>(items) * static_cast<uint64_t>(coder.slots());
  require(symbols <= static_cast<uint64_t>(kMaxAdaptiveSymbolsPerByte) * (out.size() - message) +
                         static_cast<uint64_t>(kAdaptiveSymbolSlack),
          "bitstream writer: {} items code to only {} bytes, below what readers accept for an adaptive stream", items,
          out.size() - message);
  return out;
}

DecodedStream decode_adaptive_stream(const uint8_t* data, size_t size, const RansCoder& coder,
                                     const Fingerprint& expected) {
  DecodedStream out;
  out.header = read_stream_header(data, size);
  const StreamHeader& h = out.header;
  check_fingerprint(h.fingerprint.data(), 32, expected, "bitstream");
  require(h.adaptive, "bitstream is not an adaptive stream");
  require(h.slots == coder.slots(), "bitstream has {} slots per item, its side information describes {}", h.slots,
          coder.slots());
  out.indices.resize(static_cast<size_t>(h.items * h.slots));
  if (h.items > 0) {
    try {
      coder.decode_message(data + h.body_offset, size - h.body_offset, h.items, out.indices.data());
    } catch (const Error& e) {
      fail("bitstream message (offset {}): {}", h.body_offset, e.what());
    }
  } else {
    require(h.body_offset == size, "bitstream has {} bytes of trailing garbage after its 0 items", size - h.body_offset);
  }
  return out;
}

// ---------------------------------------------------------------- packets

std::vector<uint8_t> encode_packet(const EntropyCoder& coder, const Fingerprint& fingerprint, const int32_t* idx) {
  std::vector<uint8_t> out;
  out.push_back(static_cast<uint8_t>(kPacketVersion << 4 | static_cast<uint8_t>(coder.id())));
  out.insert(out.end(), fingerprint.begin(), fingerprint.begin() + 4);
  coder.encode_item(idx, out);
  return out;
}

CoderId packet_coder(const uint8_t* data, size_t size) {
  require(data != nullptr || size == 0, "packet: null data");
  require(size >= kPacketHeader, "packet truncated: {} bytes, the header needs {}", size, kPacketHeader);
  int version = data[0] >> 4, coder = data[0] & 15;
  require(version == kPacketVersion, "packet format version {} is not supported (this build reads version {})",
          version, kPacketVersion);
  require(is_known_coder_id(coder), "packet: unknown coder id {} (known: {})", coder, known_coder_ids());
  return static_cast<CoderId>(coder);
}

void decode_packet(const uint8_t* data, size_t size, const EntropyCoder& coder, const Fingerprint& expected,
                   int32_t* idx) {
  CoderId id = packet_coder(data, size);
  check_fingerprint(data + 1, 4, expected, "packet");
  require(id == coder.id(), "packet was coded with {} but a {} decoder was given", coder_name(id),
          coder_name(coder.id()));
  try {
    coder.decode_item(data + kPacketHeader, size - kPacketHeader, idx);
  } catch (const Error& e) {
    fail("packet: {}", e.what());
  }
  for (int64_t s = 0; s < coder.slots(); ++s)
    require(idx[s] >= 0 && idx[s] < coder.alphabet_size(s), "packet slot {}: decoded index {} out of range", s, idx[s]);
}

std::vector<int32_t> decode_packet(const std::vector<uint8_t>& packet, const EntropyCoder& coder,
                                   const Fingerprint& expected) {
  std::vector<int32_t> idx(static_cast<size_t>(coder.slots()));
  decode_packet(packet.data(), packet.size(), coder, expected, idx.data());
  return idx;
}

}  // namespace semcodec
