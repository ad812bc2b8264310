// Dataset layouts: ImageFolder order as torchvision walks it, list files in
// the formats benchmarks ship, and the dataset configs under configs/datasets.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <yaml-cpp/yaml.h>

#include "data/image_dataset.h"
#include "test_support.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;
namespace fs = std::filesystem;

namespace {
void touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << "x";
}
}  // namespace

TEST_CASE("ImageFolder follows torchvision's class and file order", "[dataset]") {
  TempDir dir("imgfolder");
  for (const char* f : {"b/2.jpg", "b/10.JPG", "b/sub/a.png", "b/a_sub/z.jpeg", "B/x.png", "a/notes.txt", "a/1.webp",
                        "c/0.jpg"})
    touch(dir.file(f));
  ImageDataset ds = scan_image_folder(dir.path());
  // Classes sorted by byte order (upper case first); within a class, os.walk
  // folders sorted by path, then file names sorted.
  CHECK(ds.class_names == std::vector<std::string>{"B", "a", "b", "c"});
  std::vector<std::string> ids;
  std::vector<int64_t> labels;
  for (const auto& r : ds.records) {
    ids.push_back(r.id);
    labels.push_back(r.label);
  }
  CHECK(ids == std::vector<std::string>{"B/x.png", "a/1.webp", "b/10.JPG", "b/2.jpg", "b/a_sub/z.jpeg", "b/sub/a.png",
                                        "c/0.jpg"});
  CHECK(labels == std::vector<int64_t>{0, 1, 2, 2, 2, 2, 3});
  CHECK(ds.records[0].path == dir.file("B/x.png"));
}

TEST_CASE("list files in the layouts benchmarks ship", "[dataset]") {
  TempDir dir("imglist");
  SECTION("path,label with integer labels relative to the list's folder") {
    std::ofstream(dir.file("list.csv")) << "# comment\nimgs/a.jpg,2\n\nimgs/b.jpg, 0\r\n";
    auto recs = read_image_list(dir.file("list.csv"), {});
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].path == dir.file("imgs/a.jpg"));
    CHECK(recs[0].label == 2);
    CHECK(recs[0].id == "imgs/a.jpg");
    CHECK(recs[1].label == 0);
  }
  SECTION("Oxford-IIIT Pets: name class-id species breed, 1-based") {
    std::ofstream(dir.file("test.txt")) << "Abyssinian_201 1 1 1\nyorkshire_terrier_9 37 2 25\n";
    ImageListFormat f;
    f.delimiter = "whitespace";
    f.label = "index";
    f.label_offset = -1;
    f.path_prefix = "images/";
    f.path_suffix = ".jpg";
    auto recs = read_image_list(dir.file("test.txt"), {}, f);
    CHECK(recs[0].id == "images/Abyssinian_201.jpg");
    CHECK(recs[0].label == 0);
    CHECK(recs[1].label == 36);
  }
  SECTION("Food-101: class/id lines, label from the folder") {
    std::ofstream(dir.file("test.txt")) << "apple_pie/1011328\nbaby_back_ribs/100\n";
    ImageListFormat f;
    f.label = "parent_dir";
    f.path_prefix = "images/";
    f.path_suffix = ".jpg";
    auto recs = read_image_list(dir.file("test.txt"), {"apple_pie", "baby_back_ribs"}, f);
    CHECK(recs[1].id == "images/baby_back_ribs/100.jpg");
    CHECK(recs[1].label == 1);
  }
  SECTION("errors name the file and line") {
    std::ofstream(dir.file("bad.txt")) << "a.jpg,1\nb.jpg,zebra\n";
    CHECK_THROWS_WITH(read_image_list(dir.file("bad.txt"), {"x", "y"}), Catch::Contains("bad.txt:2"));
    std::ofstream(dir.file("short.txt")) << "a.jpg\n";
    CHECK_THROWS_WITH(read_image_list(dir.file("short.txt"), {}), Catch::Contains("short.txt:1"));
  }
}

TEST_CASE("a dataset config with a list layout and class keys from the data", "[dataset]") {
  TempDir dir("imgcfg");
  // Tiny-ImageNet's val layout.
  std::ofstream(dir.file("wnids.txt")) << "n02\nn01\n";
  std::ofstream(dir.file("words.txt")) << "n01\tgoldfish, Carassius auratus\nn02\tEuropean fire salamander\n";
  fs::create_directories(dir.file("val"));
  std::ofstream(dir.file("val/val_annotations.txt")) << "val_0.JPEG\tn02\t0\t1\t2\t3\nval_1.JPEG\tn01\t0\t1\t2\t3\n";
  std::ofstream(dir.file("cfg.yaml")) << "name: tiny\nsplit: val\nlayout: list\nroot: unused\n"
                                         "list: {file: val/val_annotations.txt, delimiter: tab, label: key, "
                                         "path_prefix: val/images/}\n"
                                         "classes: {keys_file: wnids.txt, sort_keys: true, key_names_file: words.txt}\n";
  DatasetSpec spec = read_dataset_spec(dir.file("cfg.yaml"), dir.path());
  ImageDataset ds = load_dataset(spec);
  CHECK(ds.class_keys == std::vector<std::string>{"n01", "n02"});
  CHECK(ds.class_names == std::vector<std::string>{"goldfish", "European fire salamander"});
  REQUIRE(ds.records.size() == 2);
  CHECK(ds.records[0].label == 1);
  CHECK(ds.records[0].path == dir.file("val/images/val_0.JPEG"));
  CHECK(ds.name == "tiny");
  CHECK(ds.split == "val");
}

