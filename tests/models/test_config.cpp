#include "util/config.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <set>
#include <fstream>

#include "models/quantizers/ema_codebook_pq.h"
#include "models/quantizers/faiss_quantizer.h"
#include "models/quantizers/reference_quantizers.h"
#include "models/quantizers/scalar_quantizer.h"
#include "models/run_config.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/yaml_bounded.h"

using namespace semcodec;
using Catch::Contains;

namespace {

std::string write_yaml(const test::TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

RunConfig from_text(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return config_from_yaml_string<RunConfig>(text, "x.yaml", overrides);
}

void require_equal(const RunConfig& x, const RunConfig& y) {
  CHECK(x.data.features == y.data.features);
  CHECK(x.data.split.mode == y.data.split.mode);
  CHECK(x.data.split.heldout_classes == y.data.split.heldout_classes);
  CHECK(x.data.split.train_classes_file == y.data.split.train_classes_file);
  CHECK(x.data.max_device_memory_gb == y.data.max_device_memory_gb);
  CHECK(x.model.latent_channels == y.model.latent_channels);
  CHECK(x.model.d_sub == y.model.d_sub);
  CHECK(x.model.codebook_size == y.model.codebook_size);
  CHECK(x.model.codebook_init == y.model.codebook_init);
  CHECK(x.model.dead_code_restart == y.model.dead_code_restart);
  CHECK(x.loss.alpha == y.loss.alpha);
  CHECK(x.loss.beta == y.loss.beta);
  CHECK(x.train.lr == y.train.lr);
  CHECK(x.train.weight_decay == y.train.weight_decay);
  CHECK(x.train.epochs == y.train.epochs);
  CHECK(x.train.device == y.train.device);
  CHECK(x.output.dir == y.output.dir);
  // Every field, including ones added later.
  CHECK(to_json(x) == to_json(y));
}

// Differs from the defaults in every section, with awkward values.
RunConfig unusual_config() {
  RunConfig c;
  c.data.features = "data/with spaces: and #hash.h5";
  c.data.split.mode = "files";
  c.data.split.train_classes_file = "true";  // a string that looks like a boolean
  c.data.split.heldout_classes_file = "123";  // ... and like a number
  c.data.max_device_memory_gb = 0.1 + 0.2;    // not exactly representable in short decimal
  c.model.latent_channels = 96;
  c.model.d_sub = 24;
  c.model.codebook_size = 16;
  c.model.codebook_init = "sample";
  c.model.dead_code_restart = false;
  c.loss.alpha = 1.0 / 3.0;
  c.loss.beta = 1e-7;
  c.train.lr = 3e-4;
  c.train.epochs = 7;
  c.train.device = "cuda:1";
  c.output.dir = "";
  return c;
}

}  // namespace

TEST_CASE("config: absent keys keep their defaults", "[config]") {
  RunConfig c = from_text("train:\n  lr: 0.01\nmodel:\n  codebook_size: 8\n");
  RunConfig defaults;
  CHECK(c.train.lr == 0.01);
  CHECK(c.model.codebook_size == 8);
  CHECK(c.train.epochs == defaults.train.epochs);
  CHECK(c.model.d_sub == defaults.model.d_sub);
  CHECK(c.data.split.mode == defaults.data.split.mode);
  CHECK(c.output.dir == defaults.output.dir);

  RunConfig empty = from_text("");
  CHECK(to_json(empty) == to_json(defaults));
  RunConfig empty_section = from_text("train:\n");
  CHECK(to_json(empty_section) == to_json(defaults));
}

TEST_CASE("config: unknown keys are rejected with file, key path and a suggestion", "[config]") {
  test::TempDir dir("config");
  std::string path = write_yaml(dir, "x.yaml", "train:\n  lrr: 0.1\n");
  REQUIRE_THROWS_AS(load_config<RunConfig>(path, {}), Error);
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {}), Contains(path + ": train.lrr: unknown key (did you mean 'lr'?)"));
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {}), Contains("line 2"));

  REQUIRE_THROWS_WITH(from_text("model:\n  codebok_size: 8\n"),
                      Contains("x.yaml: model.codebok_size: unknown key (did you mean 'codebook_size'?)"));
  REQUIRE_THROWS_WITH(from_text("data:\n  split:\n    mdoe: files\n"), Contains("data.split.mdoe"));
  REQUIRE_THROWS_WITH(from_text("modle:\n  d_sub: 8\n"), Contains("modle: unknown key (did you mean 'model'?)"));
  // Nothing close: list what is allowed instead.
  REQUIRE_THROWS_WITH(from_text("loss:\n  gamma_weight: 1\n"), Contains("loss.gamma_weight: unknown key (known keys here: alpha, beta)"));
  REQUIRE_THROWS_WITH(from_text("train:\n  lr: 0.1\n  lr: 0.2\n"), Contains("train.lr: duplicate key"));
}

