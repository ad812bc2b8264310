// `semcodec extract` and `semcodec embed-text` end to end through the real
// binary, with the tiny random-weight CLIP of tests/fixtures/clip-tiny:
// rows equal the library's encoder applied to independently preprocessed
// images, unreadable images are skipped and listed, a stopped or killed run
// resumes to exactly the rows of an uninterrupted one, embed-text stores the
// template-averaged text embeddings computed here by hand, and bad inputs fail
// with a message and no output.
#include <ATen/ATen.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli_runner.h"
#include "cuda_support.h"
#include "data/clip_preprocess.h"
#include "data/feature_store.h"
#include "data/image_decode.h"
#include "data/npy.h"
#include "data/test_image_writers.h"
#include "models/clip/clip_weights.h"
#include "models/clip/text_embeddings.h"
#include "models/clip/tokenizer.h"
#include "test_support.h"
#include "util/atomic_file.h"

extern char** environ;

using namespace semcodec;
using semcodec::test::TempDir;
namespace fs = std::filesystem;

namespace {

using test::Run;
Run run(const std::string& args) { return test::run_cli(args); }

std::string q(const std::string& s) { return "'" + s + "'"; }

// The fixture's weights and BPE vocabulary (tests/fixtures/clip-tiny).
struct TinyClip {
  std::string model, bpe;
};
TinyClip tiny_clip() {
  return {test::fixture_path("clip-tiny/model/tiny_state_dict.pt"),
          test::fixture_path("clip-tiny/tokenizer/bpe_simple_vocab_16e6.txt.gz")};
}

struct Expected {
  std::string id, path;
  int64_t label;
  int height, width;
};

// An ImageFolder with `per_class` images in each of three classes (RGB and
// gray JPEGs, RGBA PNGs, various sizes) plus, with `broken`, one truncated
// JPEG in the second class. Returns the readable images in ImageFolder order
// (classes sorted, files sorted), computed here from the names.
std::vector<Expected> make_image_folder(const std::string& root, int per_class, bool broken, int scale = 1) {
  const std::vector<std::string> classes{"ant", "bee", "cat"};
  std::vector<Expected> out;
  int n = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    fs::create_directories(root + "/" + classes[c]);
    std::vector<Expected> here;
    for (int i = 0; i < per_class; ++i, ++n) {
      const int w = scale * (40 + 9 * ((n * 5) % 7)), h = scale * (30 + 11 * ((n * 3) % 5));
      const std::string stem = fmt::format("{}/img{:02d}", classes[c], i);
      const auto px = test::rgb_pattern(w, h, n);
      std::string name;
      if (n % 3 == 0) {
        name = stem + ".jpg";
        test::write_bytes(root + "/" + name, test::encode_jpeg(w, h, 3, JCS_RGB, px, 90));
      } else if (n % 3 == 1) {
        std::vector<uint8_t> rgba;
        for (size_t p = 0; p < px.size() / 3; ++p)
          rgba.insert(rgba.end(), {px[3 * p], px[3 * p + 1], px[3 * p + 2], static_cast<uint8_t>(40 + p % 200)});
        name = stem + ".png";
        test::write_bytes(root + "/" + name, test::encode_png(w, h, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba));
      } else {
        std::vector<uint8_t> gray(static_cast<size_t>(w) * h);
        for (size_t p = 0; p < gray.size(); ++p) gray[p] = px[3 * p + 1];
        name = stem + ".jpeg";
        test::write_bytes(root + "/" + name, test::encode_jpeg(w, h, 1, JCS_GRAYSCALE, gray, 85));
      }
      here.push_back({name, root + "/" + name, static_cast<int64_t>(c), h, w});
    }
    if (broken && c == 1) {
      const std::string full = test::encode_jpeg(50, 40, 3, JCS_RGB, test::rgb_pattern(50, 40, 99), 90);
      test::write_bytes(root + "/bee/img00_broken.jpg", full.substr(0, full.size() / 3));
    }
    std::sort(here.begin(), here.end(), [](const Expected& a, const Expected& b) { return a.id < b.id; });
    out.insert(out.end(), here.begin(), here.end());
  }
  return out;
}

