// compress / decompress / inspect / fit-entropy / eval --bitstream through the
// real binary: streams cross process boundaries, bad streams leave nothing behind.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "cli_runner.h"
#include "codec/checkpoint_codec.h"
#include "data/feature_store.h"
#include "data/synthetic.h"
#include "test_support.h"
#include "util/atomic_file.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
using test::Run;
Run run(const std::string& args) { return test::run_cli(args); }
Run run_stdout(const std::string& args) { return test::run_cli(args, "2>/dev/null"); }  // stdout only (JSON)

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.numel() * ca.element_size())) == 0;
}

bool has_temp_files(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos ||
        e.path().extension() == ".partial")
      return true;
  return false;
}

// One trained run shared by the cases below (train is the slow part).
struct Trained {
  TempDir dir{"cli-codec"};
  std::string data, ckpt;
  Trained() {
    data = test::small_feature_file(dir, "s.h5");
    test::write_text(dir.file("model.yaml"), test::kSmallModelYaml);
    Run tr = run("train -q -c " + dir.file("model.yaml") + " --features " + data + " -o " + dir.file("run"));
    INFO(tr.output);
    REQUIRE(tr.code == 0);
    ckpt = dir.file("run/best.safetensors");
  }
};
Trained& trained() {
  static Trained t;
  return t;
}
}  // namespace