TEST_CASE("config: wrong types are rejected with the key path", "[config]") {
  REQUIRE_THROWS_WITH(from_text("train:\n  lr: fast\n"), Contains("x.yaml: train.lr: expected a number, got 'fast'"));
  REQUIRE_THROWS_WITH(from_text("train:\n  lr: \"0.1\"\n"), Contains("train.lr: expected a number, got the quoted string"));
  REQUIRE_THROWS_WITH(from_text("train:\n  epochs: 1.5\n"), Contains("train.epochs: expected an integer, got '1.5'"));
  REQUIRE_THROWS_WITH(from_text("train:\n  epochs: [1, 2]\n"), Contains("train.epochs: expected an integer, got a list"));
  REQUIRE_THROWS_WITH(from_text("train:\n  epochs:\n"), Contains("train.epochs: expected an integer, got no value"));
  REQUIRE_THROWS_WITH(from_text("train:\n  epochs: {a: 1}\n"), Contains("train.epochs: expected an integer, got a mapping"));
  REQUIRE_THROWS_WITH(from_text("train:\n  epochs: 99999999999999999999\n"), Contains("too large"));
  REQUIRE_THROWS_WITH(from_text("train: 5\n"), Contains("x.yaml: train: expected a section"));
  REQUIRE_THROWS_WITH(from_text("- 1\n- 2\n"), Contains("expected a section"));
  REQUIRE_THROWS_WITH(from_text("data:\n  features: [a.h5]\n"), Contains("data.features: expected a string, got a list"));

  SECTION("booleans are YAML true/false only") {
    CHECK(from_text("model:\n  dead_code_restart: false\n").model.dead_code_restart == false);
    CHECK(from_text("model:\n  dead_code_restart: true\n").model.dead_code_restart == true);
    REQUIRE_THROWS_WITH(from_text("model:\n  dead_code_restart: yes\n"),
                        Contains("model.dead_code_restart: expected true or false, got 'yes'"));
    REQUIRE_THROWS_WITH(from_text("model:\n  dead_code_restart: 1\n"), Contains("model.dead_code_restart"));
    REQUIRE_THROWS_WITH(from_text("model:\n  dead_code_restart: \"true\"\n"), Contains("model.dead_code_restart"));
  }
  SECTION("numbers in the usual YAML spellings") {
    CHECK(from_text("train:\n  lr: 1e-4\n").train.lr == 1e-4);
    CHECK(from_text("train:\n  lr: 2\n").train.lr == 2.0);
    CHECK(from_text("train:\n  epochs: +12\n").train.epochs == 12);
    // A quoted value is still a fine string.
    CHECK(from_text("train:\n  device: \"cpu\"\n").train.device == "cpu");
    CHECK(from_text("data:\n  features:\n").data.features == "");
  }
}

