// The PyTorch-archive reader (data/torch_archive.h, data/zip_archive.h) on
// the release's files, on archives made by PyTorch itself
// (tests/fixtures/make_torch_fixtures.py) and on hostile inputs.
// Expected values come from the fixtures' README (the release's files), the
// .npz the release's values were exported to, formulas the generator used,
// and LibTorch's own loaders on our trusted fixtures, never from the reader.
#include <ATen/ATen.h>
#include <fcntl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "data/npy.h"
#include "data/torch_archive.h"
#include "data/torch_archive_tensor.h"
#include "test_support.h"
#include "util/error.h"
#include "util/random.h"
#include "zip_writer.h"

using namespace semcodec;
using Catch::Matchers::Contains;
using test::make_zip;
using test::put_le;

namespace {

std::string fixture(const std::string& name) { return semcodec::test::fixture_path(name); }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

at::Tensor as_float(const TorchTensorPtr& t) { return to_at_tensor(t).to(at::kFloat); }

// --- hand-made pickles ---------------------------------------------------------

struct Pickle {
  std::string b = std::string("\x80\x02", 2);
  Pickle& op(char c) { b += c; return *this; }
  Pickle& raw(const std::string& s) { b += s; return *this; }
  Pickle& global(const std::string& module, const std::string& name) { b += "c" + module + "\n" + name + "\n"; return *this; }
  Pickle& str(const std::string& s) {
    b += 'X';
    put_le(b, s.size(), 4);
    b += s;
    return *this;
  }
  Pickle& i1(int v) { b += 'K'; b += static_cast<char>(v); return *this; }
  Pickle& i4(int64_t v) {  // BININT where it fits, else LONG1 with 8 bytes
    if (v >= INT32_MIN && v <= INT32_MAX) {
      b += 'J';
      put_le(b, static_cast<uint64_t>(v), 4);
    } else {
      b += "\x8a\x08";
      put_le(b, static_cast<uint64_t>(v), 8);
    }
    return *this;
  }
  Pickle& mark() { return op('('); }
  Pickle& tuple() { return op('t'); }
  Pickle& stop() { return op('.'); }
  // _rebuild_tensor_v2((storage, type, key, 'cpu', numel), offset, shape, strides, False, OrderedDict())
  Pickle& tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().str("storage").global("torch", type).str(key).str("cpu").i4(numel).tuple().op('Q');
    i4(offset).mark();
    for (int64_t s : shape) i4(s);
    tuple().mark();
    for (int64_t s : strides) i4(s);
    tuple().op('\x89').global("collections", "OrderedDict").op(')').op('R').tuple().op('R');
    return *this;
  }
};

std::string archive(const std::string& pkl, const test::ZipFiles& storages = {}, bool zip64 = false) {
  test::ZipFiles files = {{"x/data.pkl", pkl}};
  for (const auto& [key, bytes] : storages) files.push_back({"x/data/" + key, bytes});
  files.push_back({"x/version", "3\n"});
  return make_zip(files, zip64);
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.begin(), s.size());
  return s;
}

TorchArchive parse(const std::string& bytes, const std::string& name = "mem.pt") {
  return parse_torch_archive(bytes, name);
}

// A central-directory record for the valid local header at `offset`, added to
// a zip written by make_zip (the archive must have no comment).
std::string with_extra_record(std::string zip, uint64_t offset) {
  auto le = [&](size_t at, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(zip[at + static_cast<size_t>(i)]);
    return v;
  };
  const size_t eocd = zip.size() - 22;
  const uint64_t count = le(eocd + 10, 2), cd_size = le(eocd + 12, 4), cd_off = le(eocd + 16, 4);
  const uint64_t nlen = le(offset + 26, 2);
  std::string rec = "PK\x01\x02";
  put_le(rec, 20, 2);
  put_le(rec, 20, 2);
  rec += zip.substr(offset + 6, 24);  // flags .. name and extra lengths, as in the local header
  rec[30] = rec[31] = 0;              // no extra field in the directory
  put_le(rec, 0, 2);
  put_le(rec, 0, 2);
  put_le(rec, 0, 2);
  put_le(rec, 0, 4);
  put_le(rec, offset, 4);
  rec += zip.substr(offset + 30, nlen);
  std::string end = zip.substr(eocd);
  zip.resize(cd_off + cd_size);
  zip += rec;
  for (int i = 0; i < 2; ++i) {
    end[8 + 2 * i] = static_cast<char>((count + 1) & 0xFF);
    end[9 + 2 * i] = static_cast<char>((count + 1) >> 8);
  }
  const uint64_t new_size = cd_size + rec.size();
  for (int i = 0; i < 4; ++i) end[12 + i] = static_cast<char>((new_size >> (8 * i)) & 0xFF);
  return zip + end;
}

