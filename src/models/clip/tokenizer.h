// OpenAI CLIP's tokenizer (SimpleTokenizer + clip.tokenize): text cleanup
// (ftfy-like fixes, html unescape applied twice, whitespace folding,
// lower-casing), the pre-tokenization regex
//   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
// byte-level BPE with "</w>" marking the end of a word, then start 49406,
// end 49407, zero padding to the context and truncation with the last id
// forced to the end token.
//
// Not replicated: ftfy's mojibake repair ("Ã©" stays as it is; docs/clip.md).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace semcodec {

// The cleaned, lower-cased text the regex runs on:
// whitespace_clean(basic_clean(text)).lower() of OpenAI's code.
std::string clip_clean_text(const std::string& text);

class Tokenizer {
 public:
  // OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip; a plain text copy works too).
  static Tokenizer from_openai_bpe(const std::string& path);
  // Hugging Face's vocab.json + merges.txt (openai/clip-vit-*).
  static Tokenizer from_hugging_face(const std::string& vocab_json, const std::string& merges_txt);

  // The BPE ids of a text, without start / end tokens or truncation.
  std::vector<int64_t> encode(const std::string& text) const;
  // clip.tokenize(texts, context_length, truncate): [N, context_length] int64.
  // Without truncate, a text that does not fit is an error naming it.
  at::Tensor tokenize(const std::vector<std::string>& texts, int64_t context_length = 77, bool truncate = true) const;
  // Ids back to text, as SimpleTokenizer.decode ("</w>" becomes a space).
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t start_token() const { return start_; }
  int64_t end_token() const { return end_; }
  int64_t vocab_size() const { return static_cast<int64_t>(decoder_.size()); }

  Tokenizer(Tokenizer&& other) noexcept;
  Tokenizer& operator=(Tokenizer&& other) noexcept;

 private:
  Tokenizer() = default;
  // Merge ranks of byte-encoded symbol pairs, keyed "first second".
  void set_merges(const std::vector<std::string>& merges);
  std::vector<int64_t> bpe(const std::string& token) const;

  std::unordered_map<std::string, int64_t> encoder_;
  std::vector<std::string> decoder_;
  std::unordered_map<std::string, int64_t> ranks_;
  std::vector<std::string> byte_symbol_;  // byte -> its printable stand-in (UTF-8)
  int64_t start_ = 49406, end_ = 49407;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace semcodec
