#include "models/clip/tokenizer.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/clip/unicode_text.h"
#include "util/error.h"

namespace semcodec {

namespace {

// OpenAI keeps merge lines [1, 49152 - 256 - 2] (the first line is a header).
constexpr size_t kMergeCount = 49152 - 256 - 2;
constexpr size_t kMaxVocabFileBytes = size_t{64} << 20;
constexpr size_t kMaxCacheEntries = 100000;

std::string read_gzip_or_text(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently
  require(f != nullptr, "{}: cannot open BPE merges file", path);
  std::string out;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxVocabFileBytes) {
      gzclose(f);
      fail("{}: BPE merges file larger than {} bytes once decompressed", path, kMaxVocabFileBytes);
    }
  }
  int err = 0;
  const std::string message = n < 0 ? gzerror(f, &err) : "";
  gzclose(f);
  require(n == 0, "{}: cannot decompress BPE merges file: {}", path, message);
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), "{}: cannot open", path);
  std::ostringstream s;
  s << in.rdbuf();
  require(s.str().size() <= kMaxVocabFileBytes, "{}: larger than {} bytes", path, kMaxVocabFileBytes);
  return s.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (true) {
    const size_t next = text.find('\n', pos);
    lines.push_back(text.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return lines;
}

// The merge lines OpenAI (and Hugging Face) use: lines[1 : 48895].
std::vector<std::string> merge_lines(const std::string& text, const std::string& path) {
  const std::vector<std::string> lines = split_lines(text);
  require(lines.size() > kMergeCount, "{}: {} lines, expected at least {} (header + BPE merges)", path, lines.size(),
          kMergeCount + 1);
  return {lines.begin() + 1, lines.begin() + 1 + static_cast<std::ptrdiff_t>(kMergeCount)};
}

// Python's str.split(): the two symbols of a merge line.
std::pair<std::string, std::string> merge_pair(const std::string& line) {
  std::istringstream in(line);
  std::string a, b, extra;
  in >> a >> b;
  require(!a.empty() && !b.empty() && !(in >> extra), "BPE merge line \"{}\" is not two symbols", line);
  return {a, b};
}

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest
// map to 256, 257, ... Returned in vocabulary order (byte, code point).
std::vector<std::pair<int, char32_t>> byte_alphabet() {
  std::vector<std::pair<int, char32_t>> out;
  std::vector<bool> printable(256, false);
  for (int b = '!'; b <= '~'; ++b) printable[static_cast<size_t>(b)] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[static_cast<size_t>(b)] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[static_cast<size_t>(b)] = true;
  for (int b = 0; b < 256; ++b)
    if (printable[static_cast<size_t>(b)]) out.push_back({b, static_cast<char32_t>(b)});
  char32_t next = 256;
  for (int b = 0; b < 256; ++b)
    if (!printable[static_cast<size_t>(b)]) out.push_back({b, next++});
  return out;
}

bool starts_with_at(const std::u32string& text, size_t i, std::u32string_view what) {
  return text.compare(i, what.size(), what) == 0;
}

// The pre-tokenization regex of SimpleTokenizer, over the cleaned text:
// <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (re.IGNORECASE: after lower() only U+017F LONG S still folds, to 's').
std::vector<std::u32string> pre_tokenize(const std::u32string& text) {
  using unicode::is_letter;
  using unicode::is_number;
  using unicode::is_space;
  std::vector<std::u32string> tokens;
  size_t i = 0;
  const auto fold = [](char32_t c) { return c == 0x17F ? U's' : c; };
  while (i < text.size()) {
    size_t len = 0;
    for (std::u32string_view special : {std::u32string_view(U"<|startoftext|>"), std::u32string_view(U"<|endoftext|>")})
      if (len == 0 && starts_with_at(text, i, special)) len = special.size();
    if (len == 0 && text[i] == '\'' && i + 1 < text.size()) {
      const char32_t a = fold(text[i + 1]);
      const char32_t b = i + 2 < text.size() ? fold(text[i + 2]) : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd')
        len = 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        len = 3;
    }
    if (len == 0 && is_letter(text[i])) {
      while (i + len < text.size() && is_letter(text[i + len])) ++len;
    }
    if (len == 0 && is_number(text[i])) len = 1;
    if (len == 0 && !is_space(text[i])) {
      while (i + len < text.size() && !is_space(text[i + len]) && !is_letter(text[i + len]) && !is_number(text[i + len]))
        ++len;
    }
    if (len == 0) {  // whitespace separates tokens
      ++i;
      continue;
    }
    tokens.push_back(text.substr(i, len));
    i += len;
  }
  return tokens;
}

}  // namespace