// Runs f with the process's stdout redirected to a file; returns what was written.
std::string stdout_of(const std::function<void()>& f) {
  test::TempDir dir("torch-archive-stdout");
  const std::string path = dir.file("out.txt");
  std::fflush(stdout);
  const int saved = ::dup(1);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(fd, 1);
  ::close(fd);
  try {
    f();
  } catch (...) {
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    throw;
  }
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  return slurp(path);
}

}  // namespace

// --- the release's files -----------------------------------------------------------

TEST_CASE("torch archive: the release's float32 state dict holds a and b as its README gives them", "[torch_archive]") {
  const TorchArchive a = read_torch_archive(fixture("release_state_dict_fp32_small.pt"));
  CHECK(a.kind == TorchArchiveKind::TorchSave);
  CHECK(a.prefix == "release_state_dict_fp32_small");
  REQUIRE(a.root.kind == TorchValue::Kind::Dict);
  REQUIRE(a.root.entries.size() == 2);
  CHECK(a.root.entries[0].key.text == "a");  // OrderedDict order kept
  CHECK(a.root.entries[1].key.text == "b");
  const TorchTensorPtr ta = a.root.find("a")->tensor;
  const TorchTensorPtr tb = a.root.find("b")->tensor;
  CHECK(ta->dtype == TorchDtype::Float32);
  CHECK(ta->shape == std::vector<int64_t>{2, 3});
  CHECK(ta->strides == std::vector<int64_t>{3, 1});
  CHECK(ta->storage_offset == 0);
  CHECK(ta->storage->location == "cpu");
  CHECK(ta->is_contiguous());
  float va[6], vb[2];
  REQUIRE(ta->contiguous_bytes().size() == sizeof va);
  std::memcpy(va, ta->contiguous_bytes().data(), sizeof va);
  std::memcpy(vb, tb->contiguous_bytes().data(), sizeof vb);
  for (int i = 0; i < 6; ++i) CHECK(va[i] == static_cast<float>(i));
  CHECK(vb[0] == 1.5f);
  CHECK(vb[1] == -2.0f);
  const auto named = read_torch_tensors(fixture("release_state_dict_fp32_small.pt"));
  REQUIRE(named.size() == 2);
  CHECK(at::equal(named.at("a"), at::arange(6, at::kFloat).view({2, 3})));
  CHECK(at::equal(named.at("b"), at::tensor({1.5f, -2.0f})));
}

TEST_CASE("torch archive: the release's cuda:0 float16 features and labels equal the exported npz", "[torch_archive]") {
  const TorchArchive a = read_torch_archive(fixture("release_features_cuda_fp16.pt"));
  REQUIRE(a.root.kind == TorchValue::Kind::Tuple);
  REQUIRE(a.root.items.size() == 2);
  const TorchTensorPtr f = a.root.items[0].tensor;
  const TorchTensorPtr l = a.root.items[1].tensor;
  REQUIRE(f);
  REQUIRE(l);
  CHECK(f->dtype == TorchDtype::Float16);
  CHECK(f->shape == std::vector<int64_t>{20, 768});
  CHECK(f->storage->location == "cuda:0");
  CHECK(l->dtype == TorchDtype::Int64);
  CHECK(l->shape == std::vector<int64_t>{20});
  CHECK(l->storage->location == "cuda:0");
  const auto npz = read_npz(fixture("release_features_expected.npz"));
  const at::Tensor want_f = npy_to_tensor(npz.at("features"), false, "features");
  const at::Tensor want_l = npy_to_tensor(npz.at("labels"), false, "labels");
  CHECK(at::equal(as_float(f), want_f));  // float16 -> float32 is exact
  CHECK(at::equal(to_at_tensor(l), want_l));
  const auto named = torch_named_tensors(a.root, a.name);
  REQUIRE(named.size() == 2);
  CHECK(named.at("0") == f);
  CHECK(named.at("1") == l);
}

TEST_CASE("torch archive: the release's text features (a bare float16 tensor) equal the exported npz", "[torch_archive]") {
  const TorchArchive a = read_torch_archive(fixture("release_text_features.pt"));
  REQUIRE(a.root.kind == TorchValue::Kind::Tensor);
  CHECK(a.root.tensor->shape == std::vector<int64_t>{5, 768});
  CHECK(a.root.tensor->storage->location == "cuda:0");
  const auto npz = read_npz(fixture("release_features_expected.npz"));
  CHECK(at::equal(as_float(a.root.tensor), npy_to_tensor(npz.at("text"), false, "text")));
  const auto named = torch_named_tensors(a.root, a.name);
  REQUIRE(named.size() == 1);
  CHECK(named.count(""));
}

