#include "models/clip/unicode_text.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>

namespace semcodec::unicode {

namespace {

struct CodeRange {
  char32_t first, last;
};
struct CodeMap {
  char32_t from, to;
};
struct CodeString {
  char32_t from;
  const char32_t* to;
};
struct CombiningClass {
  char32_t first, last;
  uint8_t ccc;
};
struct Decomposition {
  char32_t from, first, second;  // second == 0: a singleton
};
struct Composition {
  char32_t first, second, composite;
};
struct NamedEntity {
  const char* name;
  const char32_t* value;
};

#include "models/clip/unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) {
  const auto it = std::upper_bound(std::begin(table), std::end(table), c,
                                   [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(table) && c <= std::prev(it)->last;
}

template <typename T, size_t N>
const T* find_code(const T (&table)[N], char32_t c) {
  const auto it = std::lower_bound(std::begin(table), std::end(table), c, [](const T& e, char32_t v) { return e.from < v; });
  return it != std::end(table) && it->from == c ? &*it : nullptr;
}

template <size_t N>
const char32_t* find_entity(const NamedEntity (&table)[N], const std::string& name) {
  const auto it = std::lower_bound(std::begin(table), std::end(table), name,
                                   [](const NamedEntity& e, const std::string& v) { return std::strcmp(e.name, v.c_str()) < 0; });
  return it != std::end(table) && name == it->name ? it->value : nullptr;
}

bool is_case_ignorable(char32_t c) { return in_ranges(kCaseIgnorableRanges, c); }
bool is_cased(char32_t c) { return in_ranges(kCasedRanges, c); }

uint8_t combining_class(char32_t c) {
  if (c < 0x300) return 0;
  const auto it = std::upper_bound(std::begin(kCombiningClasses), std::end(kCombiningClasses), c,
                                   [](char32_t v, const CombiningClass& r) { return v < r.first; });
  return it != std::begin(kCombiningClasses) && c <= std::prev(it)->last ? std::prev(it)->ccc : 0;
}

// Hangul syllables compose and decompose arithmetically (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose_into(char32_t c, std::u32string& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount != 0) out += kTBase + s % kTCount;
    return;
  }
  if (const Decomposition* d = find_code(kDecompositions, c)) {
    decompose_into(d->first, out);
    if (d->second != 0) decompose_into(d->second, out);
    return;
  }
  out += c;
}

std::optional<char32_t> compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const Composition key{a, b, 0};
  const auto it = std::lower_bound(std::begin(kCompositions), std::end(kCompositions), key, [](const Composition& x, const Composition& y) {
    return x.first != y.first ? x.first < y.first : x.second < y.second;
  });
  if (it != std::end(kCompositions) && it->first == a && it->second == b) return it->composite;
  return std::nullopt;
}

bool is_ascii_alnum(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_hex(char32_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::string ascii(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) out += c < 0x80 ? static_cast<char>(c) : '\x7f';  // never equal to an entity name
  return out;
}

// The replacement of one numeric reference, as html._replace_charref.
std::u32string numeric_reference(std::u32string_view digits, bool hex) {
  uint64_t num = 0;
  for (char32_t c : digits) {
    const uint64_t d = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
    num = std::min<uint64_t>(num * (hex ? 16 : 10) + d, 0x7FFFFFFF);  // anything above 0x10FFFF behaves alike
  }
  if (const CodeMap* m = find_code(kInvalidCharrefs, static_cast<char32_t>(num))) return std::u32string(1, m->to);
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return U"\uFFFD";
  if (in_ranges(kInvalidCodepoints, static_cast<char32_t>(num))) return U"";
  return std::u32string(1, static_cast<char32_t>(num));
}

// ftfy.fixes.unescape_html: only "&#?[0-9A-Za-z]{1,24};", named references
// must end in ';' (upper-cased aliases accepted), numeric ones must decode whole.
std::u32string ftfy_unescape_html(std::u32string_view text) {
  std::u32string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '&') {
      out += text[i++];
      continue;
    }
    const bool numeric = i + 1 < text.size() && text[i + 1] == '#';
    const size_t begin = i + 1 + (numeric ? 1 : 0);
    size_t end = begin;
    while (end < text.size() && is_ascii_alnum(text[end])) ++end;
    if (end == begin || end - begin > 24 || end >= text.size() || text[end] != ';') {
      out += text[i++];
      continue;
    }
    const std::u32string_view whole = text.substr(i, end + 1 - i);
    std::u32string replacement(whole);
    if (!numeric) {
      const std::string name = ascii(text.substr(begin, end + 1 - begin));  // with ';'
      if (const char32_t* v = find_entity(kHtml5Entities, name))
        replacement = v;
      else if (const char32_t* u = find_entity(kFtfyUpperEntities, name))
        replacement = u;
    } else {
      const std::u32string decoded = html_unescape(whole);
      if (decoded.find(U';') == std::u32string::npos) replacement = decoded;
    }
    out += replacement;
    i = end + 1;
  }
  return out;
}