TEST_CASE("config: out-of-range values and bad choices are rejected", "[config]") {
  REQUIRE_THROWS_WITH(from_text("train:\n  lr: 20\n"), Contains("x.yaml: train.lr: 20 is out of range: must be in [0, 10]"));
  REQUIRE_THROWS_WITH(from_text("train:\n  epochs: 0\n"), Contains("train.epochs: 0 is out of range: must be in [1, 10000000]"));
  REQUIRE_THROWS_WITH(from_text("train:\n  seed: -1\n"), Contains("train.seed: -1 is out of range: must be >= 0"));
  REQUIRE_THROWS_WITH(from_text("train:\n  lr: .inf\n"), Contains("train.lr"));
  REQUIRE_THROWS_WITH(from_text("train:\n  lr: .nan\n"), Contains("train.lr: expected a number"));
  REQUIRE_THROWS_WITH(from_text("data:\n  split:\n    mode: file\n"),
                      Contains("x.yaml: data.split.mode: 'file' is not one of: seed, files, all (did you mean 'files'?)"));
  REQUIRE_THROWS_WITH(from_text("model:\n  codebook_init: random\n"),
                      Contains("model.codebook_init: 'random' is not one of: kmeans, sample, uniform"));
}

TEST_CASE("config: --set overrides", "[config]") {
  test::TempDir dir("config");
  std::string path = write_yaml(dir, "x.yaml", "train:\n  lr: 0.01\n  epochs: 5\n");
  RunConfig c = load_config<RunConfig>(
      path, {"train.lr=0.5", "data.split.heldout_classes=50", "model.dead_code_restart=false", "data.features=a b.h5",
             "train.epochs=6", "train.epochs=7"});
  CHECK(c.train.lr == 0.5);
  CHECK(c.data.split.heldout_classes == 50);
  CHECK(c.model.dead_code_restart == false);
  CHECK(c.data.features == "a b.h5");
  CHECK(c.train.epochs == 7);  // the last one wins

  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {"train.lrr=0.1"}),
                      Contains("--set train.lrr=0.1: train.lrr: unknown key (did you mean 'lr'?)"));
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {"model.codebok_size=8"}), Contains("--set model.codebok_size=8"));
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {"nosuch.key=1"}), Contains("--set nosuch.key=1: nosuch: unknown key"));
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {"train.lr=abc"}), Contains("--set train.lr=abc: train.lr: expected a number"));
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {"train.lr=20"}), Contains("--set train.lr=20: train.lr: 20 is out of range"));
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {"train.lr"}), Contains("--set train.lr: expected key.path=value"));
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {"train..lr=1"}), Contains("is not a dotted key path"));
  REQUIRE_THROWS_WITH(load_config<RunConfig>(path, {"train=1"}), Contains("--set train=1: train: expected a section"));
  // No "(line 1)" of the --set argument in the message.
  try {
    load_config<RunConfig>(path, {"train.lr=abc"});
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("line") == std::string::npos);
  }
}

TEST_CASE("config: missing files and YAML syntax errors name the file", "[config]") {
  test::TempDir dir("config");
  std::string missing = dir.file("nope.yaml");
  REQUIRE_THROWS_WITH(load_config<RunConfig>(missing, {}), Contains(missing) && Contains("not found"));
  std::string broken = write_yaml(dir, "broken.yaml", "train:\n  lr: [0.1\n  epochs: 3\n");
  REQUIRE_THROWS_WITH(load_config<RunConfig>(broken, {}), Contains(broken + ": YAML syntax error at line"));
}

TEST_CASE("config: YAML round trip gives back an equal config", "[config]") {
  RunConfig original = unusual_config();
  std::string yaml = to_yaml(original);
  CHECK_THAT(yaml, Contains("# Adam learning rate"));
  RunConfig back = config_from_yaml_string<RunConfig>(yaml, "resolved");
  require_equal(original, back);
  CHECK(config_hash(back) == config_hash(original));
  CHECK(to_yaml(back) == yaml);

  // Through a file written by write_resolved_config.
  test::TempDir dir("config");
  write_resolved_config(dir.path() + "/run", original);
  std::string path = dir.path() + "/run/config.resolved.yaml";
  REQUIRE(file_exists(path));
  CHECK_THAT(read_file(path), Contains("config_hash: " + config_hash(original)));
  require_equal(original, load_config<RunConfig>(path, {}));

  // The defaults too.
  require_equal(RunConfig{}, config_from_yaml_string<RunConfig>(to_yaml(RunConfig{}), "defaults"));
}