// --- archives made by PyTorch (make_torch_fixtures.py) ------------------------------

TEST_CASE("torch archive: every dtype, strided and offset views, shared storages, parameters and Python values",
          "[torch_archive]") {
  const TorchArchive a = read_torch_archive(fixture("torch_dtypes.pt"));
  const auto t = torch_named_tensors(a.root, a.name);
  // The generator's formulas: base = arange(12).reshape(3, 4) - 5.5, ints = arange(12).reshape(3, 4) - 5.
  const at::Tensor base = at::arange(12, at::kDouble).view({3, 4}) - 5.5;
  const at::Tensor ints = at::arange(12, at::kLong).view({3, 4}) - 5;
  const std::vector<std::pair<std::string, TorchDtype>> floats_ = {{"float64", TorchDtype::Float64},
                                                                   {"float32", TorchDtype::Float32},
                                                                   {"float16", TorchDtype::Float16},
                                                                   {"bfloat16", TorchDtype::BFloat16}};
  for (const auto& [name, dtype] : floats_) {
    INFO(name);
    REQUIRE(t.count(name));
    CHECK(t.at(name)->dtype == dtype);
    CHECK(std::string(to_string(dtype)) == name);
    CHECK(at::equal(to_at_tensor(t.at(name)).to(at::kDouble), base));
  }
  for (const auto& [name, dtype] : std::vector<std::pair<std::string, TorchDtype>>{
           {"int64", TorchDtype::Int64}, {"int32", TorchDtype::Int32}, {"int16", TorchDtype::Int16}, {"int8", TorchDtype::Int8}}) {
    INFO(name);
    CHECK(t.at(name)->dtype == dtype);
    CHECK(at::equal(to_at_tensor(t.at(name)).to(at::kLong), ints));
  }
  CHECK(at::equal(to_at_tensor(t.at("uint8")).to(at::kLong), at::arange(12, at::kLong).view({3, 4}) * 20));
  CHECK(t.at("bool")->dtype == TorchDtype::Bool);
  CHECK(at::equal(to_at_tensor(t.at("bool")), at::arange(12, at::kLong).view({3, 4}).remainder(3) == 0));
  CHECK(t.at("scalar")->shape.empty());
  CHECK(to_at_tensor(t.at("scalar")).item<float>() == 2.5f);
  CHECK(t.at("empty")->shape == std::vector<int64_t>{0, 3});
  CHECK(t.at("empty")->contiguous_bytes().empty());

  const TorchTensorPtr tr = t.at("transposed");  // base.float().t()
  CHECK(tr->shape == std::vector<int64_t>{4, 3});
  CHECK(tr->strides == std::vector<int64_t>{1, 4});
  CHECK_FALSE(tr->is_contiguous());
  const std::vector<uint8_t> gathered = tr->contiguous_bytes();
  const at::Tensor want = base.to(at::kFloat).t().contiguous();
  REQUIRE(gathered.size() == 48);
  CHECK(std::memcmp(gathered.data(), want.data_ptr(), 48) == 0);
  CHECK(at::equal(to_at_tensor(tr), want));

  const TorchTensorPtr head = t.at("shared_head"), tail = t.at("shared_tail");
  CHECK(head->storage == tail->storage);  // one storage in the file, one here
  CHECK(head->storage->numel == 10);
  CHECK(tail->storage_offset == 6);
  CHECK(tail->shape == std::vector<int64_t>{2, 2});
  CHECK(at::equal(to_at_tensor(tail), at::arange(6, 10, at::kFloat).view({2, 2})));
  CHECK(at::equal(to_at_tensor(head), at::arange(4, at::kFloat)));

  CHECK(t.at("param")->requires_grad);  // nn.Parameter: _rebuild_parameter
  CHECK_FALSE(t.at("float32")->requires_grad);
  CHECK(at::equal(to_at_tensor(t.at("nested.inner.w")), at::tensor({7, 8}, at::kInt).view({1, 2})));
  CHECK(at::equal(to_at_tensor(t.at("nested.list.0")), at::tensor({3.0f})));
  CHECK(t.size() == 18);

  const TorchValue* nested = a.root.find("nested");
  REQUIRE(nested);
  const TorchValue& list = nested->find("list")->items.at(1);
  CHECK(list.kind == TorchValue::Kind::Int);
  CHECK(list.integer == 5);
  CHECK(nested->find("list")->items.at(2).text == "text");
  const TorchValue& tup = *nested->find("tuple");
  REQUIRE(tup.kind == TorchValue::Kind::Tuple);
  CHECK(tup.items.at(0).kind == TorchValue::Kind::None);
  CHECK(tup.items.at(1).boolean);
  CHECK(tup.items.at(2).real == 1.25);
  const std::vector<int64_t> want_ints = {0, 255, 256, 65535, 65536, -1, INT64_C(-2147483648), INT64_C(1) << 40,
                                          std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  const TorchValue* iv = a.root.find("ints");
  REQUIRE(iv);
  REQUIRE(iv->items.size() == want_ints.size());
  for (size_t i = 0; i < want_ints.size(); ++i) CHECK(iv->items[i].integer == want_ints[i]);
}

TEST_CASE("torch archive: deflated and zip64 archives read the same as stored ones", "[torch_archive]") {
  const auto deflated = read_torch_tensors(fixture("release_state_dict_fp32_small_deflate.pt"));
  CHECK(at::equal(deflated.at("a"), at::arange(6, at::kFloat).view({2, 3})));
  CHECK(at::equal(deflated.at("b"), at::tensor({1.5f, -2.0f})));

  const std::string pkl = Pickle().tensor("FloatStorage", "0", 3, 0, {3}, {1}).stop().b;
  const TorchArchive z = parse(archive(pkl, {{"0", floats({1, 2, 3})}}, true));
  CHECK(at::equal(to_at_tensor(z.root.tensor), at::tensor({1.0f, 2.0f, 3.0f})));
}

TEST_CASE("torch archive: a TorchScript CLIP with OpenAI's layout reads as LibTorch loads it, without running it",
          "[torch_archive]") {
  const std::string path = fixture("clip_tiny_openai.pt");
  const TorchArchive a = read_torch_archive(path);
  CHECK(a.kind == TorchArchiveKind::TorchScript);
  CHECK(probe_torch_archive(path) == TorchArchiveKind::TorchScript);
  CHECK(probe_torch_archive(fixture("clip_tiny_state_dict.pt")) == TorchArchiveKind::TorchSave);
  CHECK_THROWS_WITH(probe_torch_archive(fixture("release_features_expected.npz")), Contains("not a PyTorch archive"));
  CHECK(a.root.kind == TorchValue::Kind::Object);
  CHECK(a.root.text == "__torch__.CLIP");
  const auto ours = torch_named_tensors(a.root, a.name);

  // Reference: LibTorch's own loader on this trusted fixture.
  const torch::jit::Module m = torch::jit::load(path);
  std::map<std::string, at::Tensor> ref;
  for (const auto& p : m.named_parameters(true)) ref[p.name] = p.value;
  for (const auto& b : m.named_buffers(true)) ref[b.name] = b.value;
  REQUIRE(ref.size() == 41);
  REQUIRE(ours.size() == ref.size());
  for (const auto& [name, want] : ref) {
    INFO(name);
    REQUIRE(ours.count(name));
    const at::Tensor got = to_at_tensor(ours.at(name));
    CHECK(got.scalar_type() == want.scalar_type());
    CHECK(at::equal(got, want));
  }
  // OpenAI's dtypes: matrices float16, the rest float32, sizes int64.
  CHECK(ours.at("visual.transformer.resblocks.0.attn.in_proj_weight")->dtype == TorchDtype::Float16);
  CHECK(ours.at("visual.conv1.weight")->dtype == TorchDtype::Float16);
  CHECK(ours.at("text_projection")->dtype == TorchDtype::Float16);
  CHECK(ours.at("ln_final.weight")->dtype == TorchDtype::Float32);
  CHECK(to_at_tensor(ours.at("input_resolution")).item<int64_t>() == 8);
  CHECK(to_at_tensor(ours.at("context_length")).item<int64_t>() == 4);
  CHECK(to_at_tensor(ours.at("vocab_size")).item<int64_t>() == 8);

  // The state dict of the same model: OpenAI's names, the same tensors, no size buffers.
  const auto sd = read_torch_tensors(fixture("clip_tiny_state_dict.pt"));
  CHECK(sd.size() == 38);
  for (const auto& [name, t] : sd) {
    INFO(name);
    REQUIRE(ours.count(name));
    CHECK(at::equal(t, to_at_tensor(ours.at(name))));
  }
}

TEST_CASE("torch archive: the tiny CLIP's deflated state dict reads as LibTorch's pickle loader reads it",
          "[torch_archive]") {
  const std::string path = fixture("clip-tiny/model/tiny_state_dict.pt");
  const auto ours = read_torch_tensors(path);
  // LibTorch's reader takes stored entries only: the same entries, stored.
  const ZipArchive zip(open_file_source(path));
  test::ZipFiles stored;
  for (const ZipEntry& e : zip.entries()) {
    CHECK(e.method == 8);  // deflated
    const std::vector<uint8_t> data = zip.read(e, 64ull << 20);
    stored.emplace_back(e.name, std::string(data.begin(), data.end()));
  }
  const std::string bytes = test::make_zip(stored);
  const c10::IValue root = torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  const c10::Dict<c10::IValue, c10::IValue> dict = root.toGenericDict();
  CHECK(ours.size() == dict.size());
  CHECK(ours.size() == 62);
  for (const auto& e : dict) {
    const std::string name = e.key().toStringRef();
    INFO(name);
    REQUIRE(ours.count(name));
    CHECK(at::equal(ours.at(name), e.value().toTensor()));
  }
}

TEST_CASE("torch archive: at::Tensor views share the archive's storage", "[torch_archive]") {
  const TorchArchive a = read_torch_archive(fixture("torch_dtypes.pt"));
  const auto t = torch_named_tensors(a.root, a.name);
  at::Tensor head = to_at_tensor(t.at("shared_head"));
  at::Tensor tail = to_at_tensor(t.at("shared_tail"));
  CHECK(head.data_ptr<float>() + 6 == tail.data_ptr<float>());
  CHECK(tail.strides() == at::IntArrayRef({2, 1}));
  at::Tensor kept;  // tensors outlive the archive they came from
  {
    const TorchArchive scoped = read_torch_archive(fixture("release_state_dict_fp32_small.pt"));
    kept = to_at_tensor(scoped.root.find("b")->tensor);
  }
  CHECK(at::equal(kept, at::tensor({1.5f, -2.0f})));
}

// --- refused inputs ----------------------------------------------------------------

TEST_CASE("torch archive: globals that are not tensor data are refused, naming the global and the file",
          "[torch_archive]") {
  for (const auto& [module, name] : std::vector<std::pair<std::string, std::string>>{
           {"os", "system"}, {"builtins", "eval"}, {"__builtin__", "exec"}, {"posix", "system"},
           {"numpy.core.multiarray", "_reconstruct"}, {"torch", "load"}, {"torch._utils", "_rebuild_device_tensor_from_numpy"}}) {
    INFO(module << "." << name);
    const std::string pkl = Pickle().global(module, name).mark().str("echo pwned").tuple().op('R').stop().b;
    CHECK_THROWS_WITH(parse(archive(pkl), "hostile.pt"),
                      Contains("hostile.pt") && Contains("'" + module + "." + name + "'") && Contains("refusing"));
  }
  // Protocol 4's STACK_GLOBAL names them through strings.
  Pickle p4;
  p4.b = std::string("\x80\x04", 2);
  p4.str("builtins").str("eval").op('\x93').mark().str("1+1").tuple().op('R').stop();
  CHECK_THROWS_WITH(parse(archive(p4.b), "stack.pt"), Contains("stack.pt") && Contains("'builtins.eval'"));
  // A real torch.save whose pickle would run os.system under torch.load.
  CHECK_THROWS_WITH(read_torch_archive(fixture("torch_save_os_system.pt")),
                    Contains("torch_save_os_system.pt") && Contains("'posix.system'"));
  // Allowed names may not be called as something else.
  const std::string storage_call = Pickle().global("torch", "FloatStorage").op(')').op('R').stop().b;
  CHECK_THROWS_WITH(parse(archive(storage_call)), Contains("refusing to call 'torch.FloatStorage'"));
}

TEST_CASE("torch archive: a TorchScript class with __setstate__ (prints and loops under torch.jit.load) is refused "
          "at once, printing nothing",
          "[torch_archive]") {
  const std::string path = fixture("torchscript_setstate_loop.pt");
  std::string message;
  const auto start = std::chrono::steady_clock::now();
  const std::string printed = stdout_of([&] {
    try {
      read_torch_archive(path);
    } catch (const Error& e) {
      message = e.what();
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 0.5);
  CHECK(printed.empty());
  CHECK_THAT(message, Contains("torchscript_setstate_loop.pt") && Contains("'__torch__.SetStateLoop'") &&
                          Contains("__setstate__"));
}

TEST_CASE("torch archive: TorchScript classes need code that defines them, and a dict as their state",
          "[torch_archive]") {
  const std::string obj = Pickle().global("__torch__", "M").op(')').op('\x81').op('}').str("w").i1(1).op('s').op('b').stop().b;
  const std::string code = "class M(Module):\n  w : int\n";
  // Plain attributes: read.
  const TorchArchive ok = parse(make_zip({{"x/data.pkl", obj}, {"x/code/__torch__.py", code}}));
  CHECK(ok.kind == TorchArchiveKind::TorchScript);
  CHECK(ok.root.text == "__torch__.M");
  CHECK(ok.root.find("w")->integer == 1);
  // In a torch.save file (no code/ to check).
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", obj}}), "plain.pt"),
                    Contains("plain.pt") && Contains("'__torch__.M'") && Contains("torch.save"));
  // No code file, or a file that does not define the class.
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", obj}, {"x/constants.pkl", "\x80\x02)."}})),
                    Contains("'__torch__.M'") && Contains("x/code/__torch__.py is missing"));
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", obj}, {"x/code/__torch__.py", "class N(Module):\n"}})),
                    Contains("does not define it"));
  // __setstate__ anywhere in the class's file.
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", obj}, {"x/code/__torch__.py", code + "  def __setstate__(self, s: int):\n    pass\n"}})),
                    Contains("'__torch__.M'") && Contains("__setstate__"));
  // State that only __setstate__ could read (a tuple), constructor arguments, names that are not identifiers.
  const std::string tuple_state = Pickle().global("__torch__", "M").op(')').op('\x81').i1(1).op('\x85').op('b').stop().b;
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", tuple_state}, {"x/code/__torch__.py", code}})),
                    Contains("tuple as its state"));
  const std::string args = Pickle().global("__torch__", "M").i1(1).op('\x85').op('\x81').stop().b;
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", args}, {"x/code/__torch__.py", code}})), Contains("constructor arguments"));
  const std::string dots = Pickle().global("__torch__...", "M").stop().b;
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", dots}, {"x/code/__torch__.py", code}})), Contains("not a valid"));
}

