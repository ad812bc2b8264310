// Adaptive streams (docs/bitstream.md, "Adaptive streams") through the Codec:
// the header's bytes read by hand, the side information the quantizer planned
// found verbatim in the stream, decoding equal bit for bit to the quantizer's
// own reconstruction, and hostile or foreign streams refused cleanly.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "codec/codec.h"
#include "codec/entropy/bitstream.h"
#include "models/quantizers/adaptive_klt.h"
#include "util/error.h"

using namespace semcodec;

namespace {

// Unit rows around a common direction with decaying per-dimension spread,
// rotated by `angle` in the first plane so a second set differs in basis.
at::Tensor rows(int64_t n, int64_t d, uint64_t seed, double angle = 0) {
  at::manual_seed(static_cast<int64_t>(seed));
  at::Tensor spread = at::pow(at::full({d}, 0.85, at::kDouble), at::arange(d, at::kDouble));
  at::Tensor x = at::randn({n, d}, at::kDouble) * spread * 0.2;
  x.select(1, 0).add_(1.0);
  at::Tensor r = at::eye(d, at::kDouble);
  r[0][0] = std::cos(angle), r[0][1] = -std::sin(angle), r[1][0] = std::sin(angle), r[1][1] = std::cos(angle);
  x = at::matmul(x, r.t());
  return (x / x.norm(2, {1}, true)).to(at::kFloat);
}

std::shared_ptr<AdaptiveKLT> fitted(uint64_t seed, double bits = 120) {
  AdaptiveKLTOptions o;
  o.target_bits = bits;
  o.max_symbol = 15;
  o.fit_rows = 2000;
  auto q = std::make_shared<AdaptiveKLT>(32, o);
  q->fit(rows(2000, 32, seed));
  return q;
}

// What fit-entropy stores for a stream-adaptive method: its packet tables.
std::unique_ptr<Codec> codec_for(const std::shared_ptr<AdaptiveKLT>& q) {
  const StreamSideInfo& p = q->packet_context();
  EntropyModel em = EntropyModel::from_counts(p.slots, p.alphabet_sizes, TableMode::per_slot, 0, 0, p.slot_counts);
  Fingerprint fp = codec_fingerprint(decoding_tensors(*q), CoderId::rans, em);
  return std::make_unique<Codec>(q, em, CoderId::rans, fp);
}

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.numel() * ca.element_size())) == 0;
}

// Little-endian base-128 varint at `pos` (advances it).
uint64_t varint(const std::vector<uint8_t>& b, size_t& pos) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t byte = b.at(pos++);
    v |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return v;
  }
}

}  // namespace

TEST_CASE("adaptive stream: header by hand, side information verbatim, decode bit-exact", "[codec][adaptive]") {
  auto q = fitted(1);
  auto codec = codec_for(q);
  at::Tensor x = rows(300, 32, 7, 0.6);  // a stream the fit never saw: another basis
  std::vector<uint8_t> bytes = codec->encode(x);

  // Layout: "SCB1", version 1, coder rans (2), flags = adaptive (1, LE u16),
  // fingerprint, varint items, varint slots, varint side size, side bytes, message.
  REQUIRE(bytes.size() > kStreamFixedHeader);
  CHECK(std::memcmp(bytes.data(), "SCB1", 4) == 0);
  CHECK(bytes[4] == 1);
  CHECK(bytes[5] == static_cast<uint8_t>(CoderId::rans));
  CHECK((bytes[6] | (bytes[7] << 8)) == 1);
  CHECK(std::memcmp(bytes.data() + 8, codec->fingerprint().data(), 32) == 0);
  size_t pos = kStreamFixedHeader;
  CHECK(varint(bytes, pos) == 300);
  CHECK(varint(bytes, pos) == 32);
  const uint64_t side_size = varint(bytes, pos);
  std::shared_ptr<const StreamSideInfo> side = q->plan_stream(x);
  REQUIRE(side_size == side->bytes.size());
  CHECK(std::memcmp(bytes.data() + pos, side->bytes.data(), side->bytes.size()) == 0);

  // The decoder's output is the quantizer's own reconstruction under that side information.
  at::Tensor idx = q->encode(x, *side);
  at::Tensor ref = q->decode(idx, *side);
  CodecDecoded d = codec->decode(bytes);
  CHECK(bit_equal(d.indices, idx));
  CHECK(bit_equal(d.features, ref));
  CHECK(d.rate.items == 300);
  CHECK(d.rate.total_bytes == bytes.size());
  CHECK(d.rate.header_bytes + d.rate.framing_bytes + d.rate.payload_bytes == bytes.size());
  // The payload is the side information plus one message: every byte after the header.
  CHECK(d.rate.payload_bytes == bytes.size() - pos);
  // Rate control: the target counts side information and message (within 3%).
  CHECK(8.0 * static_cast<double>(d.rate.payload_bytes) / 300 == Approx(120).epsilon(0.03));
  // Batching does not change the stream.
  codec->set_batch_size(7);
  CHECK(codec->encode(x) == bytes);
}

