// Codec: features -> bytes -> features through a real (small) PQVAE-shared,
// the checkpoint fingerprint, and the rate accounting helpers.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "codec/codec.h"
#include "codec/entropy/rate.h"
#include "codec/entropy/raw_coder.h"
#include "data/synthetic.h"
#include "models/pqvae/pqvae_shared.h"
#include "util/error.h"
#include "util/hash.h"

using namespace semcodec;

namespace {

ModelConfig small_config(int64_t k = 8) {
  ModelConfig c;
  c.embed_dim = 64;
  c.hidden_channels = 32;
  c.body_channels = 16;
  c.residual_channels = 8;
  c.latent_channels = 16;
  c.d_sub = 4;
  c.codebook_size = k;
  return c;
}

std::shared_ptr<PQVAEShared> small_model(int64_t k = 8, uint64_t seed = 1) {
  at::manual_seed(static_cast<int64_t>(seed));
  auto m = std::make_shared<PQVAEShared>(small_config(k));
  m->pq->init_uniform(seed);
  m->eval();
  return m;
}

at::Tensor features(int64_t per_class = 6) {
  SyntheticOptions o;
  o.num_classes = 20, o.per_class = per_class, o.dim = 64, o.semantic_rank = 8, o.nuisance_rank = 8;
  o.num_superclasses = 4;
  return make_synthetic(o).features;
}

std::unique_ptr<Codec> make_test_codec(const std::shared_ptr<PQVAEShared>& m, const at::Tensor& x, CoderId coder,
                                       TableMode mode = TableMode::per_subspace) {
  std::vector<int32_t> idx = indices_to_int32(m->encode(x));
  EntropyModel em = EntropyModel::fit(idx.data(), x.size(0), m->slots(), {m->alphabet_size(0)}, mode, 25,
                                      m->pq->subspaces());
  Fingerprint fp = codec_fingerprint(decoding_tensors(*m), coder, em);
  return std::make_unique<Codec>(m, em, coder, fp);
}

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.numel() * ca.element_size())) == 0;
}

}  // namespace

TEST_CASE("decode(encode(x)) equals the in-memory quantized reconstruction bit for bit", "[codec]") {
  auto m = small_model();
  at::Tensor x = features();
  at::Tensor ref_idx = m->encode(x);
  at::Tensor ref = m->decode(ref_idx);
  for (CoderId id : {CoderId::raw, CoderId::huffman, CoderId::rans}) {
    INFO(coder_name(id));
    auto codec = make_test_codec(m, x, id);
    std::vector<uint8_t> bytes = codec->encode(x);
    CodecDecoded d = codec->decode(bytes);
    CHECK(bit_equal(d.indices, ref_idx));
    CHECK(bit_equal(d.features, ref));
    CHECK(d.rate.items == x.size(0));
    CHECK(d.rate.total_bytes == bytes.size());
    CHECK(d.rate.header_bytes + d.rate.framing_bytes + d.rate.payload_bytes == bytes.size());
    // Small batches give the same stream (indices do not depend on batching).
    codec->set_batch_size(7);
    CHECK(codec->encode(x) == bytes);
  }
}

TEST_CASE("a packet carries one item and decodes to the in-memory reconstruction", "[codec]") {
  auto m = small_model();
  at::Tensor x = features();
  auto codec = make_test_codec(m, x, CoderId::rans);
  at::Tensor row = x[3];
  std::vector<uint8_t> p = codec->encode_packet(row);
  CHECK(p[0] == 0x12);
  CHECK(std::memcmp(p.data() + 1, codec->fingerprint().data(), 4) == 0);
  CodecDecoded d = codec->decode_packet(p);
  CHECK(bit_equal(d.indices, m->encode(row.unsqueeze(0))));
  CHECK(bit_equal(d.features, m->decode(m->encode(row.unsqueeze(0)))));
  CHECK(d.rate.payload_bytes + 5 == p.size());
  p.pop_back();
  CHECK_THROWS_AS(codec->decode_packet(p), Error);
}