std::string clip_clean_text(const std::string& text) {
  // basic_clean: ftfy.fix_text, html.unescape twice, strip; whitespace_clean; lower.
  std::u32string t = unicode::fix_text(unicode::decode_utf8(text));
  t = unicode::strip(unicode::html_unescape(unicode::html_unescape(t)));
  return unicode::encode_utf8(unicode::python_lower(unicode::fold_whitespace(t)));
}

Tokenizer::Tokenizer(Tokenizer&& other) noexcept
    : encoder_(std::move(other.encoder_)),
      decoder_(std::move(other.decoder_)),
      ranks_(std::move(other.ranks_)),
      byte_symbol_(std::move(other.byte_symbol_)),
      start_(other.start_),
      end_(other.end_),
      cache_(std::move(other.cache_)) {}

Tokenizer& Tokenizer::operator=(Tokenizer&& other) noexcept {
  if (this == &other) return *this;
  std::scoped_lock lock(cache_mutex_, other.cache_mutex_);
  encoder_ = std::move(other.encoder_);
  decoder_ = std::move(other.decoder_);
  ranks_ = std::move(other.ranks_);
  byte_symbol_ = std::move(other.byte_symbol_);
  start_ = other.start_;
  end_ = other.end_;
  cache_ = std::move(other.cache_);
  return *this;
}

void Tokenizer::set_merges(const std::vector<std::string>& merges) {
  byte_symbol_.assign(256, "");
  for (const auto& [byte, cp] : byte_alphabet()) byte_symbol_[static_cast<size_t>(byte)] = unicode::encode_utf8(std::u32string(1, cp));
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [a, b] = merge_pair(merges[rank]);
    ranks_[a + " " + b] = static_cast<int64_t>(rank);  // a repeated pair keeps its last rank, like dict(zip(...))
  }
}

Tokenizer Tokenizer::from_openai_bpe(const std::string& path) {
  const std::vector<std::string> merges = merge_lines(read_gzip_or_text(path), path);
  Tokenizer t;
  t.set_merges(merges);
  // Vocabulary: the 256 byte symbols, the same with "</w>", one entry per
  // merge, then the two special tokens.
  std::vector<std::string> vocab;
  for (const auto& [byte, cp] : byte_alphabet()) vocab.push_back(unicode::encode_utf8(std::u32string(1, cp)));
  for (size_t i = 0; i < 256; ++i) vocab.push_back(vocab[i] + "</w>");
  for (const std::string& m : merges) {
    const auto [a, b] = merge_pair(m);
    vocab.push_back(a + b);
  }
  vocab.push_back("<|startoftext|>");
  vocab.push_back("<|endoftext|>");
  for (size_t id = 0; id < vocab.size(); ++id) t.encoder_[vocab[id]] = static_cast<int64_t>(id);
  t.decoder_ = vocab;
  t.start_ = t.encoder_.at("<|startoftext|>");
  t.end_ = t.encoder_.at("<|endoftext|>");
  return t;
}

Tokenizer Tokenizer::from_hugging_face(const std::string& vocab_json, const std::string& merges_txt) {
  std::string merges_text = read_text(merges_txt);
  // Hugging Face strips the file before splitting.
  while (!merges_text.empty() && std::isspace(static_cast<unsigned char>(merges_text.back()))) merges_text.pop_back();
  Tokenizer t;
  t.set_merges(merge_lines(merges_text, merges_txt));
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_text(vocab_json));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", vocab_json, e.what());
  }
  require(vocab.is_object(), "{}: expected an object {{token: id}}", vocab_json);
  for (const auto& [token, id] : vocab.items()) {
    require(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t{1} << 24),
            "{}: token {} has id {} (expected a small non-negative integer)", vocab_json, token, id.dump());
    const auto index = static_cast<size_t>(id.get<int64_t>());
    if (t.decoder_.size() <= index) t.decoder_.resize(index + 1);
    t.decoder_[index] = token;
    t.encoder_[token] = id.get<int64_t>();
  }
  for (const char* special : {"<|startoftext|>", "<|endoftext|>"})
    require(t.encoder_.count(special) != 0, "{}: no {} token", vocab_json, special);
  for (const std::string& symbol : t.byte_symbol_)
    require(t.encoder_.count(symbol) != 0 && t.encoder_.count(symbol + "</w>") != 0, "{}: byte symbol {} missing",
            vocab_json, symbol);
  t.start_ = t.encoder_.at("<|startoftext|>");
  t.end_ = t.encoder_.at("<|endoftext|>");
  return t;
}