// The rows the extraction should produce, computed without the pipeline:
// decode, OpenAI's transform at the model's resolution, encode_image_normalized.
at::Tensor reference_rows(const ClipModel& model, const std::vector<Expected>& images) {
  ClipPreprocessConfig pre;
  pre.resolution = model.image_resolution();
  std::vector<at::Tensor> pixels;
  for (const auto& e : images) pixels.push_back(clip_preprocess(read_image(e.path), pre));
  return model.encode_image_normalized(at::stack(pixels));
}

// OpenAI's notebook by hand: per class, normalize each prompt's embedding,
// average, renormalize.
at::Tensor reference_class_embeddings(const ClipModel& model, const Tokenizer& tok,
                                      const std::vector<std::string>& classes,
                                      const std::vector<std::string>& templates) {
  std::vector<at::Tensor> rows;
  for (const auto& c : classes) {
    std::vector<std::string> texts;
    for (const auto& t : templates) {
      const size_t at = t.find("{}");
      texts.push_back(t.substr(0, at) + c + t.substr(at + 2));
    }
    at::Tensor e = model.encode_text(tok.tokenize(texts)).to(at::kDouble);
    e = e / e.norm(2, {1}, true);
    at::Tensor m = e.mean(0);
    rows.push_back(m / m.norm());
  }
  return at::stack(rows);
}

bool partial_files_absent(const std::string& out) {
  return !file_exists(out) && !file_exists(out + ".partial") && !file_exists(out + ".partial.json");
}

}  // namespace

TEST_CASE("extract embeds every readable image as the library does and lists the broken one", "[cli][extract]") {
  const TinyClip clip = tiny_clip();
  TempDir d("cli-extract");
  const auto images = make_image_folder(d.file("zoo"), 5, true);
  const std::string out = d.file("zoo.h5");
  const Run r = run("extract -m " + q(clip.model) + " --root " + q(d.file("zoo")) + " -o " + q(out) +
                    " --batch 4 --device cpu -q");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("1 skipped") && Catch::Contains(out + ".skipped.tsv") &&
                           Catch::Contains("images/s"));
  CHECK_FALSE(file_exists(out + ".partial"));
  CHECK_FALSE(file_exists(out + ".partial.json"));

  const FeatureSet set = read_feature_file(out);
  REQUIRE(set.size() == static_cast<int64_t>(images.size()));
  const ClipModel model = load_clip(clip.model);
  const at::Tensor ref = reference_rows(model, images);
  CHECK((set.features - ref).abs().max().item<double>() < 1e-5);
  for (size_t i = 0; i < images.size(); ++i) {
    CHECK(set.ids[i] == images[i].id);
    CHECK(set.labels[static_cast<int64_t>(i)].item<int64_t>() == images[i].label);
    CHECK(set.image_sizes[static_cast<int64_t>(i)][0].item<int>() == images[i].height);
    CHECK(set.image_sizes[static_cast<int64_t>(i)][1].item<int>() == images[i].width);
  }
  CHECK(set.class_names == std::vector<std::string>{"ant", "bee", "cat"});
  CHECK(set.attrs.encoder_model == model.config().name());
  CHECK(set.attrs.dataset == "zoo");
  CHECK(set.attrs.preprocessing == "resize56-bicubic-centercrop-clipnorm");
  CHECK_FALSE(set.attrs.tool_version.empty());

  const std::string sidecar = read_file(out + ".skipped.tsv");
  CHECK_THAT(sidecar, Catch::StartsWith("index\tid\tpath\treason\n") && Catch::Contains("\tbee/img00_broken.jpg\t"));
  CHECK(std::count(sidecar.begin(), sidecar.end(), '\n') == 2);

  SECTION("bilinear resampling and --limit") {
    const std::string small = d.file("small.h5");
    const Run b = run("extract -m " + q(clip.model) + " --root " + q(d.file("zoo")) + " -o " + q(small) +
                      " --resize bilinear --limit 4 --name zoo-trial --split val -q");
    INFO(b.output);
    REQUIRE(b.code == 0);
    const FeatureSet s = read_feature_file(small);
    REQUIRE(s.size() == 4);
    CHECK(s.attrs.preprocessing == "resize56-bilinear-centercrop-clipnorm");
    CHECK(s.attrs.dataset == "zoo-trial");
    CHECK(s.attrs.split == "val");
    ClipPreprocessConfig pre;
    pre.resolution = model.image_resolution();
    pre.filter = ResampleFilter::Bilinear;
    std::vector<at::Tensor> px;
    for (int i = 0; i < 4; ++i) px.push_back(clip_preprocess(read_image(images[static_cast<size_t>(i)].path), pre));
    CHECK((s.features - model.encode_image_normalized(at::stack(px))).abs().max().item<double>() < 1e-5);
  }
}