// ftfy.chardata.LIGATURES (fix_latin_ligatures).
const char32_t* ligature(char32_t c) {
  switch (c) {
    case 0x132: return U"IJ";
    case 0x133: return U"ij";
    case 0x149: return U"\u02BCn";
    case 0x1F1: return U"DZ";
    case 0x1F2: return U"Dz";
    case 0x1F3: return U"dz";
    case 0x1C4: return U"D\u017D";
    case 0x1C5: return U"D\u017E";
    case 0x1C6: return U"d\u017E";
    case 0x1C7: return U"LJ";
    case 0x1C8: return U"Lj";
    case 0x1C9: return U"lj";
    case 0x1CA: return U"NJ";
    case 0x1CB: return U"Nj";
    case 0x1CC: return U"nj";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

// ftfy.chardata.CONTROL_CHARS (remove_control_chars).
bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// One pass of ftfy's per-segment fixers, in fix_and_explain's order.
std::u32string fix_segment_once(std::u32string_view segment, bool unescape) {
  std::u32string text = unescape ? ftfy_unescape_html(segment) : std::u32string(segment);
  // fix_c1_controls: U+0080..U+009F read as (sloppy) Windows-1252, which is
  // html's table of invalid references for that block.
  // fix_latin_ligatures, fix_character_width, uncurl_quotes.
  std::u32string fixed;
  fixed.reserve(text.size());
  for (char32_t c : text) {
    if (c >= 0x80 && c <= 0x9F) {
      if (const CodeMap* m = find_code(kInvalidCharrefs, c)) c = m->to;
    }
    if (const char32_t* l = ligature(c)) {
      fixed += l;
    } else if (const CodeString* w = (c == 0x3000 || (c >= 0xFF01 && c < 0xFFF0)) ? find_code(kWidthMap, c) : nullptr) {
      fixed += w->to;
    } else if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) {
      fixed += U'\'';
    } else if (c >= 0x201C && c <= 0x201F) {
      fixed += U'"';
    } else {
      fixed += c;
    }
  }
  // fix_line_breaks.
  text.clear();
  for (size_t i = 0; i < fixed.size(); ++i) {
    const char32_t c = fixed[i];
    if (c == '\r' && i + 1 < fixed.size() && fixed[i + 1] == '\n') continue;
    text += (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) ? U'\n' : c;
  }
  // remove_terminal_escapes: "\x1b[" [0-9;]* [A-Za-z].
  fixed.clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == '[') {
      size_t j = i + 2;
      while (j < text.size() && (is_digit(text[j]) || text[j] == ';')) ++j;
      if (j < text.size() && text[j] < 0x80 && std::isalpha(static_cast<int>(text[j]))) {
        i = j;
        continue;
      }
    }
    fixed += text[i];
  }
  // remove_control_chars.
  text.clear();
  for (char32_t c : fixed)
    if (!is_removed_control(c)) text += c;
  return nfc(text);
}

}  // namespace

std::u32string decode_utf8(std::string_view s) {
  // Invalid input becomes one U+FFFD per maximal subpart of a valid sequence,
  // as Python's decode(errors="replace") does.
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  while (i < s.size()) {
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) {
      out += b0;
      ++i;
      continue;
    }
    size_t len = 0;
    char32_t cp = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, cp = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, cp = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    size_t k = 1;
    for (; len > 0 && k < len && i + k < s.size(); ++k) {
      const unsigned char b = byte(i + k);
      const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
      if (b < min || b > max) break;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (len > 0 && k == len) {
      out += cp;
      i += len;
    } else {
      out += U'\uFFFD';
      i += k;  // the lead byte and the continuation bytes that were still valid
    }
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return in_ranges(kLetterRanges, c);
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return in_ranges(kNumberRanges, c);
}

bool is_space(char32_t c) { return in_ranges(kSpaceRanges, c); }

std::u32string python_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c < 0x80) {
      out += (c >= 'A' && c <= 'Z') ? c + 32 : c;
    } else if (c == 0x130) {
      out += U"i\u0307";
    } else if (c == 0x3A3) {
      // Final_Sigma: \p{cased} \p{case-ignorable}* SIGMA !(\p{case-ignorable}* \p{cased}).
      size_t j = i;
      while (j > 0 && is_case_ignorable(text[j - 1])) --j;
      bool final_sigma = j > 0 && is_cased(text[j - 1]);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < text.size() && is_case_ignorable(text[k])) ++k;
        final_sigma = k == text.size() || !is_cased(text[k]);
      }
      out += final_sigma ? U'\u03C2' : U'\u03C3';
    } else if (const CodeMap* m = find_code(kLowerMap, c)) {
      out += m->to;
    } else {
      out += c;
    }
  }
  return out;
}