TEST_CASE("config: JSON round trip and JSON validation", "[config]") {
  RunConfig original = unusual_config();
  nlohmann::json j = to_json(original);
  CHECK(j["model"]["d_sub"] == 24);
  CHECK(j["data"]["split"]["train_classes_file"] == "true");
  require_equal(original, from_json<RunConfig>(j, "ckpt.pt"));
  require_equal(original, from_json<RunConfig>(nlohmann::json::parse(j.dump()), "ckpt.pt"));

  nlohmann::json bad = j;
  bad["train"]["lrr"] = 0.1;
  REQUIRE_THROWS_WITH(from_json<RunConfig>(bad, "ckpt.pt"), Contains("ckpt.pt: train.lrr: unknown key"));
  bad = j;
  bad["train"]["lr"] = "0.1";
  REQUIRE_THROWS_WITH(from_json<RunConfig>(bad, "ckpt.pt"), Contains("ckpt.pt: train.lr: expected a number"));
  bad = j;
  bad["train"]["epochs"] = 2.5;
  REQUIRE_THROWS_WITH(from_json<RunConfig>(bad, "ckpt.pt"), Contains("train.epochs: expected an integer"));
  bad = j;
  bad["model"]["dead_code_restart"] = "false";
  REQUIRE_THROWS_WITH(from_json<RunConfig>(bad, "ckpt.pt"), Contains("model.dead_code_restart"));
  bad = j;
  bad["model"]["d_sub"] = 7;
  REQUIRE_THROWS_WITH(from_json<RunConfig>(bad, "ckpt.pt"), Contains("ckpt.pt: model.d_sub: 7 does not divide"));

  // Missing keys (an older checkpoint) keep the defaults.
  nlohmann::json partial = {{"train", {{"lr", 0.25}}}};
  RunConfig c = from_json<RunConfig>(partial, "old.pt");
  CHECK(c.train.lr == 0.25);
  CHECK(c.train.epochs == RunConfig{}.train.epochs);
}

TEST_CASE("config: cross-field validation", "[config]") {
  REQUIRE_THROWS_WITH(from_text("model:\n  d_sub: 24\n  latent_channels: 128\n"),
                      Contains("x.yaml: model.d_sub: 24 does not divide model.latent_channels (128)"));
  RunConfig c;
  c.model.d_sub = 24;
  REQUIRE_THROWS_WITH(validate(c, "cfg"), Contains("cfg: model.d_sub"));
  CHECK_NOTHROW(from_text("model:\n  d_sub: 32\n  latent_channels: 128\n"));
  // PQVAE-shared cuts the flattened 25 x c latent (the release's layout): d_sub 10 and 25 of c = 128 are
  // valid, 24 (3,200 / 24 is no integer) is not; the k-means PQ baseline keeps one codebook per sub-space.
  CHECK_NOTHROW(from_text("model:\n  d_sub: 10\n  latent_channels: 128\n"));
  CHECK_NOTHROW(from_text("model:\n  d_sub: 25\n  latent_channels: 128\n"));
  REQUIRE_THROWS_WITH(from_text("model:\n  method: vqvae_kmeans_pq\n  d_sub: 10\n"),
                      Contains("x.yaml: model.d_sub: 10 does not divide model.latent_channels (128)"));

  REQUIRE_THROWS_WITH(from_text("data:\n  split:\n    mode: files\n    train_classes_file: t.txt\n"),
                      Contains("x.yaml: data.split.heldout_classes_file: required when data.split.mode is 'files'"));
  REQUIRE_THROWS_WITH(from_text("data:\n  split:\n    mode: files\n"), Contains("data.split.train_classes_file"));
  CHECK_NOTHROW(from_text("data:\n  split:\n    mode: files\n", {"data.split.train_classes_file=t.txt",
                                                               "data.split.heldout_classes_file=h.txt"}));
  // An empty feature path is allowed here: the CLI may supply it.
  CHECK(from_text("").data.features.empty());
}