TEST_CASE("extract in bfloat16 on the CPU stays within bfloat16 rounding of float32", "[cli][extract]") {
  const TinyClip clip = tiny_clip();
  TempDir d("cli-extract-bf16");
  make_image_folder(d.file("zoo"), 4, false);
  const std::string args = "extract -m " + q(clip.model) + " --root " + q(d.file("zoo")) + " --device cpu -q -o ";
  REQUIRE(run(args + q(d.file("f32.h5"))).code == 0);
  const Run b = run(args + q(d.file("bf16.h5")) + " --dtype bfloat16");
  INFO(b.output);
  REQUIRE(b.code == 0);
  const FeatureSet x = read_feature_file(d.file("f32.h5")), y = read_feature_file(d.file("bf16.h5"));
  REQUIRE(x.size() == y.size());
  CHECK(x.ids == y.ids);
  const at::Tensor cos = (x.features * y.features).sum(1);  // unit rows
  INFO("per-row cosine " << cos);
  CHECK(cos.min().item<double>() > 0.995);
  CHECK((x.features - y.features).abs().max().item<double>() > 1e-6);  // it did compute in bfloat16
}

TEST_CASE("CUDA: extract on the GPU gives the CPU's rows in float32 and stays within rounding in float16 / bfloat16",
          "[cli][extract][cuda]") {
  if (!test::cuda_present()) return;
  const TinyClip clip = tiny_clip();
  TempDir d("cli-extract-cuda");
  make_image_folder(d.file("zoo"), 5, true);
  // Batches of 4 over 15 images: several page-locked batches in flight.
  const std::string args = "extract -m " + q(clip.model) + " --root " + q(d.file("zoo")) + " --batch 4 -q -o ";
  REQUIRE(run(args + q(d.file("cpu.h5")) + " --device cpu").code == 0);
  const FeatureSet x = read_feature_file(d.file("cpu.h5"));
  for (const std::string dtype : {"float32", "float16", "bfloat16"}) {
    const Run g = run(args + q(d.file(dtype + ".h5")) + " --device cuda --dtype " + dtype);
    INFO(dtype << "\n" << g.output);
    REQUIRE(g.code == 0);
    const FeatureSet y = read_feature_file(d.file(dtype + ".h5"));
    REQUIRE(x.size() == y.size());
    CHECK(x.ids == y.ids);
    CHECK(at::equal(x.labels, y.labels));
    CHECK(read_file(d.file(dtype + ".h5.skipped.tsv")) == read_file(d.file("cpu.h5.skipped.tsv")));
    const at::Tensor cos = (x.features * y.features).sum(1);  // unit rows
    INFO("per-row cosine " << cos);
    CHECK(cos.min().item<double>() > (dtype == "float32" ? 0.99999 : 0.995));
  }
}