std::u32string nfc(std::u32string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x300; })) return std::u32string(text);
  std::u32string d;
  d.reserve(text.size() + 8);
  for (char32_t c : text) decompose_into(c, d);
  // Canonical ordering: stable sort of each run of non-starters by class.
  for (size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition (UAX #15).
  if (d.empty()) return d;
  size_t starter = 0, out = 1;
  bool have_starter = combining_class(d[0]) == 0;  // nothing composes onto a leading non-starter
  int last_class = have_starter ? 0 : 256;
  for (size_t i = 1; i < d.size(); ++i) {
    const char32_t c = d[i];
    const int cls = combining_class(c);
    const auto composite = have_starter ? compose_pair(d[starter], c) : std::nullopt;
    if (composite && (last_class < cls || last_class == 0)) {
      d[starter] = *composite;
      continue;
    }
    if (cls == 0) {
      starter = out;
      have_starter = true;
    }
    last_class = cls;
    d[out++] = c;
  }
  d.resize(out);
  return d;
}

std::u32string html_unescape(std::u32string_view text) {
  if (text.find(U'&') == std::u32string_view::npos) return std::u32string(text);
  std::u32string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '&') {
      out += text[i++];
      continue;
    }
    size_t j = i + 1;
    if (j < text.size() && text[j] == '#') {
      // &#[0-9]+;?  or  &#[xX][0-9a-fA-F]+;?
      const bool hex = j + 1 < text.size() && (text[j + 1] == 'x' || text[j + 1] == 'X');
      size_t begin = j + 1, end = begin;
      while (end < text.size() && is_digit(text[end])) ++end;
      if (end == begin && hex) {
        begin = j + 2;
        end = begin;
        while (end < text.size() && is_hex(text[end])) ++end;
      }
      if (end == begin) {  // no reference: '#' cannot start a name either
        out += text[i++];
        continue;
      }
      const bool is_hex_ref = begin == j + 2;
      out += numeric_reference(text.substr(begin, end - begin), is_hex_ref);
      i = end + (end < text.size() && text[end] == ';' ? 1 : 0);
      continue;
    }
    // [^\t\n\f <&#;]{1,32};?
    size_t end = j;
    while (end < text.size() && end - j < 32) {
      const char32_t c = text[end];
      if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
      ++end;
    }
    if (end == j) {
      out += text[i++];
      continue;
    }
    if (end < text.size() && text[end] == ';') ++end;
    const std::u32string_view s = text.substr(j, end - j);
    i = end;
    if (const char32_t* v = find_entity(kHtml5Entities, ascii(s))) {
      out += v;
      continue;
    }
    bool found = false;
    for (size_t x = s.size() - 1; x > 1 && !found; --x) {
      if (const char32_t* v = find_entity(kHtml5Entities, ascii(s.substr(0, x)))) {
        out += v;
        out += s.substr(x);
        found = true;
      }
    }
    if (!found) {
      out += U'&';
      out += s;
    }
  }
  return out;
}

std::u32string fix_text(std::u32string_view text) {
  std::u32string out;
  bool unescape = true;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = text.find(U'\n', pos);
    next = next == std::u32string_view::npos ? text.size() : next + 1;
    const std::u32string_view segment = text.substr(pos, next - pos);
    // unescape_html="auto": off from the first line that contains '<' on.
    if (segment.find(U'<') != std::u32string_view::npos) unescape = false;
    std::u32string fixed(segment);
    for (int round = 0; round < 100; ++round) {  // ftfy repeats until nothing changes
      std::u32string again = fix_segment_once(fixed, unescape);
      if (again == fixed) break;
      fixed = std::move(again);
    }
    out += fixed;
    pos = next;
  }
  return out;
}

std::u32string strip(std::u32string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && is_space(text[begin])) ++begin;
  while (end > begin && is_space(text[end - 1])) --end;
  return std::u32string(text.substr(begin, end - begin));
}

std::u32string fold_whitespace(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  bool in_space = false;
  for (char32_t c : text) {
    if (is_space(c)) {
      in_space = true;
      continue;
    }
    if (in_space && !out.empty()) out += U' ';
    in_space = false;
    out += c;
  }
  return out;  // leading and trailing runs dropped: the strip() after the sub
}

const char* tables_version() { return kUnicodeVersion; }

}  // namespace semcodec::unicode