TEST_CASE("torch archive: a storage smaller than its view, or than its declaration, is an error", "[torch_archive]") {
  const std::string six = floats({0, 1, 2, 3, 4, 5});
  // 3x3 needs 9 elements, the storage declares and holds 6.
  CHECK_THROWS_WITH(parse(archive(Pickle().tensor("FloatStorage", "0", 6, 0, {3, 3}, {3, 1}).stop().b, {{"0", six}}), "short.pt"),
                    Contains("short.pt") && Contains("needs 9 elements, the storage holds 6"));
  // Offset pushes the view past the end.
  CHECK_THROWS_WITH(parse(archive(Pickle().tensor("FloatStorage", "0", 6, 4, {3}, {1}).stop().b, {{"0", six}})),
                    Contains("needs 7 elements"));
  // Strides that reach past it.
  CHECK_THROWS_WITH(parse(archive(Pickle().tensor("FloatStorage", "0", 6, 0, {2, 2}, {5, 1}).stop().b, {{"0", six}})),
                    Contains("needs 7 elements"));
  CHECK_THROWS_WITH(parse(archive(Pickle().tensor("FloatStorage", "0", 6, 0, {2}, {-1}).stop().b, {{"0", six}})),
                    Contains("negative size or stride"));
  // The entry holds fewer bytes than the persistent id declares.
  CHECK_THROWS_WITH(parse(archive(Pickle().tensor("FloatStorage", "0", 8, 0, {2}, {1}).stop().b, {{"0", six}})),
                    Contains("holds 24 bytes") && Contains("needs 32"));
  // Missing entry.
  CHECK_THROWS_WITH(parse(archive(Pickle().tensor("FloatStorage", "7", 1, 0, {1}, {1}).stop().b, {{"0", six}})),
                    Contains("storage '7' has no entry x/data/7"));
  // A bool storage must hold 0 or 1.
  CHECK_THROWS_WITH(parse(archive(Pickle().tensor("BoolStorage", "0", 2, 0, {2}, {1}).stop().b, {{"0", std::string("\x01\x07", 2)}})),
                    Contains("byte other than 0 or 1"));
  // Fits exactly: fine.
  const TorchArchive ok = parse(archive(Pickle().tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1}).stop().b, {{"0", six}}));
  CHECK(at::equal(to_at_tensor(ok.root.tensor), at::arange(6, at::kFloat).view({2, 3})));
}