TEST_CASE("train leaves entropy tables, compress in one process, decode in another", "[cli][codec]") {
  Trained& t = trained();
  const std::string scb = t.dir.file("a.scb");
  Run c = run("compress -q --checkpoint " + t.ckpt + " --features " + t.data + " --out " + scb);
  INFO(c.output);
  REQUIRE(c.code == 0);
  CHECK_THAT(c.output, Catch::Contains("payload") && Catch::Contains("raw rate 100"));
  REQUIRE(file_exists(scb));

  // This process decodes the other process's stream to the indices it computes itself.
  auto codec = load_codec(t.ckpt, "cpu");
  FeatureSet set = read_feature_file(t.data);
  const std::string bytes = read_file(scb);
  DecodedStream ds = codec->decode_indices(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  at::Tensor idx = indices_to_tensor(ds.indices, ds.header.items, ds.header.slots);
  CHECK(bit_equal(idx, codec->quantize(set.features)));

  // decompress (a third process) writes the reconstructions with the metadata of --features.
  Run dz = run("decompress -q " + scb + " --checkpoint " + t.ckpt + " --features " + t.data + " --out " +
               t.dir.file("r.h5"));
  INFO(dz.output);
  REQUIRE(dz.code == 0);
  FeatureSet r = read_feature_file(t.dir.file("r.h5"));
  CHECK(bit_equal(r.labels.to(at::kLong), set.labels.to(at::kLong)));
  CHECK(r.ids == set.ids);
  CHECK(r.class_names == set.class_names);
  CHECK(bit_equal(r.class_embeddings, set.class_embeddings));
  CHECK(bit_equal(r.features, codec->reconstruct(idx)));
  // Without --features: the same reconstructions, placeholder metadata.
  Run dz2 = run("decompress -q " + scb + " --checkpoint " + t.ckpt + " --out " + t.dir.file("r2.h5"));
  REQUIRE(dz2.code == 0);
  FeatureSet r2 = read_feature_file(t.dir.file("r2.h5"));
  CHECK(bit_equal(r2.features, r.features));
  CHECK(r2.ids[3] == "item/3");
  // Decoding streams 7 rows at a time to the file: each block is what the
  // quantizer decodes from those 7 rows' indices.
  Run dz3 = run("decompress -q --batch 7 " + scb + " --checkpoint " + t.ckpt + " --features " + t.data + " --out " +
                t.dir.file("r3.h5"));
  INFO(dz3.output);
  REQUIRE(dz3.code == 0);
  FeatureSet r3 = read_feature_file(t.dir.file("r3.h5"));
  std::vector<at::Tensor> blocks;
  for (int64_t s = 0; s < idx.size(0); s += 7)
    blocks.push_back(codec->quantizer().decode(idx.narrow(0, s, std::min<int64_t>(7, idx.size(0) - s))).to(at::kFloat));
  CHECK(bit_equal(r3.features, at::cat(blocks)));
  CHECK(r3.ids == set.ids);
  CHECK(bit_equal(r3.labels.to(at::kLong), set.labels.to(at::kLong)));
  // A --features file of other rows is refused before anything is written.
  FeatureSet fewer = select_rows(set, {0, 1, 2});
  write_feature_file(t.dir.file("fewer.h5"), fewer);
  Run wrong = run("decompress -q " + scb + " --checkpoint " + t.ckpt + " --features " + t.dir.file("fewer.h5") +
                  " --out " + t.dir.file("r4.h5"));
  CHECK(wrong.code != 0);
  CHECK_THAT(wrong.output, Catch::Contains("fewer.h5: 3 rows, but stream") && Catch::Contains("150 items"));
  CHECK_FALSE(file_exists(t.dir.file("r4.h5")));
  CHECK_FALSE(file_exists(t.dir.file("r4.h5.partial")));

  // inspect agrees with the bytes on disk.
  Run in = run_stdout("inspect --json " + scb + " --checkpoint " + t.ckpt);
  REQUIRE(in.code == 0);
  nlohmann::json j = nlohmann::json::parse(in.output);
  CHECK(j["items"] == 150);
  CHECK(j["slots"] == 50);
  CHECK(j["total_bytes"].get<uint64_t>() == bytes.size());
  CHECK(j["header_bytes"] == 43);  // 40 fixed + varint(150) 2 bytes + varint(50) 1 byte
  CHECK(j["raw_bits_per_item"] == 100);
  CHECK(j["coder"] == coder_name(codec->coder_id()));
  uint64_t payload = 0;
  for (uint32_t b : ds.payload_bytes) payload += b;
  CHECK(j["payload_bytes"].get<uint64_t>() == payload);
  CHECK(j["header_bytes"].get<uint64_t>() + j["framing_bytes"].get<uint64_t>() + payload == bytes.size());
  Run text = run("inspect " + scb);
  CHECK(text.code == 0);
  CHECK_THAT(text.output, Catch::Contains("fingerprint " + fingerprint_hex(codec->fingerprint())));
}

TEST_CASE("eval from a bitstream: same accuracy as in memory, bits from the bytes", "[cli][codec]") {
  Trained& t = trained();
  const std::string scb = t.dir.file("e.scb");
  REQUIRE(run("compress -q --checkpoint " + t.ckpt + " --features " + t.data + " --out " + scb).code == 0);
  Run plain = run("eval --checkpoint " + t.ckpt + " --features " + t.data + " -o " + t.dir.file("plain.json"));
  Run bs = run("eval --checkpoint " + t.ckpt + " --features " + t.data + " --bitstream " + scb + " -o " +
               t.dir.file("bs.json"));
  Run via = run("eval --checkpoint " + t.ckpt + " --features " + t.data + " --via-bitstream -o " + t.dir.file("via.json"));
  INFO(plain.output << bs.output << via.output);
  REQUIRE((plain.code == 0 && bs.code == 0 && via.code == 0));
  auto load = [&](const std::string& f) { return nlohmann::json::parse(read_file(t.dir.file(f))); };
  nlohmann::json p = load("plain.json"), b = load("bs.json"), v = load("via.json");
  CHECK(p["rate_source"] == "raw");
  CHECK(b["rate_source"] == scb);
  CHECK(b["top1"] == p["top1"]);
  CHECK(v["top1"] == p["top1"]);
  // Same rows in the same batch: identical floats. The file holds every row, decoded in one
  // larger batch, so its reconstructions may differ from those in the last bit only.
  CHECK(v["mean_cosine"] == p["mean_cosine"]);
  CHECK(b["mean_cosine"].get<double>() == Approx(v["mean_cosine"].get<double>()).epsilon(1e-6));
  // Bits: the payload bytes of the evaluated (held-out) rows, from the file.
  FeatureSet set = read_feature_file(t.data);
  Checkpoint ck = load_checkpoint(t.ckpt);
  const std::string bytes = read_file(scb);
  DecodedStream s = scan_stream(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  uint64_t sum = 0, rows = 0;
  for (int64_t i = 0; i < set.size(); ++i) {
    const int64_t l = set.labels[i].item<int64_t>();
    if (std::find(ck.heldout_classes.begin(), ck.heldout_classes.end(), l) != ck.heldout_classes.end())
      sum += s.payload_bytes[static_cast<size_t>(i)], ++rows;
  }
  CHECK(b["bits_per_item"].get<double>() == Approx(8.0 * double(sum) / double(rows)));
  CHECK(b["raw_bits"].get<double>() == 100);
}

TEST_CASE("foreign, corrupt and truncated streams: non-zero exit, clear message, no output", "[cli][codec]") {
  Trained& t = trained();
  const std::string scb = t.dir.file("c.scb");
  REQUIRE(run("compress -q --checkpoint " + t.ckpt + " --features " + t.data + " --out " + scb).code == 0);
  const std::string good = read_file(scb);

  // Another checkpoint: same weights, tables refitted with other smoothing -> another fingerprint.
  const std::string other = t.dir.file("other.safetensors");
  std::filesystem::copy_file(t.ckpt, other, std::filesystem::copy_options::overwrite_existing);
  Run fit = run("fit-entropy -q --checkpoint " + other + " --features " + t.data + " --coder huffman --smoothing 5");
  INFO(fit.output);
  REQUIRE(fit.code == 0);
  CHECK_THAT(fit.output, Catch::Contains("per-slot") && Catch::Contains("stored"));
  Run foreign = run("decompress -q " + scb + " --checkpoint " + other + " --out " + t.dir.file("x.h5"));
  CHECK(foreign.code != 0);
  CHECK_THAT(foreign.output, Catch::Contains("another checkpoint") && Catch::Contains("c.scb"));
  CHECK_FALSE(file_exists(t.dir.file("x.h5")));

  struct Case {
    const char* name;
    std::string bytes;
    const char* message;
  };
  std::string flipped = good;
  flipped[flipped.size() - 3] = static_cast<char>(flipped[flipped.size() - 3] ^ 0x41);
  std::string version = good;
  version[4] = 9;
  const Case cases[] = {{"truncated", good.substr(0, good.size() - 7), "truncated"},
                        {"header only", good.substr(0, 30), "truncated"},
                        {"bad magic", "XXXX" + good.substr(4), "magic"},
                        {"version", version, "version"},
                        {"trailing", good + "zz", "trailing"},
                        {"flipped payload", flipped, "item"},
                        {"empty", "", "truncated"}};
  for (const Case& c : cases) {
    INFO(c.name);
    write_file_atomic(t.dir.file("bad.scb"), c.bytes);
    Run r = run("decompress -q " + t.dir.file("bad.scb") + " --checkpoint " + t.ckpt + " --out " + t.dir.file("y.h5"));
    INFO(r.output);
    CHECK(r.code != 0);
    CHECK_THAT(r.output, Catch::Contains("bad.scb") && Catch::Contains("semcodec: error"));
    CHECK_THAT(r.output, Catch::Contains(c.message, Catch::CaseSensitive::No));
    CHECK_FALSE(file_exists(t.dir.file("y.h5")));
    Run i = run("inspect " + t.dir.file("bad.scb"));
    if (std::string(c.name) != "flipped payload") CHECK(i.code != 0);  // inspect does not decode payloads
  }
  CHECK_FALSE(has_temp_files(t.dir.path()));
}

TEST_CASE("codec commands document every option", "[cli][codec]") {
  for (const char* cmd : {"compress", "decompress", "inspect", "fit-entropy"}) {
    Run h = run(std::string(cmd) + " --help");
    INFO(h.output);
    CHECK(h.code == 0);
    CHECK_THAT(h.output, Catch::Contains("--checkpoint") || Catch::Contains("stream"));
  }
}
