// libFuzzer target: feeds untrusted bytes to the bitstream reader, the packet
// reader, every coder's payload decoder and the model deserializer.
// Streams also go through scan_stream (the model-free layout reader), which
// must agree with the decoder.
// Input: byte 0 selects the path (low 2 bits) and the fixed model (bit 2):
//   0: container stream          1: single-item packet
//   2: bare item payload         3: [u16 LE n][n int64 LE model values][payload]
// Any decode that succeeds must yield in-range indices, and re-encoding them
// must reproduce the exact input bytes (every coder's accepted payloads are
// canonical), else the target aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "codec/entropy/bitstream.h"
#include "codec/entropy/coder_registry.h"
#include "codec/entropy/rate.h"
#include "fuzz_model.h"
#include "replay_main.h"
#include "util/error.h"

using namespace semcodec;

namespace {

using semcodec::fuzz::die;

void check_range(const EntropyCoder& c, const int32_t* idx) {
  for (int64_t s = 0; s < c.slots(); ++s)
    if (idx[s] < 0 || idx[s] >= c.alphabet_size(s)) die("decoded index out of range");
}

void try_payload(const EntropyCoder& c, const uint8_t* d, size_t n) {
  std::vector<int32_t> idx(static_cast<size_t>(c.slots()), -1);
  try {
    c.decode_item(d, n, idx.data());
  } catch (const Error&) {
    return;
  }
  check_range(c, idx.data());
  std::vector<uint8_t> again = c.encode_item(idx.data());
  if (again.size() != n || (n && std::memcmp(again.data(), d, n) != 0)) die("accepted payload is not canonical");
}

// The model-free layout reader (inspect, decompress pre-check) must never
// crash, and must agree with the full decoder on every stream that decodes.
DecodedStream try_scan(const uint8_t* d, size_t n, bool* ok) {
  *ok = false;
  try {
    DecodedStream s = scan_stream(d, n);
    *ok = true;
    StreamRate r = stream_rate(s, n);
    if (r.header_bytes + r.framing_bytes + r.payload_bytes != n) die("stream_rate does not add up");
    return s;
  } catch (const Error&) {
    return {};
  }
}

void try_stream(const EntropyCoder& c, const uint8_t* d, size_t n) {
  bool scanned = false;
  DecodedStream layout = try_scan(d, n, &scanned);
  try {
    DecodedStream s = decode_stream(d, n, c, fuzz::fixed_fingerprint());
    if (!scanned || layout.payload_bytes != s.payload_bytes) die("scan_stream disagrees with decode_stream");
    for (int64_t i = 0; i < s.header.items; ++i) check_range(c, s.indices.data() + i * c.slots());
    std::vector<uint8_t> again = encode_stream(c, fuzz::fixed_fingerprint(), s.indices.data(), s.header.items);
    if (again.size() != n || std::memcmp(again.data(), d, n) != 0) die("accepted stream is not canonical");
  } catch (const Error&) {
  }
}

void try_packet(const EntropyCoder& c, const uint8_t* d, size_t n) {
  std::vector<int32_t> idx(static_cast<size_t>(c.slots()), -1);
  try {
    decode_packet(d, n, c, fuzz::fixed_fingerprint(), idx.data());
  } catch (const Error&) {
    return;
  }
  check_range(c, idx.data());
  std::vector<uint8_t> again = encode_packet(c, fuzz::fixed_fingerprint(), idx.data());
  if (again.size() != n || std::memcmp(again.data(), d, n) != 0) die("accepted packet is not canonical");
}

// Every registered coder for one model.
struct Coders {
  std::vector<std::unique_ptr<EntropyCoder>> c;
  explicit Coders(const EntropyModel& m) {
    for (const CoderInfo& info : coders()) c.push_back(info.make(m));
  }
};

const Coders& fixed_coders(int which) {
  static const Coders a(fuzz::fixed_models()[0]);
  static const Coders b(fuzz::fixed_models()[1]);
  return which ? b : a;
}

void run_all(const Coders& cs, int path, const uint8_t* d, size_t n) {
  for (const auto& c : cs.c) {
    if (path == 0) try_stream(*c, d, n);
    if (path == 1) try_packet(*c, d, n);
    if (path == 2) try_payload(*c, d, n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int path = data[0] & 3;
  const int which = (data[0] >> 2) & 1;
  const uint8_t* d = data + 1;
  size_t n = size - 1;
  if (path != 3) {
    run_all(fixed_coders(which), path, d, n);
    return 0;
  }
  if (n < 2) return 0;
  size_t values = size_t(d[0]) | size_t(d[1]) << 8;
  d += 2;
  n -= 2;
  size_t mbytes = std::min(values * 8, n);
  try {
    EntropyModel m = EntropyModel::from_bytes(d, mbytes);
    // Round trip of the tables themselves.
    if (EntropyModel::deserialize(m.serialize()) != m) die("model serialization round trip differs");
    Coders cs(m);
    const uint8_t* p = d + mbytes;
    size_t pn = n - mbytes;
    for (int q = 0; q < 3; ++q) run_all(cs, q, p, pn);
    // Encode something with the fuzzed model and decode it back.
    std::vector<int32_t> idx(static_cast<size_t>(m.slots()));
    for (int64_t s = 0; s < m.slots(); ++s)
      idx[static_cast<size_t>(s)] = static_cast<int32_t>((s * 7 + static_cast<int64_t>(pn)) % m.alphabet_size(s));
    for (const auto& c : cs.c) {
      if (c->decode_item(c->encode_item(idx.data())) != idx) die("round trip with a fuzzed model failed");
    }
  } catch (const Error&) {
  }
  return 0;
}

#ifndef SEMCODEC_LIBFUZZER
int main(int argc, char** argv) {
  return semcodec::fuzz::replay_main(argc, argv, "fuzz_decoder", [](const uint8_t* d, size_t n) {
    LLVMFuzzerTestOneInput(d, n);
    return 1;
  });
}
#endif