TEST_CASE("torch archive: truncated, corrupted, overlapping and duplicated zips are errors", "[torch_archive]") {
  const std::string good = slurp(fixture("release_state_dict_fp32_small.pt"));
  // Every truncation is a clean error.
  for (size_t n = 0; n < good.size(); ++n) {
    INFO(n);
    CHECK_THROWS_AS(parse(good.substr(0, n), "cut.pt"), Error);
  }
  CHECK_THROWS_WITH(parse(good.substr(0, 700), "cut.pt"), Contains("cut.pt") && Contains("end-of-central-directory"));
  CHECK_THROWS_WITH(parse(std::string("\x80\x02}q\x00.", 6), "old.pt"), Contains("old.pt") && Contains("legacy"));
  // A flipped byte in a storage fails its CRC.
  const std::string stored = archive(Pickle().tensor("FloatStorage", "0", 2, 0, {2}, {1}).stop().b, {{"0", floats({1, 2})}});
  std::string crc = stored;
  crc[stored.find(floats({1, 2}))] ^= 1;
  CHECK_THROWS_WITH(parse(crc, "crc.pt"), Contains("crc.pt") && Contains("CRC-32 mismatch"));

  // Entry B's local header and data inside entry A's data (a zip bomb's trick).
  const std::string inner = make_zip({{"x/data/1", "BBBBBBBB"}});
  const std::string inner_local = inner.substr(0, inner.find("PK\x01\x02"));
  const std::string pkl = Pickle().tensor("FloatStorage", "0", 2, 0, {2}, {1}).stop().b;
  const std::string outer = make_zip({{"x/data.pkl", pkl}, {"x/data/0", inner_local}});
  const std::string overlapping = with_extra_record(outer, outer.find(inner_local));
  CHECK_THROWS_WITH(parse(overlapping, "overlap.pt"), Contains("overlap.pt") && Contains("overlap"));
  // The same name twice.
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", pkl}, {"x/data.pkl", pkl}}), "dup.pt"),
                    Contains("dup.pt") && Contains("appears twice"));
  // Two archive folders.
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", pkl}, {"y/data.pkl", pkl}})), Contains("ambiguous"));
  CHECK_THROWS_WITH(parse(make_zip({{"x/other", pkl}})), Contains("not a PyTorch archive"));
  // Big-endian storages.
  CHECK_THROWS_WITH(parse(make_zip({{"x/data.pkl", pkl}, {"x/byteorder", "big"}}), "be.pt"),
                    Contains("be.pt") && Contains("big-endian"));
  CHECK_NOTHROW(parse(make_zip({{"x/data.pkl", Pickle().op('N').stop().b}, {"x/byteorder", "little"}})));
}