TEST_CASE("the shipped dataset configs and prompt files are well formed", "[dataset]") {
  const std::string configs = std::string(SEMCODEC_SOURCE_DIR) + "/configs";
  const std::map<std::string, size_t> classes{{"imagenet_val.yaml", 1000}, {"oxford_pets.yaml", 37},
                                              {"caltech101.yaml", 102}, {"food101.yaml", 101}};
  for (const auto& [file, count] : classes) {
    INFO(file);
    DatasetSpec spec = read_dataset_spec(configs + "/datasets/" + file, "/nonexistent");
    REQUIRE_FALSE(spec.class_names_file.empty());
    ClassList list = read_class_list_file(spec.class_names_file);
    CHECK(list.names.size() == count);
    CHECK((list.keys.empty() || list.keys.size() == count));
    if (!spec.templates_file.empty()) CHECK(fs::exists(spec.templates_file));
  }
  CHECK_NOTHROW(read_dataset_spec(configs + "/datasets/tiny_imagenet_val.yaml", "/nonexistent"));
  YAML::Node t = YAML::LoadFile(configs + "/prompts/imagenet_templates.yaml");
  REQUIRE(t["templates"]);
  CHECK(t["templates"].size() == 80);
  for (const auto& s : t["templates"]) CHECK(s.as<std::string>().find("{}") != std::string::npos);
  YAML::Node simple = YAML::LoadFile(configs + "/prompts/simple.yaml");
  CHECK(simple["templates"][0].as<std::string>() == "a photo of a {}.");
}

TEST_CASE("text class lists: every line is a class ('#' included) and blank lines inside are errors", "[dataset]") {
  TempDir dir("classlist");
  std::ofstream(dir.file("names.txt")) << "tench\n#1 goldfish\n  great white shark \r\n\n\n";
  CHECK(read_class_list_file(dir.file("names.txt")).names ==
        std::vector<std::string>{"tench", "#1 goldfish", "great white shark"});
  std::ofstream(dir.file("gap.txt")) << "tench\n\ngoldfish\n";
  CHECK_THROWS_WITH(read_class_list_file(dir.file("gap.txt")),
                    dir.file("gap.txt") + ":2: empty line in a class list (every line is one class, so a blank line "
                                          "would shift the classes after it)");
  // Comments belong to the YAML form, where '#' cannot be mistaken for a name.
  std::ofstream(dir.file("names.yaml")) << "# ImageNet's first classes\n- tench\n- '#1 goldfish'\n";
  CHECK(read_class_list_file(dir.file("names.yaml")).names == std::vector<std::string>{"tench", "#1 goldfish"});
  // A config's keys_file follows the same rule.
  fs::create_directories(dir.file("data/a"));
  touch(dir.file("data/a/x.jpg"));
  std::ofstream(dir.file("data/keys.txt")) << "#a\na\n";
  std::ofstream(dir.file("cfg.yaml")) << "name: k\nlayout: list\nroot: data\nlist: {file: list.txt, label: key}\n"
                                         "classes: {keys_file: keys.txt}\n";
  std::ofstream(dir.file("data/list.txt")) << "a/x.jpg,#a\n";
  const ImageDataset ds = load_dataset(read_dataset_spec(dir.file("cfg.yaml"), dir.file("data")));
  CHECK(ds.class_keys == std::vector<std::string>{"#a", "a"});
  REQUIRE(ds.records.size() == 1);
  CHECK(ds.records[0].label == 0);
}

TEST_CASE("list labels that would make a huge class list are refused", "[dataset]") {
  TempDir dir("hugelabel");
  std::ofstream(dir.file("list.txt")) << "a.jpg 0\nb.jpg 1000000000000\n";
  ImageListFormat f;
  f.delimiter = "whitespace";
  CHECK_THROWS_WITH(read_image_list(dir.file("list.txt"), {}, f),
                    dir.file("list.txt") + ":2: label 1000000000000 is out of range (at most 1048576 classes)");
  std::ofstream(dir.file("list2.txt")) << "a.jpg 0\nb.jpg 5000\n";
  const auto recs = read_image_list(dir.file("list2.txt"), {}, f);
  CHECK_THROWS_WITH(class_names_from_labels(recs, dir.file("list2.txt"), "give the class names"),
                    dir.file("list2.txt") +
                        ": label 5000 is too large: without a class list the classes come from the labels, and 2 rows "
                        "may make at most 1024 (max(1024, 16 x rows), never more than 1048576); give the class names");
  std::ofstream(dir.file("cfg.yaml")) << "name: l\nlayout: list\nroot: " << dir.path() << "\nlist: {file: list2.txt, delimiter: whitespace}\n";
  CHECK_THROWS_WITH(load_dataset(read_dataset_spec(dir.file("cfg.yaml"))),
                    Catch::StartsWith(dir.file("list2.txt") + ": label 5000 is too large") &&
                        Catch::EndsWith("name the classes in the config (classes: names, keys_file or key_names_file)"));
  std::ofstream(dir.file("list3.txt")) << "a.jpg 0\nb.jpg 3\n";
  CHECK(class_names_from_labels(read_image_list(dir.file("list3.txt"), {}, f), "x", "") ==
        std::vector<std::string>{"class_0", "class_1", "class_2", "class_3"});
}