TEST_CASE("extract with a dataset config and a list file", "[cli][extract]") {
  const TinyClip clip = tiny_clip();
  TempDir d("cli-extract-config");
  const auto images = make_image_folder(d.file("zoo"), 2, false);
  {
    std::ofstream(d.file("names.yaml")) << "classes:\n  - \"giant ant\"\n  - \"honey bee\"\n  - \"house cat\"\n";
    std::ofstream(d.file("zoo.yaml")) << "name: zoo-test\nsplit: test\nlayout: image_folder\nroot: elsewhere\n"
                                         "classes:\n  names: names.yaml\n";
    std::ofstream list(d.file("list.txt"));
    for (size_t i = images.size(); i-- > 0;) list << images[i].id << "," << images[i].label << "\n";
  }
  const ClipModel model = load_clip(clip.model);
  const at::Tensor ref = reference_rows(model, images);

  const Run r = run("extract -m " + q(clip.model) + " --dataset " + q(d.file("zoo.yaml")) + " --root " +
                    q(d.file("zoo")) + " -o " + q(d.file("a.h5")) + " -q");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const FeatureSet a = read_feature_file(d.file("a.h5"));
  CHECK(a.class_names == std::vector<std::string>{"giant ant", "honey bee", "house cat"});
  CHECK(a.attrs.dataset == "zoo-test");
  CHECK(a.attrs.split == "test");
  CHECK((a.features - ref).abs().max().item<double>() < 1e-5);

  // The list names the images in reverse order, paths relative to --root.
  const Run l = run("extract -m " + q(clip.model) + " --list " + q(d.file("list.txt")) + " --root " +
                    q(d.file("zoo")) + " --classes " + q(d.file("names.yaml")) + " -o " + q(d.file("b.h5")) + " -q");
  INFO(l.output);
  REQUIRE(l.code == 0);
  const FeatureSet b = read_feature_file(d.file("b.h5"));
  REQUIRE(b.size() == static_cast<int64_t>(images.size()));
  CHECK((b.features - ref.flip({0})).abs().max().item<double>() < 1e-5);
  CHECK(b.ids.front() == images.back().id);
  CHECK(b.class_names == a.class_names);
}

TEST_CASE("a stopped extraction resumes to exactly the rows of an uninterrupted run", "[cli][extract]") {
  const TinyClip clip = tiny_clip();
  TempDir d("cli-extract-resume");
  make_image_folder(d.file("zoo"), 5, true);
  const std::string base = "extract -m " + q(clip.model) + " --root " + q(d.file("zoo")) + " --batch 3 -q -o ";
  const Run full = run(base + q(d.file("full.h5")));
  REQUIRE(full.code == 0);

  const std::string out = d.file("resumed.h5");
  const Run first = run(base + q(out) + " --stop-after-batches 2");
  INFO(first.output);
  REQUIRE(first.code == 0);
  CHECK_THAT(first.output, Catch::Contains("stopped early") && Catch::Contains("rerun"));
  CHECK_FALSE(file_exists(out));
  REQUIRE(file_exists(out + ".partial"));

  // Different settings may not continue this partial file.
  const Run other = run(base + q(out) + " --resize bilinear");
  CHECK(other.code != 0);
  CHECK_THAT(other.output, Catch::Contains("cannot resume") && Catch::Contains("preprocessing"));

  const Run second = run(base + q(out));
  INFO(second.output);
  REQUIRE(second.code == 0);
  CHECK_THAT(second.output, Catch::Contains("resumed after 6 rows"));
  CHECK_FALSE(file_exists(out + ".partial"));

  const FeatureSet a = read_feature_file(d.file("full.h5")), b = read_feature_file(out);
  REQUIRE(a.size() == b.size());
  CHECK(at::equal(a.features, b.features));
  CHECK(at::equal(a.labels, b.labels));
  CHECK(at::equal(a.image_sizes, b.image_sizes));
  CHECK(a.ids == b.ids);
  CHECK(read_file(d.file("full.h5.skipped.tsv")) == read_file(out + ".skipped.tsv"));
}

