// The CLIP tokenizer against ids produced by OpenAI's clip.tokenize and
// SimpleTokenizer (with ftfy 6.3.1) in the clip-tiny fixture, plus the
// Unicode helpers against hand-checked values from Python's documentation.
#include <ATen/ATen.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/clip/tokenizer.h"
#include "models/clip/unicode_text.h"
#include "test_clip_fixture.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::clip_fixture;
using semcodec::test::read_npy_tensor;
using semcodec::test::TempDir;

namespace {

// The one fixture string whose ids need ftfy's mojibake repair.
const std::string kMojibake = "\xC3\x83\xC2\xA9tude mojibake";

nlohmann::json read_json(const std::string& path) {
  nlohmann::json j;
  std::ifstream(path) >> j;
  return j;
}

std::vector<int64_t> row(const at::Tensor& t, int64_t i) {
  const at::Tensor r = t[i].contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

std::string u8(const std::u32string& s) { return unicode::encode_utf8(s); }

std::string gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::string out;
  char buf[65536];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

// Hugging Face's vocab.json / merges.txt layout, built here from OpenAI's
// merges file the way Hugging Face converted it (GPT-2 byte alphabet, then
// "</w>" variants, merges, special tokens).
void write_hugging_face_files(const std::string& bpe_gz, const std::string& vocab_path, const std::string& merges_path) {
  std::vector<int> bs;
  for (int b = 33; b <= 126; ++b) bs.push_back(b);
  for (int b = 161; b <= 172; ++b) bs.push_back(b);
  for (int b = 174; b <= 255; ++b) bs.push_back(b);
  std::vector<char32_t> cs(bs.begin(), bs.end());
  for (int b = 0, n = 0; b < 256; ++b)
    if (std::find(bs.begin(), bs.begin() + 188, b) == bs.begin() + 188) {
      bs.push_back(b);
      cs.push_back(static_cast<char32_t>(256 + n++));
    }
  std::vector<std::string> vocab;
  for (char32_t c : cs) vocab.push_back(u8(std::u32string(1, c)));
  for (size_t i = 0; i < 256; ++i) vocab.push_back(vocab[i] + "</w>");
  const std::string text = gunzip(bpe_gz);
  std::vector<std::string> lines;
  for (size_t pos = 0, next; pos <= text.size(); pos = next + 1) {
    next = text.find('\n', pos);
    if (next == std::string::npos) next = text.size();
    lines.push_back(text.substr(pos, next - pos));
  }
  std::ofstream merges(merges_path, std::ios::binary);
  merges << "#version: 0.2\n";
  for (size_t i = 1; i <= 48894; ++i) {
    merges << lines[i] << "\n";
    const size_t space = lines[i].find(' ');
    vocab.push_back(lines[i].substr(0, space) + lines[i].substr(space + 1));
  }
  vocab.push_back("<|startoftext|>");
  vocab.push_back("<|endoftext|>");
  nlohmann::json j = nlohmann::json::object();
  for (size_t id = 0; id < vocab.size(); ++id) j[vocab[id]] = id;
  std::ofstream(vocab_path, std::ios::binary) << j.dump();
}

void check_against_goldens(const Tokenizer& tok) {
  const nlohmann::json tokenize_77 = read_json(clip_fixture("tokenizer/tokenize_77.json"));
  const nlohmann::json bpe_encode = read_json(clip_fixture("tokenizer/bpe_encode.json"));
  const nlohmann::json meta = read_json(clip_fixture("tokenizer/meta.json"));
  const nlohmann::json& fixing = meta["strings_whose_ids_depend_on_text_fixing"];
  int checked = 0;
  for (const auto& [text, ids] : tokenize_77.items()) {
    INFO("text: " << text);
    std::vector<int64_t> expected = ids.get<std::vector<int64_t>>();
    if (text == kMojibake) {
      // Without mojibake repair the ids are those of the unrepaired text.
      std::vector<int64_t> without = fixing[text]["without_ftfy"].get<std::vector<int64_t>>();
      CHECK(tok.encode(text) == without);
      continue;
    }
    CHECK(row(tok.tokenize({text}), 0) == expected);
    ++checked;
  }
  CHECK(checked == 29);
  for (const auto& [text, ids] : bpe_encode.items()) {
    if (text == kMojibake) continue;
    INFO("text: " << text);
    CHECK(tok.encode(text) == ids.get<std::vector<int64_t>>());
  }
  for (const auto& [text, variants] : fixing.items()) {
    if (text == kMojibake) continue;
    INFO("text: " << text);
    CHECK(tok.encode(text) == variants["with_ftfy"].get<std::vector<int64_t>>());
  }
}

}  // namespace

TEST_CASE("CLIP tokenizer gives OpenAI's ids for every fixture string", "[clip][tokenizer]") {
  const std::string bpe = clip_fixture("tokenizer/bpe_simple_vocab_16e6.txt.gz");
  const Tokenizer tok = Tokenizer::from_openai_bpe(bpe);
  CHECK(tok.vocab_size() == 49408);
  CHECK(tok.start_token() == 49406);
  CHECK(tok.end_token() == 49407);
  check_against_goldens(tok);
}

TEST_CASE("CLIP tokenizer decodes to the text OpenAI's tokenizer decodes to", "[clip][tokenizer]") {
  // meta.json's "decoded" covers more strings than the id goldens (Turkish
  // dotted I, final sigma, nested and triple entities, numerics, ...).
  const std::string bpe = clip_fixture("tokenizer/bpe_simple_vocab_16e6.txt.gz");
  const Tokenizer tok = Tokenizer::from_openai_bpe(bpe);
  const nlohmann::json meta = read_json(clip_fixture("tokenizer/meta.json"));
  int checked = 0;
  for (const auto& [text, decoded] : meta["decoded"].items()) {
    if (text == kMojibake) continue;
    INFO("text: " << text);
    CHECK(tok.decode(tok.encode(text)) == decoded.get<std::string>());
    ++checked;
  }
  CHECK(checked >= 40);
  for (const auto& text : meta["truncated"]) {
    const at::Tensor t = tok.tokenize({text.get<std::string>()});
    CHECK(t.size(1) == 77);
    CHECK(t[0][76].item<int64_t>() == 49407);
    CHECK_THROWS_AS(tok.tokenize({text.get<std::string>()}, 77, /*truncate=*/false), Error);
  }
}

TEST_CASE("CLIP tokenizer reproduces the fixture's text_tokens.npy", "[clip][tokenizer]") {
  const std::string bpe = clip_fixture("tokenizer/bpe_simple_vocab_16e6.txt.gz");
  const std::string prompts = clip_fixture("goldens/text_prompts.json");
  const Tokenizer tok = Tokenizer::from_openai_bpe(bpe);
  const auto texts = read_json(prompts).get<std::vector<std::string>>();
  const at::Tensor golden = read_npy_tensor(clip_fixture("goldens/text_tokens.npy"));
  CHECK(at::equal(tok.tokenize(texts), golden));
}

TEST_CASE("CLIP tokenizer reads Hugging Face's vocab.json and merges.txt", "[clip][tokenizer]") {
  const std::string bpe = clip_fixture("tokenizer/bpe_simple_vocab_16e6.txt.gz");
  TempDir dir("clip-tokenizer");
  write_hugging_face_files(bpe, dir.file("vocab.json"), dir.file("merges.txt"));
  Tokenizer tok = Tokenizer::from_hugging_face(dir.file("vocab.json"), dir.file("merges.txt"));
  CHECK(tok.vocab_size() == 49408);
  check_against_goldens(tok);
  // Both vocabularies agree id for id; a tokenizer can be replaced by another.
  const std::vector<int64_t> ids = tok.encode("a photo of a cat");
  tok = Tokenizer::from_openai_bpe(bpe);
  CHECK(tok.encode("a photo of a cat") == ids);
}

TEST_CASE("CLIP tokenizer rejects broken vocabulary files", "[clip][tokenizer]") {
  TempDir dir("clip-tokenizer-bad");
  std::ofstream(dir.file("short.txt")) << "#version\na b\n";
  CHECK_THROWS_AS(Tokenizer::from_openai_bpe(dir.file("short.txt")), Error);
  CHECK_THROWS_AS(Tokenizer::from_openai_bpe(dir.file("absent.gz")), Error);
  std::ofstream(dir.file("vocab.json")) << "[1, 2]";
  CHECK_THROWS_AS(Tokenizer::from_hugging_face(dir.file("vocab.json"), dir.file("short.txt")), Error);
}

TEST_CASE("Unicode helpers match Python", "[clip][tokenizer]") {
  using namespace unicode;
  // unicodedata.normalize("NFC", ...)
  CHECK(u8(nfc(U"e\u0301")) == u8(U"\u00E9"));
  CHECK(u8(nfc(U"\u1100\u1161\u11A8")) == u8(U"\uAC01"));           // Hangul L V T
  CHECK(u8(nfc(U"a\u0328\u0301")) == u8(U"\u0105\u0301"));          // ogonek (202) before acute (230)
  CHECK(u8(nfc(U"a\u0301\u0328")) == u8(U"\u0105\u0301"));          // reordered, then composed
  CHECK(u8(nfc(U"\u212B")) == u8(U"\u00C5"));                       // singleton ANGSTROM SIGN
  CHECK(u8(nfc(U"\u0301e")) == u8(U"\u0301e"));                     // leading non-starter
  // html.unescape (examples from CPython's test_html).
  CHECK(u8(html_unescape(U"&notit;")) == u8(U"\u00ACit;"));
  CHECK(u8(html_unescape(U"&notin;")) == u8(U"\u2209"));
  CHECK(u8(html_unescape(U"&amp;amp;")) == "&amp;");
  CHECK(u8(html_unescape(U"&#0;&#x110000;&#128;&#x81;&#1;")) == u8(U"\uFFFD\uFFFD\u20AC\u0081"));
  CHECK(u8(html_unescape(U"&#65&#x42;&#X43 &zzz; & &#;")) == "ABC &zzz; & &#;");
  CHECK(u8(html_unescape(U"&eacute &EACUTE;")) == u8(U"\u00E9 &EACUTE;"));
  // str.lower with Final_Sigma and the dotted capital I.
  CHECK(u8(python_lower(U"\u039F\u0394\u039F\u03A3")) == u8(U"\u03BF\u03B4\u03BF\u03C2"));
  CHECK(u8(python_lower(U"\u03A3")) == u8(U"\u03C3"));
  CHECK(u8(python_lower(U"\u03A3\u0391")) == u8(U"\u03C3\u03B1"));
  CHECK(u8(python_lower(U"\u0391\u03A3'")) == u8(U"\u03B1\u03C2'"));
  CHECK(u8(python_lower(U"\u0130")) == u8(U"i\u0307"));
  // ftfy.fix_text pieces: upper-cased entity alias, ligature, width, C1 control, escapes.
  CHECK(u8(fix_text(U"&EACUTE; \uFB03 \uFF21\u3000x \u0092 \x1b[31mred\x1b[0m")) == u8(U"\u00C9 ffi A x ' red"));
  CHECK(u8(fix_text(U"<b>&amp;</b>")) == "<b>&amp;</b>");  // html left alone next to '<'
  // UTF-8 decoding replaces each maximal invalid subpart once.
  CHECK(u8(decode_utf8("a\xE2\x82" "b\xFF\xED\xA0\x80")) == u8(U"a\uFFFDb\uFFFD\uFFFD\uFFFD\uFFFD"));
  CHECK(clip_clean_text("  Multiple\t\tSPACES\u00A0here ") == "multiple spaces here");
}