TEST_CASE("adaptive stream: an empty stream round-trips", "[codec][adaptive]") {
  auto codec = codec_for(fitted(1));
  std::vector<uint8_t> bytes = codec->encode(at::empty({0, 32}));
  CodecDecoded d = codec->decode(bytes);
  CHECK(d.rate.items == 0);
  CHECK(d.features.size(0) == 0);
  CHECK(d.features.size(1) == 32);
  bytes.push_back(0);
  CHECK_THROWS_WITH(codec->decode(bytes), Catch::Contains("trailing"));
}

TEST_CASE("adaptive stream: packets use the method's fixed packet tables", "[codec][adaptive]") {
  auto q = fitted(1);
  auto codec = codec_for(q);
  at::Tensor row = rows(1, 32, 9);
  std::vector<uint8_t> p = codec->encode_packet(row);
  CodecDecoded d = codec->decode_packet(p);
  CHECK(bit_equal(d.indices, q->encode(row)));
  CHECK(bit_equal(d.features, q->decode(q->encode(row))));
}

TEST_CASE("adaptive stream: foreign, truncated and corrupted streams are clean errors", "[codec][adaptive]") {
  auto q = fitted(1);
  auto codec = codec_for(q);
  at::Tensor x = rows(200, 32, 7, 0.6);
  std::vector<uint8_t> bytes = codec->encode(x);

  // Another fit (another checkpoint) refuses it, naming both fingerprints.
  auto other = codec_for(fitted(2));
  REQUIRE(other->fingerprint() != codec->fingerprint());
  CHECK_THROWS_WITH(other->decode(bytes), Catch::Contains("another checkpoint") &&
                                              Catch::Contains(fingerprint_hex(codec->fingerprint()).substr(0, 16)));

  for (size_t cut : {size_t(0), size_t(39), size_t(41), size_t(44), bytes.size() / 2, bytes.size() - 1})
    CHECK_THROWS_AS(codec->decode(bytes.data(), cut), Error);
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  CHECK_THROWS_AS(codec->decode(longer), Error);

  // A side-information length beyond the stream.
  size_t pos = kStreamFixedHeader;
  varint(bytes, pos);
  varint(bytes, pos);
  const size_t side_at = pos;
  std::vector<uint8_t> huge(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(side_at));
  for (uint8_t b : {0xFF, 0xFF, 0xFF, 0xFF, 0x0F}) huge.push_back(b);
  huge.insert(huge.end(), bytes.begin() + static_cast<std::ptrdiff_t>(side_at + 1), bytes.end());
  CHECK_THROWS_AS(codec->decode(huge), Error);

  // An unknown flag bit is refused; flipped bytes anywhere never crash.
  std::vector<uint8_t> flags = bytes;
  flags[6] |= 2;
  CHECK_THROWS_WITH(codec->decode(flags), Catch::Contains("flag"));
  int refused = 0, decoded = 0;
  for (size_t i = kStreamFixedHeader; i < bytes.size(); i += 5) {
    std::vector<uint8_t> bad = bytes;
    bad[i] ^= 0x5A;
    try {
      CodecDecoded d = codec->decode(bad);
      CHECK(d.features.size(0) == d.rate.items);
      CHECK(at::isfinite(d.features).all().item<bool>());
      ++decoded;
    } catch (const Error&) {
      ++refused;
    }
  }
  CHECK(refused > 0);
  CHECK(refused + decoded > 0);
}

TEST_CASE("adaptive stream: a method that does not adapt refuses one", "[codec][adaptive]") {
  auto q = fitted(1);
  auto codec = codec_for(q);
  std::vector<uint8_t> bytes = codec->encode(rows(50, 32, 3));
  // Same fingerprint, but a quantizer without stream adaptation behind it.
  class Plain final : public Quantizer {
   public:
    explicit Plain(std::shared_ptr<AdaptiveKLT> q) : q_(std::move(q)) {}
    std::string name() const override { return "plain"; }
    at::Tensor encode(const at::Tensor& x) override { return q_->encode(x); }
    at::Tensor decode(const at::Tensor& i) override { return q_->decode(i); }
    int64_t slots() const override { return q_->slots(); }
    int64_t alphabet_size(int64_t s) const override { return q_->alphabet_size(s); }
    int64_t embed_dim() const override { return q_->embed_dim(); }
    std::map<std::string, at::Tensor> decoding_state() override { return q_->decoding_state(); }

   private:
    std::shared_ptr<AdaptiveKLT> q_;
  };
  const StreamSideInfo& p = q->packet_context();
  EntropyModel em = EntropyModel::from_counts(p.slots, p.alphabet_sizes, TableMode::per_slot, 0, 0, p.slot_counts);
  Codec plain(std::make_shared<Plain>(q), em, CoderId::rans, codec->fingerprint());
  CHECK_THROWS_WITH(plain.decode(bytes), Catch::Contains("does not adapt"));
}