TEST_CASE("an extraction killed with SIGKILL resumes to the rows of an uninterrupted run", "[cli][extract]") {
  const TinyClip clip = tiny_clip();
  TempDir d("cli-extract-kill");
  // Large images so that decoding takes long enough to be interrupted.
  make_image_folder(d.file("zoo"), 12, false, 25);
  const std::string out = d.file("killed.h5");
  std::vector<std::string> args{SEMCODEC_CLI_PATH, "extract", "-m", clip.model, "--root", d.file("zoo"),
                                "--batch", "2", "--decode-threads", "1", "-q", "-o", out};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  // Kill once the partial file exists and has had time to take a few rows.
  const auto start = std::chrono::steady_clock::now();
  while (!file_exists(out + ".partial") && std::chrono::steady_clock::now() - start < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const bool interrupted = WIFSIGNALED(status) && file_exists(out + ".partial");
  if (!interrupted) WARN("the extraction finished before it could be killed; only the final comparison ran");

  const std::string base = "extract -m " + q(clip.model) + " --root " + q(d.file("zoo")) + " --batch 2 -q -o ";
  const Run resumed = run(base + q(out));
  INFO(resumed.output);
  REQUIRE(resumed.code == 0);
  if (interrupted && resumed.output.find("resumed after") == std::string::npos)
    WARN("killed before the first row was committed; the rerun started from the beginning");
  const Run full = run(base + q(d.file("full.h5")));
  REQUIRE(full.code == 0);
  const FeatureSet a = read_feature_file(d.file("full.h5")), b = read_feature_file(out);
  REQUIRE(a.size() == 36);
  REQUIRE(b.size() == 36);
  CHECK(at::equal(a.features, b.features));
  CHECK(a.ids == b.ids);
  CHECK(at::equal(a.labels, b.labels));
}

TEST_CASE("extraction on 2 ranks merges to the rows of 1 rank, and a dead rank's shard is finished by a rerun",
          "[cli][extract][shards]") {
  const TinyClip clip = tiny_clip();
  TempDir d("cli-extract-shards");
  make_image_folder(d.file("zoo"), 5, true);  // 16 records (one unreadable): 4 batches of 4, 2 per shard
  const std::string args = " -m " + q(clip.model) + " --root " + q(d.file("zoo")) + " --batch 4 --device cpu -q -o ";
  const std::string launch = "launch --nproc 2 -- " + std::string(SEMCODEC_CLI_PATH) + " extract" + args;
  const Run full = run("extract" + args + q(d.file("full.h5")));
  REQUIRE(full.code == 0);
  const FeatureSet ref = read_feature_file(d.file("full.h5"));
  REQUIRE(ref.size() == 15);
  auto same_as_ref = [&](const std::string& out) {
    const FeatureSet x = read_feature_file(out);
    REQUIRE(x.size() == ref.size());
    CHECK(x.ids == ref.ids);
    CHECK(at::equal(x.labels, ref.labels));
    CHECK(at::equal(x.image_sizes, ref.image_sizes));
    CHECK((x.features - ref.features).abs().max().item<double>() < 1e-6);
    CHECK(x.class_names == ref.class_names);
    CHECK(x.attrs.encoder_model == ref.attrs.encoder_model);
    CHECK(read_file(out + ".skipped.tsv") == read_file(d.file("full.h5.skipped.tsv")));
    CHECK_FALSE(file_exists(d.file(fs::path(out).stem().string() + ".shard-0-of-2.h5")));
  };

  const Run two = run(launch + q(d.file("two.h5")));
  INFO(two.output);
  REQUIRE(two.code == 0);
  CHECK_THAT(two.output, Catch::Contains("merged 2 shards") && Catch::Contains("15 rows (1 images skipped"));
  same_as_ref(d.file("two.h5"));

  // Rank 1 dies after one of its two batches; rank 0 finished.
  const std::string dead = d.file("dead.h5");
  REQUIRE(run("extract --shard 0/2" + args + q(dead)).code == 0);
  const Run stopped = run("extract --shard 1/2 --stop-after-batches 1" + args + q(dead));
  REQUIRE(stopped.code == 0);
  const Run early = run("merge-shards --shards 2 -q -o " + q(dead));
  CHECK(early.code != 0);
  CHECK_THAT(early.output, Catch::Contains("shard 1/2 is unfinished"));
  CHECK_FALSE(file_exists(dead));
  // Rank 0 alone (its peer never comes back) gives up after --shard-timeout, with the shard named.
  const Run alone = test::run_cli("extract --shard-timeout 2" + args + q(dead), "2>&1",
                                  "RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29731");
  CHECK(alone.code != 0);
  CHECK_THAT(alone.output, Catch::Contains("already complete") && Catch::Contains("no progress") &&
                               Catch::Contains("shard 1/2: unfinished"));
  CHECK_FALSE(file_exists(dead));
  // The rerun of the whole job keeps shard 0 and resumes shard 1.
  const Run rerun = run(launch + q(dead));
  INFO(rerun.output);
  REQUIRE(rerun.code == 0);
  CHECK_THAT(rerun.output, Catch::Contains("shard 0/2 is already complete") && Catch::Contains("resumed after"));
  same_as_ref(dead);
}

TEST_CASE("embed-text stores the template-averaged class text embeddings", "[cli][embed-text]") {
  const TinyClip clip = tiny_clip();
  TempDir d("cli-embed-text");
  make_image_folder(d.file("zoo"), 2, false);
  const std::string feats = d.file("zoo.h5");
  REQUIRE(run("extract -m " + q(clip.model) + " --root " + q(d.file("zoo")) + " -o " + q(feats) + " -q").code == 0);
  const FeatureSet before = read_feature_file(feats);
  CHECK_FALSE(before.has_text());
  const ClipModel model = load_clip(clip.model);
  const Tokenizer tok = Tokenizer::from_openai_bpe(clip.bpe);

  std::ofstream(d.file("two.yaml")) << "templates:\n  - \"a photo of a {}.\"\n  - \"art of the {}\"\n";
  const Run r = run("embed-text -m " + q(clip.model) + " --bpe " + q(clip.bpe) + " --features " + q(feats) +
                    " --templates " + q(d.file("two.yaml")) + " --batch 4 -q");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const FeatureSet after = read_feature_file(feats);
  REQUIRE(after.has_text());
  REQUIRE(after.class_embeddings.sizes() == at::IntArrayRef({3, model.embed_dim()}));
  const at::Tensor ref = reference_class_embeddings(model, tok, {"ant", "bee", "cat"}, {"a photo of a {}.", "art of the {}"});
  CHECK((after.class_embeddings.to(at::kDouble) - ref).abs().max().item<double>() < 1e-5);
  CHECK((after.class_embeddings.norm(2, {1}) - 1).abs().max().item<double>() < 1e-5);
  // Everything else is as it was.
  CHECK(at::equal(after.features, before.features));
  CHECK(at::equal(after.labels, before.labels));
  CHECK(after.ids == before.ids);
  CHECK(after.class_names == before.class_names);
  CHECK(after.attrs.encoder_model == before.attrs.encoder_model);
  // A second store overwrites the dataset where it is: the file does not grow.
  const auto size = fs::file_size(feats);
  REQUIRE(run("embed-text -m " + q(clip.model) + " --bpe " + q(clip.bpe) + " --features " + q(feats) +
              " --templates simple -q").code == 0);
  CHECK(fs::file_size(feats) == size);
  const at::Tensor simple = reference_class_embeddings(model, tok, {"ant", "bee", "cat"}, {"a photo of a {}."});
  CHECK((read_feature_file(feats).class_embeddings.to(at::kDouble) - simple).abs().max().item<double>() < 1e-5);

  SECTION("OpenAI's 80 templates by default, --classes, --out .npy, and a second store in place") {
    // Comments go in the YAML form: in a text list every line is a class (docs/extraction.md).
    std::ofstream(d.file("names.yaml")) << "# readable names\n- soldier ant\n- bumble bee\n- tabby cat\n";
    const Run e = run("embed-text -m " + q(clip.model) + " --bpe " + q(clip.bpe) + " --classes " +
                      q(d.file("names.yaml")) + " --features " + q(feats) + " -o " + q(d.file("text.npy")) + " -q");
    INFO(e.output);
    REQUIRE(e.code == 0);
    // The 80 templates as the shipped YAML lists them, read here with yaml-cpp.
    std::vector<std::string> templates;
    for (const auto& t : YAML::LoadFile(std::string(SEMCODEC_SOURCE_DIR) + "/configs/prompts/imagenet_templates.yaml")["templates"])
      templates.push_back(t.as<std::string>());
    REQUIRE(templates.size() == 80);
    CHECK(templates == openai_imagenet_templates());
    const std::vector<std::string> names{"soldier ant", "bumble bee", "tabby cat"};
    const at::Tensor ref80 = reference_class_embeddings(model, tok, names, templates);
    const at::Tensor npy = npy_to_tensor(read_npy(d.file("text.npy")));
    CHECK((npy.to(at::kDouble) - ref80).abs().max().item<double>() < 1e-5);
    const FeatureSet again = read_feature_file(feats);
    CHECK(at::equal(again.class_embeddings, npy));
    CHECK(again.class_names == names);
    CHECK(at::equal(again.features, before.features));
  }
}

TEST_CASE("embed-text in bfloat16 on the CPU stays within bfloat16 rounding of float32, as extract does",
          "[cli][embed-text]") {
  const TinyClip clip = tiny_clip();
  TempDir d("cli-embed-text-bf16");
  std::ofstream(d.file("names.txt")) << "soldier ant\nbumble bee\ntabby cat\n";
  const std::string args = "embed-text -m " + q(clip.model) + " --bpe " + q(clip.bpe) + " --classes " +
                           q(d.file("names.txt")) + " --templates simple --device cpu -q -o ";
  REQUIRE(run(args + q(d.file("f32.npy"))).code == 0);
  const Run b = run(args + q(d.file("bf16.npy")) + " --dtype bfloat16");
  INFO(b.output);
  REQUIRE(b.code == 0);
  const at::Tensor x = npy_to_tensor(read_npy(d.file("f32.npy"))), y = npy_to_tensor(read_npy(d.file("bf16.npy")));
  REQUIRE(x.sizes() == y.sizes());
  const at::Tensor cos = (x * y).sum(1);  // unit rows
  INFO("per-class cosine " << cos);
  CHECK(cos.min().item<double>() > 0.995);
  CHECK((x - y).abs().max().item<double>() > 1e-6);  // it did compute in bfloat16
}

TEST_CASE("extract and embed-text refuse bad inputs with a message and leave no output", "[cli][extract]") {
  TempDir d("cli-extract-bad");
  make_image_folder(d.file("zoo"), 1, false);
  const std::string out = d.file("out.h5");
  const std::string clip_model = test::fixture_path("clip-tiny/model/tiny_state_dict.pt");

  const Run missing = run("extract -m " + q(d.file("no-such-model.pt")) + " --root " + q(d.file("zoo")) + " -o " + q(out));
  CHECK(missing.code != 0);
  CHECK_THAT(missing.output, Catch::Contains("no-such-model.pt"));
  CHECK(partial_files_absent(out));

  std::ofstream(d.file("garbage.pt")) << "not a checkpoint of any kind";
  const Run garbage = run("extract -m " + q(d.file("garbage.pt")) + " --root " + q(d.file("zoo")) + " -o " + q(out));
  CHECK(garbage.code != 0);
  CHECK_THAT(garbage.output, Catch::Contains("garbage.pt"));
  CHECK(partial_files_absent(out));

  const Run none = run("extract -m " + q(d.file("garbage.pt")) + " -o " + q(out));
  CHECK(none.code != 0);
  CHECK_THAT(none.output, Catch::Contains("--dataset") && Catch::Contains("--root"));

  const Run no_folder = run("extract -m " + q(clip_model) + " --root " + q(d.file("not-here")) + " -o " + q(out));
  CHECK(no_folder.code != 0);
  CHECK_THAT(no_folder.output, Catch::Contains("not-here"));
  CHECK(partial_files_absent(out));

  std::ofstream(d.file("ds.yaml")) << "name: gone\nlayout: image_folder\nroot: " << d.file("gone") << "\n";
  const Run no_root = run("extract -m " + q(clip_model) + " --dataset " + q(d.file("ds.yaml")) + " -o " + q(out));
  CHECK(no_root.code != 0);
  CHECK_THAT(no_root.output, Catch::Contains("gone"));
  CHECK(partial_files_absent(out));

  const Run half = run("extract -m " + q(clip_model) + " --root " + q(d.file("zoo")) + " --device cpu --dtype float16 -o " + q(out));
  CHECK(half.code != 0);
  CHECK_THAT(half.output, Catch::Contains("float16") && Catch::Contains("cuda"));
  CHECK(partial_files_absent(out));

  const Run no_dir = run("extract -m " + q(clip_model) + " --root " + q(d.file("zoo")) + " -o " + q(d.file("nodir/out.h5")));
  CHECK(no_dir.code != 0);
  CHECK_THAT(no_dir.output, Catch::Contains("nodir"));

  // embed-text: no tokenizer, a missing feature file, a class list of the wrong length.
  REQUIRE(run("extract -m " + q(clip_model) + " --root " + q(d.file("zoo")) + " -o " + q(out) + " -q").code == 0);
  const std::string before = read_file(out);
  const Run no_tok = run("embed-text -m " + q(clip_model) + " --features " + q(out));
  CHECK(no_tok.code != 0);
  CHECK_THAT(no_tok.output, Catch::Contains("--bpe"));
  const std::string bpe = test::fixture_path("clip-tiny/tokenizer/bpe_simple_vocab_16e6.txt.gz");
  const Run no_file = run("embed-text -m " + q(clip_model) + " --bpe " + q(bpe) + " --features " + q(d.file("none.h5")));
  CHECK(no_file.code != 0);
  CHECK_THAT(no_file.output, Catch::Contains("none.h5"));
  std::ofstream(d.file("two.txt")) << "ant\nbee\n";
  const Run wrong_count = run("embed-text -m " + q(clip_model) + " --bpe " + q(bpe) + " --classes " +
                              q(d.file("two.txt")) + " --features " + q(out));
  CHECK(wrong_count.code != 0);
  CHECK_THAT(wrong_count.output, Catch::Contains("two.txt") && Catch::Contains("3 classes"));
  std::ofstream(d.file("bad_templates.txt")) << "a photo of a thing.\n";
  const Run bad_templates = run("embed-text -m " + q(clip_model) + " --bpe " + q(bpe) + " --templates " +
                                q(d.file("bad_templates.txt")) + " --features " + q(out));
  CHECK(bad_templates.code != 0);
  CHECK_THAT(bad_templates.output, Catch::Contains("bad_templates.txt") && Catch::Contains("{}"));
  CHECK(read_file(out) == before);
  for (const auto& e : fs::directory_iterator(d.path()))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}