TEST_CASE("config: config_hash is stable and sensitive", "[config]") {
  RunConfig a, b;
  CHECK(config_hash(a) == config_hash(b));
  CHECK(config_hash(a).size() == 16);
  b.train.lr = 0.002;
  CHECK(config_hash(a) != config_hash(b));
  // Known value: guards against accidental changes of the canonical form.
  CHECK(config_detail::fnv1a64_hex("") == "cbf29ce484222325");
  CHECK(config_detail::fnv1a64_hex("a") == "af63dc4c8601ec8c");
}

TEST_CASE("config: describe lists every key and docs/config.md is current", "[config]") {
  std::vector<ConfigKeyDoc> docs = describe<RunConfig>();
  // Every key of the canonical form is documented once (keys added later are
  // documented too, though left out of the canonical form at their default).
  std::set<std::string> documented;
  for (const ConfigKeyDoc& d : docs) CHECK(documented.insert(d.key).second);
  const nlohmann::json flat = to_json(RunConfig{}).flatten();
  for (const auto& kv : flat.items()) {
    std::string key = kv.key().substr(1);
    std::replace(key.begin(), key.end(), '/', '.');
    INFO(key);
    CHECK(documented.count(key) == 1);
  }
  CHECK(documented.count("model.faiss_lsq_train_iters") == 1);
  auto find = [&](const std::string& key) {
    for (const ConfigKeyDoc& d : docs)
      if (d.key == key) return d;
    FAIL("no doc for " << key);
    return ConfigKeyDoc{};
  };
  ConfigKeyDoc d_sub = find("model.d_sub");
  CHECK(d_sub.type == "int");
  CHECK(d_sub.default_value == "16");
  CHECK(d_sub.limits == "in [1, 65536]");
  CHECK(find("data.split.mode").limits == "one of: seed, files, all");
  CHECK(find("train.lr").default_value == "0.001");
  CHECK(find("loss.alpha").default_value == "10.0");
  CHECK(find("output.dir").default_value == "\"runs/default\"");
  CHECK(find("model.dead_code_restart").type == "bool");
  CHECK_THAT(format_key_docs(docs), Contains("train.lr"));

  std::string doc_path = std::string(SEMCODEC_SOURCE_DIR) + "/docs/config.md";
  REQUIRE(file_exists(doc_path));
  std::string expected = key_docs_markdown(docs);
  if (read_file(doc_path).find(expected) == std::string::npos) {
    std::string fresh = std::filesystem::temp_directory_path().string() + "/semcodec-config-keys.md";
    write_file_atomic(fresh, expected);
    FAIL("docs/config.md is out of date: replace its key tables with " << fresh);
  }
}

TEST_CASE("config: method-specific keys are checked when the config is loaded", "[config]") {
  // 401 bits cannot be split into 8-bit FAISS sub-quantizers.
  CHECK_THROWS_WITH(from_text("model:\n  method: faiss_pq\n  faiss_bits: 401\n"),
                    Catch::Contains("x.yaml") && Catch::Contains("model.faiss_bits") && Catch::Contains("401"));
  CHECK_THROWS_WITH(from_text("model:\n  method: faiss_pq\n  faiss_bits: 400\n  faiss_m: 10\n"),
                    Catch::Contains("x.yaml") && Catch::Contains("model.faiss_m"));
  // The same keys are fine for a method that does not use them.
  CHECK_NOTHROW(from_text("model:\n  method: learned_sq\n  faiss_bits: 401\n"));
  CHECK_NOTHROW(from_text("model:\n  method: faiss_pq\n  faiss_bits: 400\n  faiss_pad_dims: true\n"));
}