TEST_CASE("torch archive: deep nesting and cycles are bounded", "[torch_archive]") {
  const auto start = std::chrono::steady_clock::now();
  // 100,000 nested lists: ] x N then APPEND x (N-1).
  Pickle lists;
  lists.raw(std::string(100000, ']')).raw(std::string(99999, 'a')).stop();
  CHECK_THROWS_WITH(parse(archive(lists.b), "deep.pt"), Contains("deep.pt") && Contains("nested deeper than 100"));
  Pickle dicts;
  for (int i = 0; i < 5000; ++i) dicts.op('}').str("k");
  dicts.op('N');
  for (int i = 0; i < 5000; ++i) dicts.op('s');
  CHECK_THROWS_WITH(parse(archive(dicts.stop().b)), Contains("nested deeper than 100"));
  Pickle marks;
  marks.raw(std::string(100000, '('));
  CHECK_THROWS_WITH(parse(archive(marks.b)), Contains("nested MARKs"));
  // A list that contains itself.
  const std::string cycle = Pickle().op(']').raw(std::string("q\x00h\x00", 4)).op('a').stop().b;
  CHECK_THROWS_WITH(parse(archive(cycle)), Contains("cyclic"));
  // One list referenced 2^20 times (two levels of 1024) expands past the value limit.
  Pickle wide;
  wide.op(']').op('(');
  for (int i = 0; i < 1024; ++i) wide.op('N');
  wide.op('e').raw("q\x01").op('0').op(']').op('(');
  for (int i = 0; i < 1024; ++i) wide.raw("h\x01");
  wide.op('e').raw("q\x02").op('0').op(']').op('(');
  for (int i = 0; i < 8; ++i) wide.raw("h\x02");
  wide.op('e').stop();
  TorchArchiveLimits small;
  small.max_values = 1 << 20;
  CHECK_THROWS_WITH(parse_torch_archive(archive(wide.b), "wide.pt", small), Contains("values (limit)"));
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 10.0);
}