TEST_CASE("a stream the checkpoint's tables fit badly is written raw and decodes bit for bit", "[codec]") {
  auto m = small_model();
  at::Tensor x = features();
  at::Tensor ref_idx = m->encode(x);
  // Tables that give the symbols x actually uses the longest codes: each symbol's count
  // is 1 + (the largest usage - its usage) x 1000, as tables fitted on other data might be.
  std::vector<int32_t> idx = indices_to_int32(ref_idx);
  std::vector<uint64_t> usage(8, 0);
  for (int32_t v : idx) ++usage[static_cast<size_t>(v)];
  const uint64_t most = *std::max_element(usage.begin(), usage.end());
  std::vector<uint64_t> counts;
  for (uint64_t u : usage) counts.push_back(1 + (most - u) * 1000);
  EntropyModel misfit = EntropyModel::from_counts(m->slots(), {8}, TableMode::shared, 0, 0, {counts});
  for (CoderId id : {CoderId::huffman, CoderId::rans}) {
    INFO(coder_name(id));
    Codec codec(m, misfit, id, codec_fingerprint(decoding_tensors(*m), id, misfit));
    // The references: the stream each coder alone writes (100 slots of K = 8: raw is
    // 300 bits = 38 bytes per item).
    auto coder = make_coder(id, misfit);
    RawCoder raw(misfit);
    const std::vector<uint8_t> coded_only = encode_stream(*coder, codec.fingerprint(), idx.data(), x.size(0));
    const std::vector<uint8_t> raw_only = encode_stream(raw, codec.fingerprint(), idx.data(), x.size(0));
    REQUIRE(raw_only.size() == 42 + static_cast<size_t>(x.size(0)) * (1 + 38));
    REQUIRE(raw_only.size() < coded_only.size());  // the case under test
    const std::vector<uint8_t> bytes = codec.encode(x);
    CHECK(bytes == raw_only);
    CHECK(codec.encode_indices(ref_idx) == raw_only);
    CodecDecoded d = codec.decode(bytes);
    CHECK(d.rate.coder == CoderId::raw);
    CHECK(bit_equal(d.indices, ref_idx));
    CHECK(bit_equal(d.features, m->decode(ref_idx)));
    CHECK(stream_coder_text(d.rate.coder, id) == std::string("raw (fallback from ") + coder_name(id) + ")");
    // What the checkpoint's own coder wrote still decodes; another coder's stream does not.
    CHECK(bit_equal(codec.decode(coded_only).indices, ref_idx));
    const CoderId foreign = id == CoderId::rans ? CoderId::huffman : CoderId::rans;
    const std::vector<uint8_t> other =
        encode_stream(*make_coder(foreign, misfit), codec.fingerprint(), idx.data(), x.size(0));
    CHECK_THROWS_WITH(codec.decode(other), Catch::Contains(std::string("coded with ") + coder_name(foreign)));
    // A packet takes the shorter of the two codes of its item.
    const at::Tensor row = x[3];
    const std::vector<uint8_t> p = codec.encode_packet(row);
    const std::vector<int32_t> item(idx.begin() + 3 * m->slots(), idx.begin() + 4 * m->slots());
    const size_t coded_bytes = coder->encode_item(item.data()).size();
    CHECK(p.size() == 5 + std::min<size_t>(38, coded_bytes));
    CHECK((p[0] & 15) == (38 < coded_bytes ? 0 : static_cast<int>(id)));
    CHECK(bit_equal(codec.decode_packet(p).indices, ref_idx.narrow(0, 3, 1)));
  }
}

TEST_CASE("a stream from another checkpoint is refused, naming both fingerprints", "[codec]") {
  auto m = small_model();
  at::Tensor x = features();
  auto a = make_test_codec(m, x, CoderId::rans);
  auto m2 = small_model(8, 2);
  auto b = make_test_codec(m2, x, CoderId::rans);
  REQUIRE(a->fingerprint() != b->fingerprint());
  std::vector<uint8_t> bytes = a->encode(x);
  try {
    b->decode(bytes);
    FAIL("decoded a foreign stream");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("another checkpoint"));
    CHECK_THAT(msg, Catch::Contains(fingerprint_hex(a->fingerprint()).substr(0, 16)));
    CHECK_THAT(msg, Catch::Contains(fingerprint_hex(b->fingerprint()).substr(0, 16)));
  }
  // Truncations and flipped bytes are clean errors, never crashes.
  for (size_t cut : {size_t(0), size_t(10), size_t(40), bytes.size() / 2, bytes.size() - 1}) {
    CHECK_THROWS_AS(a->decode(bytes.data(), cut), Error);
  }
  int failures = 0;
  for (size_t i = 40; i < bytes.size(); i += 3) {
    std::vector<uint8_t> bad = bytes;
    bad[i] ^= 0x5A;
    try {
      a->decode(bad);
    } catch (const Error&) {
      ++failures;
    }
  }
  CHECK(failures > 0);
}

TEST_CASE("the fingerprint covers codebook, decoder and tables but not the encoder", "[codec]") {
  auto m = small_model();
  at::Tensor x = features();
  auto base = make_test_codec(m, x, CoderId::rans);
  const Fingerprint fp = base->fingerprint();
  const EntropyModel& em = base->model();
  CHECK(codec_fingerprint(decoding_tensors(*m), CoderId::rans, em) == fp);  // deterministic
  CHECK(codec_fingerprint(decoding_tensors(*m), CoderId::huffman, em) != fp);
  EntropyModel other = EntropyModel::uniform(em.slots(), em.alphabet_sizes(), em.mode(), em.positions(), em.subspaces());
  CHECK(codec_fingerprint(decoding_tensors(*m), CoderId::rans, other) != fp);
  at::NoGradGuard g;
  auto nudge = [&](at::Tensor t) {  // one float moves by one ulp
    float* p = t.data_ptr<float>();
    const float old = p[0];
    p[0] = std::nextafter(old, 2.0f);
    Fingerprint changed = codec_fingerprint(decoding_tensors(*m), CoderId::rans, em);
    p[0] = old;
    return changed;
  };
  CHECK(nudge(m->pq->codebook) != fp);
  CHECK(nudge(m->decoder->named_parameters().begin()->value()) != fp);
  CHECK(nudge(m->encoder->named_parameters().begin()->value()) == fp);
}