TEST_CASE("config: a checkpoint config stored before the method registry loads and writes back the same keys",
          "[config]") {
  // The "config" metadata of a faiss_pq checkpoint written by semcodec 0.1.0
  // before each method held its own options, with non-default values in
  // every method's keys.
  const nlohmann::json stored = nlohmann::json::parse(R"({"data":{"features":"feats.h5","max_device_memory_gb":4.0,
    "split":{"heldout_classes":10,"heldout_classes_file":"","mode":"seed","seed":0,"train_classes_file":""}},
    "loss":{"alpha":10.0,"beta":0.25},
    "model":{"body_channels":32,"center_features":true,"codebook_init":"kmeans","codebook_size":4,
    "compute_dtype":"auto","d_sub":8,"dead_code_after_steps":100,"dead_code_restart":true,"embed_dim":64,
    "faiss_bits":64,"faiss_m":0,"faiss_nbits":8,"faiss_opq_iterations":7,"faiss_pad_dims":false,"faiss_rq_beam":3,
    "faiss_train_rows":500,"hidden_channels":32,"init_samples":500,"kmeans_ema_decay":0.9,"kmeans_ema_epsilon":0.001,
    "kmeans_per_position":true,"latent_channels":32,"method":"faiss_pq","quantizer_warmup_steps":2,
    "residual_channels":16,"residual_layers":3,"sq_bits":3,"sq_iterations":50,"uniform_scale":"global"},
    "output":{"dir":"run_faiss_pq"},
    "train":{"batch_size":64,"device":"auto","dist_backend":"auto","dist_bucket_mb":25.0,"dist_timeout_s":300.0,
    "epochs":1,"lr":0.001,"lr_gamma":0.1,"lr_step_epochs":2,"lr_warmup_steps":100,"max_steps_per_epoch":5,"seed":0,
    "threads":0,"val_max_rows":0,"weight_decay":0.0005,"weight_decay_mode":"decoupled"}})");
  const RunConfig c = from_json<RunConfig>(stored, "old.safetensors [config]");
  CHECK(c.model.method == "faiss_pq");
  const FaissOptions& faiss = c.model.options<FaissOptions>();
  CHECK(faiss.bits == 64);
  CHECK(faiss.opq_iterations == 7);
  CHECK_FALSE(faiss.pad_dims);
  CHECK(faiss.rq_beam == 3);
  CHECK(faiss.train_rows == 500);
  CHECK(c.model.options<ScalarQuantizerOptions>().bits == 3);
  CHECK(c.model.options<ScalarQuantizerOptions>().iterations == 50);
  CHECK(c.model.options<UniformQuantizerOptions>().scale == "global");
  CHECK(c.model.options<EmaCodebookOptions>().ema_decay == 0.9);
  CHECK(c.model.options<EmaCodebookOptions>().ema_epsilon == 0.001);
  CHECK(c.model.options<EmaCodebookOptions>().per_position);
  // Same keys and values, hence the same config hash and sweep cell keys.
  CHECK(to_json(c) == stored);
  CHECK(config_hash(c) == config_detail::fnv1a64_hex(stored.dump()));
  // A key added later (faiss_lsq_*) enters the canonical form only when set.
  CHECK_FALSE(to_json(c)["model"].contains("faiss_lsq_train_iters"));
  RunConfig lsq = c;
  lsq.model.options<FaissOptions>().lsq_train_iters = 7;
  CHECK(to_json(lsq)["model"]["faiss_lsq_train_iters"] == 7);
  CHECK(config_hash(lsq) != config_hash(c));
  CHECK(from_json<RunConfig>(to_json(lsq), "lsq").model.options<FaissOptions>().lsq_train_iters == 7);
  // A copy owns its options.
  RunConfig copy = c;
  copy.model.options<FaissOptions>().bits = 128;
  CHECK(c.model.options<FaissOptions>().bits == 64);
}