TEST_CASE("torch archive: huge declared sizes are refused before anything is allocated", "[torch_archive]") {
  // A storage declaring 2^40 floats backed by 8 bytes.
  CHECK_THROWS_WITH(parse(archive(Pickle().tensor("FloatStorage", "0", INT64_C(1) << 31, 0, {2}, {1}).stop().b,
                                  {{"0", floats({1, 2})}})),
                    Contains("holds 8 bytes") && Contains("needs 8589934592"));
  // A string claiming 4 GiB, and one just over the limit.
  CHECK_THROWS_WITH(parse(archive(Pickle().raw("X\xff\xff\xff\xff").stop().b)), Contains("string of 4294967295 bytes"));
  CHECK_THROWS_WITH(parse(archive(Pickle().raw(std::string("X\x10\x00\x00\x00" "abc", 8)).stop().b)),
                    Contains("truncated pickle"));
  // A memo index of 2^32-1 needs no table of that size.
  CHECK_NOTHROW(parse(archive(Pickle().op('N').raw("r\xff\xff\xff\xff").raw("j\xff\xff\xff\xff").op('\x86').stop().b)));
  // 2^40 x 2^20 elements viewed through zero strides of a 2-element storage.
  const std::string huge_view =
      Pickle().tensor("FloatStorage", "0", 2, 0, {INT64_C(1) << 20, INT64_C(1) << 20}, {0, 0}).stop().b;
  CHECK_THROWS_WITH(parse(archive(huge_view, {{"0", floats({1, 2})}})), Contains("far more than their storages hold"));
  // Shapes whose element count overflows.
  const std::string overflow =
      Pickle().tensor("FloatStorage", "0", 2, 0, {INT64_C(1) << 31, INT64_C(1) << 31, INT64_C(1) << 31}, {0, 0, 0}).stop().b;
  CHECK_THROWS_WITH(parse(archive(overflow, {{"0", floats({1, 2})}})), Contains("too many elements"));
  // A central directory claiming 65535 entries in a few bytes.
  std::string many = archive(Pickle().op('N').stop().b);
  many[many.size() - 12] = many[many.size() - 11] = many[many.size() - 14] = many[many.size() - 13] = '\xff';
  CHECK_THROWS_AS(parse(many), Error);
  // A deflated entry claiming 4 GiB from a few bytes.
  std::string bomb = make_zip({{"x/data.pkl", "\x80\x02N."}});
  const size_t cd = bomb.find("PK\x01\x02");
  bomb[8] = bomb[cd + 10] = 8;  // method: deflate
  for (size_t i = 0; i < 4; ++i) bomb[22 + i] = bomb[cd + 24 + i] = '\xff';  // uncompressed size
  const ZipArchive zip(memory_source(bomb, "bomb.zip"));
  REQUIRE(zip.entries().size() == 1);
  CHECK(zip.entries()[0].size == 0xFFFFFFFFu);
  CHECK_THROWS_WITH(zip.read(zip.entries()[0], UINT64_MAX), Contains("bomb.zip") && Contains("beyond deflate's ratio"));
}