std::vector<int64_t> Tokenizer::bpe(const std::string& token) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (auto it = cache_.find(token); it != cache_.end()) return it->second;
  }
  std::vector<int64_t> ids;
  if (token == "<|startoftext|>" || token == "<|endoftext|>") {
    ids.push_back(encoder_.at(token));
  } else {
    // Symbols: the UTF-8 of each byte stand-in; the last one ends the word.
    std::vector<std::string> word;
    const std::u32string chars = unicode::decode_utf8(token);
    for (char32_t c : chars) word.push_back(unicode::encode_utf8(std::u32string(1, c)));
    word.back() += "</w>";
    while (word.size() > 1) {
      int64_t best = std::numeric_limits<int64_t>::max();
      size_t best_at = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto it = ranks_.find(word[i] + " " + word[i + 1]);
        if (it != ranks_.end() && it->second < best) {
          best = it->second;
          best_at = i;
        }
      }
      if (best == std::numeric_limits<int64_t>::max()) break;
      const std::string first = word[best_at], second = word[best_at + 1];
      // Merge every occurrence of the pair, left to right.
      std::vector<std::string> merged;
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          merged.push_back(first + second);
          i += 2;
        } else {
          merged.push_back(word[i]);
          ++i;
        }
      }
      word = std::move(merged);
    }
    for (const std::string& symbol : word) {
      auto it = encoder_.find(symbol);
      require(it != encoder_.end(), "CLIP tokenizer: BPE symbol \"{}\" is not in the vocabulary", symbol);
      ids.push_back(it->second);
    }
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(token, ids);
  return ids;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::u32string& piece : pre_tokenize(unicode::decode_utf8(clip_clean_text(text)))) {
    std::string symbols;
    for (unsigned char byte : unicode::encode_utf8(piece)) symbols += byte_symbol_[byte];
    const std::vector<int64_t> piece_ids = bpe(symbols);
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
  return ids;
}

at::Tensor Tokenizer::tokenize(const std::vector<std::string>& texts, int64_t context_length, bool truncate) const {
  require(context_length >= 2, "CLIP tokenizer: context length {} is too short", context_length);
  at::Tensor result = at::zeros({static_cast<int64_t>(texts.size()), context_length}, at::kLong);
  auto rows = result.accessor<int64_t, 2>();
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int64_t> ids{start_};
    const std::vector<int64_t> body = encode(texts[i]);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(end_);
    if (static_cast<int64_t>(ids.size()) > context_length) {
      require(truncate, "CLIP tokenizer: \"{}\" needs {} tokens, more than the context length {}", texts[i], ids.size(),
              context_length);
      ids.resize(static_cast<size_t>(context_length));
      ids.back() = end_;
    }
    for (size_t j = 0; j < ids.size(); ++j) rows[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = ids[j];
  }
  return result;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  // Undo the byte stand-ins, then read the bytes as UTF-8 (bad bytes become U+FFFD).
  std::unordered_map<std::string, unsigned char> byte_of;
  for (size_t b = 0; b < byte_symbol_.size(); ++b) byte_of[byte_symbol_[b]] = static_cast<unsigned char>(b);
  std::string bytes;
  for (int64_t id : ids) {
    require(id >= 0 && id < vocab_size(), "CLIP tokenizer: id {} outside the vocabulary", id);
    for (char32_t c : unicode::decode_utf8(decoder_[static_cast<size_t>(id)])) {
      auto it = byte_of.find(unicode::encode_utf8(std::u32string(1, c)));
      if (it != byte_of.end()) bytes += static_cast<char>(it->second);
    }
  }
  std::string text = unicode::encode_utf8(unicode::decode_utf8(bytes));
  for (size_t pos = 0; (pos = text.find("</w>", pos)) != std::string::npos;) text.replace(pos, 4, " ");
  return text;
}

}  // namespace semcodec