TEST_CASE("config: configs/paper_recipe.yaml is the release's training recipe", "[config]") {
  // The numbers of the authors' release (docs/reproduce.md), not our defaults.
  const std::string root = std::string(SEMCODEC_SOURCE_DIR) + "/";
  const RunConfig c = load_config<RunConfig>(root + "configs/paper_recipe.yaml");
  CHECK(c.model.method == "pqvae_shared");
  CHECK(c.model.d_sub == 16);
  CHECK(c.model.codebook_size == 4);
  CHECK(c.model.codebook_init == "uniform");
  CHECK_FALSE(c.model.center_features);
  CHECK_FALSE(c.model.dead_code_restart);
  CHECK(c.loss.alpha == 10.0);
  CHECK(c.loss.beta == 0.25);
  CHECK(c.train.epochs == 100);
  CHECK(c.train.batch_size == 64);
  CHECK(c.train.lr == 1e-5);
  CHECK(c.train.weight_decay == 5e-4);
  CHECK(c.train.weight_decay_mode == "l2");
  CHECK(c.train.lr_warmup_steps == 0);
  CHECK(c.train.reset_optimizer_each_epoch);
  CHECK(c.data.split.mode == "files");
  CHECK(file_exists(root + c.data.split.train_classes_file));
  CHECK(file_exists(root + c.data.split.heldout_classes_file));
  // A key added later stays out of the canonical form at its default, so older configs keep their hashes.
  RunConfig d;
  CHECK_FALSE(to_json(d)["train"].contains("reset_optimizer_each_epoch"));
  d.train.reset_optimizer_each_epoch = true;
  CHECK(to_json(d)["train"]["reset_optimizer_each_epoch"] == true);
}

TEST_CASE("config: hostile YAML is refused before any recursive walk: depth, alias expansion, size", "[config]") {
  test::TempDir dir("config-hostile");
  auto message = [&](const std::string& text) {
    return test::error_of([&] { load_run_config(write_yaml(dir, "h.yaml", text)); });
  };
  // 100,000 nested flow lists: yaml-cpp's own guard stops the parser.
  CHECK_THAT(message("model: " + std::string(100000, '[') + std::string(100000, ']') + "\n"),
             Contains("h.yaml: YAML nested too deeply for the parser"));
  // 70 levels parse, and the tree check refuses them with the line.
  std::string deep;
  for (int i = 0; i < 70; ++i) deep += std::string(static_cast<size_t>(2 * i), ' ') + "k:\n";
  CHECK_THAT(message(deep + std::string(140, ' ') + "1\n"), Contains("h.yaml: YAML nested deeper than 64 levels (line 66)"));
  // 64 levels are still read (and rejected for what they are, an unknown key).
  std::string ok;
  for (int i = 0; i < 63; ++i) ok += std::string(static_cast<size_t>(2 * i), ' ') + "k:\n";
  CHECK_THAT(message(ok + std::string(126, ' ') + "1\n"), Contains("k: unknown key"));
  // Billion laughs: 10^9 values from 9 lines of aliases.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) bomb += (j ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  CHECK_THAT(message(bomb), Contains("h.yaml: YAML expands to more than 1048576 values"));
  // Bytes that are not UTF-8 (a config value ends up in JSON: checkpoints, hashes, results).
  CHECK_THAT(message("output:\n  dir: \"runs/\xe5x\"\n"), Contains("h.yaml: a value is not UTF-8 text (line 2, byte 5"));
  CHECK_THAT(message("output:\n  dir: runs/\xed\xa0\x80\n"), Contains("is not UTF-8 text"));  // a surrogate
  CHECK_THAT(message("output:\n  dir: runs/\xc3\xa9t\xc3\xa9\n"), !Contains("UTF-8"));         // "runs/été" is fine
  // The same guard covers --set values.
  CHECK_THAT(test::error_of([] { from_text("model: {}\n", {"model.d_sub=" + std::string(100000, '[')}); }),
             Contains("--set model.d_sub=[[[") && Contains("nested too deeply"));
  // A config larger than the limit is refused from its size, unread.
  const std::string big = dir.file("big.yaml");
  { std::ofstream(big) << "# " << std::string(static_cast<size_t>(kMaxYamlBytes), 'x') << "\n"; }
  CHECK_THAT(test::error_of([&] { load_run_config(big); }),
             Contains("big.yaml: config file of 67108867 bytes; a YAML file may hold at most 64 MiB"));
}