TEST_CASE("torch archive: work stays linear: many classes in one code file, long names over many tensors",
          "[torch_archive]") {
  const auto start = std::chrono::steady_clock::now();
  // 3,000 classes named from one 4 MiB code file: the file is read and indexed once.
  std::string code = "# " + std::string(4u << 20, 'x') + "\n";
  Pickle classes;
  classes.op('N');
  for (int i = 0; i < 3000; ++i) {
    code += "class C" + std::to_string(i) + "(Module):\n  w : int\n";
    classes.global("__torch__", "C" + std::to_string(i)).op('0');
  }
  const TorchArchive a = parse(make_zip({{"x/data.pkl", classes.stop().b}, {"x/code/__torch__.py", code}}));
  CHECK(a.root.kind == TorchValue::Kind::None);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 5.0);
  // A 1 MiB key over 100,000 nested lists would make 100 GB of names.
  Pickle names;
  names.op('}').str(std::string(1u << 20, 'k')).op(']').op('(');
  for (int i = 0; i < 100000; ++i) names.op(']');
  names.op('e').op('s').stop();
  const TorchArchive n = parse(archive(names.b), "names.pt");
  CHECK_THROWS_WITH(torch_named_tensors(n.root, n.name), Contains("names.pt") && Contains("tensor names add up"));
}

TEST_CASE("torch archive: 3,000 random mutants of real archives never crash or hang", "[torch_archive]") {
  SplitMix64 rng(15);
  int accepted = 0, refused = 0;
  for (const char* name : {"release_state_dict_fp32_small.pt", "torch_dtypes.pt", "clip_tiny_openai.pt"}) {
    const std::string good = slurp(fixture(name));
    for (int i = 0; i < 1000; ++i) {
      std::string m = good;
      const int flips = 1 + static_cast<int>(rng.below(8));
      for (int k = 0; k < flips; ++k) m[rng.below(m.size())] = static_cast<char>(rng.below(256));
      TorchArchiveLimits l;
      l.zip.verify_crc = (i % 2) == 0;  // half of them reach the pickle with their damage
      try {
        const TorchArchive a = parse_torch_archive(m, name, l);
        for (const auto& [k, t] : torch_named_tensors(a.root, a.name, l)) {
          if (t->nbytes() < (1u << 24)) CHECK(t->contiguous_bytes().size() == t->nbytes());
        }
        ++accepted;
      } catch (const Error& e) {
        CHECK_THAT(e.what(), Contains(name));
        ++refused;
      }
    }
  }
  CHECK(accepted + refused == 3000);
  CHECK(refused > 0);
}