TEST_CASE("fingerprint serialization matches an independent byte layout", "[codec]") {
  // One float tensor [2] = {1, -2.5} and a 1-slot K=2 uniform model, laid out by hand.
  at::Tensor t = at::tensor({1.0f, -2.5f});
  EntropyModel em = EntropyModel::uniform(1, {2}, TableMode::per_slot);
  std::vector<uint8_t> b;
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  const char tag[] = "semcodec.codec.v1";
  b.insert(b.end(), tag, tag + sizeof tag);  // with the terminating zero
  u64(1);                                      // one tensor
  u64(1), b.push_back('w');                    // name
  b.push_back(1);                              // floating
  u64(1), u64(2);                              // rank 1, shape [2]
  for (uint8_t v : {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0}) b.push_back(v);  // 1.0f, -2.5f little-endian
  b.push_back(2);                                                                      // rans
  // Model tables: magic, version, mode 3, slots 1, positions 0, subspaces 0, tables 1, K 2, then K_t 2, counts 1 1.
  std::vector<int64_t> flat = {0x53434D31, 1, 3, 1, 0, 0, 1, 2, 2, 1, 1};
  u64(flat.size() * 8);
  for (int64_t v : flat) u64(static_cast<uint64_t>(v));
  Sha256 h;
  h.update(b.data(), b.size());
  CHECK(codec_fingerprint({{"w", t}}, CoderId::rans, em) == h.digest());
}

TEST_CASE("empirical entropy and model code length match hand computations", "[codec][rate]") {
  // 4 items x 2 slots, K = 2. Slot 0: 0 0 1 1; slot 1: 0 0 0 0.
  std::vector<int32_t> idx = {0, 0, 0, 0, 1, 0, 1, 0};
  // per-slot: slot 0 has entropy 1 bit, slot 1 zero -> 1 bit per item.
  CHECK(empirical_entropy_bits(idx.data(), 4, 2, {2}, TableMode::per_slot) == Approx(1.0));
  // shared: 6 zeros, 2 ones over 8 symbols: H = 0.811278 bits/symbol, 2 symbols per item.
  const double h = -(0.75 * std::log2(0.75) + 0.25 * std::log2(0.25));
  CHECK(empirical_entropy_bits(idx.data(), 4, 2, {2}, TableMode::shared) == Approx(2 * h));
  // Model with counts (slot tables) {3, 1} and {1, 7}: slot 0 codes 0,0,1,1 at p = 3/4, 3/4, 1/4, 1/4;
  // slot 1 codes 0 four times at p = 1/8 (3 bits each).
  EntropyModel em = EntropyModel::from_counts(2, {2}, TableMode::per_slot, 0, 0, {{3, 1}, {1, 7}});
  const double expect = (2 * -std::log2(0.75) + 2 * 2.0 + 4 * 3.0) / 4;
  CHECK(model_code_bits(em, idx.data(), 4) == Approx(expect));
  CHECK(raw_bits_per_item({4, 8, 1, 1024}) == 2 + 3 + 0 + 10);
}

TEST_CASE("scan_stream reads lengths without a model and agrees with the decoder", "[codec][rate]") {
  auto m = small_model();
  at::Tensor x = features();
  auto codec = make_test_codec(m, x, CoderId::huffman);
  std::vector<uint8_t> bytes = codec->encode(x);
  DecodedStream s = scan_stream(bytes.data(), bytes.size());
  DecodedStream d = codec->decode_indices(bytes.data(), bytes.size());
  CHECK(s.payload_bytes == d.payload_bytes);
  CHECK(s.indices.empty());
  StreamRate r = stream_rate(s, bytes.size());
  // Header: 40 fixed bytes + varint(120) (1 byte) + varint(slots = 100) (1 byte).
  CHECK(r.header_bytes == 42);
  CHECK(r.framing_bytes == static_cast<uint64_t>(x.size(0)));  // every payload < 128 bytes: 1-byte lengths
  bytes.push_back(0);
  CHECK_THROWS_AS(scan_stream(bytes.data(), bytes.size()), Error);
  bytes.resize(bytes.size() - 5);
  CHECK_THROWS_AS(scan_stream(bytes.data(), bytes.size()), Error);
}
