#include "data/npy.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "data/zip_archive.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace semcodec {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// numpy itself refuses headers above 10000 bytes by default; a little more
// room for long shapes, but never an allocation driven by a corrupt length.
constexpr uint32_t kMaxHeaderLen = 1u << 20;

static_assert(sizeof(int64_t) == 8, "int64_t must be 8 bytes");

bool host_is_little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

uint32_t load_le(const unsigned char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// --- header: a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& name) : s_(s), name_(name) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_ws();
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') { ++i_; break; }
      std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() == '[') bad("structured (record) dtypes are not supported");
        h.descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        h.shape = parse_shape();
        have_shape = true;
      } else {
        bad("unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') { ++i_; continue; }
      skip_ws();
      if (peek() == '}') { ++i_; break; }
      bad("expected ',' or '}'");
    }
    skip_ws();
    if (i_ != s_.size()) bad("trailing characters after the dict");
    if (!have_descr || !have_order || !have_shape) bad("missing 'descr', 'fortran_order' or 'shape'");
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) {
    fail("{}: malformed .npy header ({}) at offset {}: '{}'", name_, what, i_, std::string(s_));
  }
  char peek() { return i_ < s_.size() ? s_[i_] : '\0'; }
  void expect(char c) {
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++i_;
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  std::string parse_string() {
    char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string");
    ++i_;
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\') bad("escapes in strings are not supported");
      ++i_;
    }
    if (i_ >= s_.size()) bad("unterminated string");
    std::string out(s_.substr(start, i_ - start));
    ++i_;
    return out;
  }
  bool parse_bool() {
    if (s_.substr(i_, 4) == "True") { i_ += 4; return true; }
    if (s_.substr(i_, 5) == "False") { i_ += 5; return false; }
    bad("expected True or False");
  }
  std::vector<int64_t> parse_shape() {
    std::vector<int64_t> shape;
    expect('(');
    while (true) {
      skip_ws();
      if (peek() == ')') { ++i_; break; }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) bad("expected a non-negative integer dimension");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        int d = peek() - '0';
        if (v > (std::numeric_limits<int64_t>::max() - d) / 10) bad("dimension overflows int64");
        v = v * 10 + d;
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long literal
      shape.push_back(v);
      if (shape.size() > 64) bad("more than 64 dimensions");
      skip_ws();
      if (peek() == ',') { ++i_; continue; }
      skip_ws();
      if (peek() == ')') { ++i_; break; }
      bad("expected ',' or ')' in shape");
    }
    return shape;
  }

  std::string_view s_;
  const std::string& name_;
  size_t i_ = 0;
};

// Validates the descr and returns it normalized: '|' for one-byte types, '<'
// or '>' otherwise ('=' resolved to the host order).
std::string normalize_descr(const std::string& descr, const std::string& name) {
  if (descr.size() != 3) fail("{}: unsupported .npy dtype '{}'", name, descr);
  char order = descr[0], kind = descr[1], size = descr[2];
  bool ok = false;
  switch (kind) {
    case 'f': ok = size == '2' || size == '4' || size == '8'; break;
    case 'i': case 'u': ok = size == '1' || size == '2' || size == '4' || size == '8'; break;
    case 'b': ok = size == '1'; break;
    default: ok = false;
  }
  if (!ok || (order != '<' && order != '>' && order != '|' && order != '='))
    fail("{}: unsupported .npy dtype '{}' (supported: f2 f4 f8 i1-i8 u1-u8 b1)", name, descr);
  if (size == '1') return std::string("|") + kind + size;
  if (order == '=') order = host_is_little_endian() ? '<' : '>';
  if (order == '|') fail("{}: dtype '{}' has no byte order", name, descr);
  return std::string(1, order) + kind + size;
}

int64_t descr_item_size(const std::string& descr) { return descr.size() == 3 ? descr[2] - '0' : 0; }

// Number of data bytes the header announces, or an error if it overflows.
uint64_t checked_nbytes(const std::vector<int64_t>& shape, int64_t item, const std::string& name) {
  uint64_t n = static_cast<uint64_t>(item);
  for (int64_t d : shape) {
    if (d < 0) fail("{}: negative dimension in .npy shape", name);
    uint64_t r;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &r) || r > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: .npy shape is too large (element count overflows)", name);
    n = r;
  }
  return n;
}

struct Prefix {
  Header header;
  size_t data_offset = 0;  // bytes before the array data
};

// Parses magic, version and header from the first bytes of a file.
// `available` is how many bytes of the file exist in total.
Prefix parse_prefix(const unsigned char* p, size_t have, const std::string& name) {
  if (have < kMagicLen + 2 || std::memcmp(p, kMagic, kMagicLen) != 0)
    fail("{}: not a .npy file (bad magic)", name);
  int major = p[6], minor = p[7];
  size_t len_bytes;
  if (major == 1) len_bytes = 2;
  else if (major == 2 || major == 3) len_bytes = 4;
  else fail("{}: unsupported .npy format version {}.{}", name, major, minor);
  if (have < 8 + len_bytes) fail("{}: truncated .npy header", name);
  uint32_t hlen = load_le(p + 8, static_cast<int>(len_bytes));
  if (hlen > kMaxHeaderLen) fail("{}: .npy header length {} is implausibly large", name, hlen);
  size_t off = 8 + len_bytes;
  if (have - off < hlen) fail("{}: truncated .npy header (needs {} bytes, file has {})", name, hlen, have - off);
  std::string_view text(reinterpret_cast<const char*>(p + off), hlen);
  Prefix out;
  out.header = HeaderParser(text, name).parse();
  out.data_offset = off + hlen;
  return out;
}

void byteswap_inplace(std::vector<char>& data, int64_t item) {
  if (item <= 1) return;
  for (size_t i = 0; i + item <= data.size(); i += item) std::reverse(data.begin() + i, data.begin() + i + item);
}

// Fortran (column-major) element order -> C order.
std::vector<char> fortran_to_c(const std::vector<char>& src, const std::vector<int64_t>& shape, int64_t item) {
  std::vector<char> dst(src.size());
  const size_t nd = shape.size();
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n == 0 || nd < 2) return src;
  std::vector<int64_t> fstride(nd);  // element strides of the Fortran layout
  int64_t s = 1;
  for (size_t k = 0; k < nd; ++k) { fstride[k] = s; s *= shape[k]; }
  std::vector<int64_t> idx(nd, 0);
  int64_t foff = 0;
  for (int64_t c = 0; c < n; ++c) {
    std::memcpy(dst.data() + c * item, src.data() + foff * item, item);
    for (size_t k = nd; k-- > 0;) {  // increment the C-order multi-index
      if (++idx[k] < shape[k]) { foff += fstride[k]; break; }
      foff -= fstride[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
  return dst;
}

// Shared tail of read_npy / parse_npy: turn raw payload bytes into a normalized array.
NpyArray finish(const Header& h, std::vector<char> data, const std::string& name) {
  NpyArray a;
  a.dtype = normalize_descr(h.descr, name);
  a.shape = h.shape;
  const int64_t item = descr_item_size(a.dtype);
  const bool little = host_is_little_endian();
  if (!little) fail("{}: big-endian hosts are not supported", name);
  if (a.dtype[0] == '>') {
    byteswap_inplace(data, item);
    a.dtype[0] = '<';
  }
  if (h.fortran_order) data = fortran_to_c(data, a.shape, item);
  if (a.dtype == "|b1") {
    for (char c : data)
      if (c != 0 && c != 1) fail("{}: bool array holds a byte other than 0 or 1", name);
  }
  a.data = std::move(data);
  return a;
}

std::string descr_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return "<f4";
    case at::kDouble: return "<f8";
    case at::kHalf: return "<f2";
    case at::kChar: return "|i1";
    case at::kShort: return "<i2";
    case at::kInt: return "<i4";
    case at::kLong: return "<i8";
    case at::kByte: return "|u1";
    case at::kBool: return "|b1";
    default: fail("write_npy: unsupported tensor dtype {}", std::string(at::toString(t.scalar_type())));
  }
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t NpyArray::item_size() const { return descr_item_size(dtype); }

NpyArray parse_npy(std::string_view bytes, const std::string& name) {
  Prefix pre = parse_prefix(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), name);
  std::string descr = normalize_descr(pre.header.descr, name);
  uint64_t need = checked_nbytes(pre.header.shape, descr_item_size(descr), name);
  uint64_t have = bytes.size() - pre.data_offset;
  if (have < need) fail("{}: truncated .npy data (shape needs {} bytes, file has {})", name, need, have);
  if (have > need) fail("{}: .npy has {} unexpected trailing bytes after the data", name, have - need);
  std::vector<char> data(bytes.data() + pre.data_offset, bytes.data() + pre.data_offset + need);
  return finish(pre.header, std::move(data), name);
}

NpyArray read_npy(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("{}: cannot open .npy file (missing or not a regular file)", path);
  std::ifstream f(path, std::ios::binary);
  if (!f.good()) fail("{}: cannot open .npy file (missing or unreadable)", path);
  f.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  // Read just enough for the header first, so the payload is sized from a
  // validated shape and checked against the real file size.
  std::vector<unsigned char> head(std::min<uint64_t>(file_size, 12));
  f.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  if (head.size() >= 10 && std::memcmp(head.data(), kMagic, kMagicLen) == 0) {
    size_t len_bytes = head[6] == 1 ? 2 : 4;
    uint64_t hlen = head.size() >= 8 + len_bytes ? load_le(head.data() + 8, static_cast<int>(len_bytes)) : 0;
    uint64_t want = std::min<uint64_t>(file_size, 8 + len_bytes + std::min<uint64_t>(hlen, kMaxHeaderLen + 1));
    head.resize(want);
    f.seekg(0);
    f.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(want));
  }
  if (!f) fail("{}: read error in .npy header", path);
  Prefix pre = parse_prefix(head.data(), head.size(), path);
  std::string descr = normalize_descr(pre.header.descr, path);
  uint64_t need = checked_nbytes(pre.header.shape, descr_item_size(descr), path);
  uint64_t have = file_size - pre.data_offset;
  if (have < need) fail("{}: truncated .npy data (shape needs {} bytes, file has {})", path, need, have);
  if (have > need) fail("{}: .npy has {} unexpected trailing bytes after the data", path, have - need);
  std::vector<char> data(need);
  f.seekg(static_cast<std::streamoff>(pre.data_offset));
  f.read(data.data(), static_cast<std::streamsize>(need));
  if (!f) fail("{}: read error in .npy data", path);
  return finish(pre.header, std::move(data), path);
}

namespace {
std::shared_ptr<const ByteSource> npz_source(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("{}: cannot open .npz file (missing or not a regular file)", path);
  return open_file_source(path);
}
}  // namespace

NpzReader::NpzReader(const std::string& path) : NpzReader(npz_source(path)) {}

NpzReader::NpzReader(std::shared_ptr<const ByteSource> source) : path_(source->name()) {
  // The directory is validated as a whole (overlapping or repeated members
  // are refused); no member is inflated until it is asked for.
  zip_ = std::make_shared<ZipArchive>(std::move(source));
  const std::string& path = path_;
  for (size_t i = 0; i < zip_->entries().size(); ++i) {
    const std::string& name = zip_->entries()[i].name;
    if (name.back() == '/') continue;  // a directory entry
    std::string key = name;
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    if (std::find(keys_.begin(), keys_.end(), key) != keys_.end()) fail("{}: duplicate .npz key '{}'", path, key);
    keys_.push_back(key);
    entry_.push_back(i);
  }
}

NpyArray NpzReader::read(const std::string& key) const {
  const auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end()) {
    std::string all;
    for (const auto& k : keys_) all += (all.empty() ? "" : ", ") + k;
    fail("{}: no array named '{}' (it holds: {})", path_, key, all.empty() ? "nothing" : all);
  }
  const ZipEntry& z = zip_->entries()[entry_[static_cast<size_t>(it - keys_.begin())]];
  // Bounded by the file for a stored member and by deflate's ratio for a deflated one (ZipArchive).
  const std::vector<uint8_t> bytes = zip_->read(z, std::numeric_limits<uint64_t>::max());
  return parse_npy(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path_ + ":" + key);
}

std::map<std::string, NpyArray> read_npz(const std::string& path) {
  const NpzReader npz(path);
  std::map<std::string, NpyArray> out;
  for (const auto& key : npz.keys()) out.emplace(key, npz.read(key));
  return out;
}

at::Tensor npy_to_tensor(const NpyArray& a, bool half_to_float, const std::string& name) {
  at::ScalarType st;
  const std::string d = a.dtype;
  if (d == "<f2") st = at::kHalf;
  else if (d == "<f4") st = at::kFloat;
  else if (d == "<f8") st = at::kDouble;
  else if (d == "|i1") st = at::kChar;
  else if (d == "<i2") st = at::kShort;
  else if (d == "<i4") st = at::kInt;
  else if (d == "<i8") st = at::kLong;
  else if (d == "|u1") st = at::kByte;
  else if (d == "|b1") st = at::kBool;
  else if (d == "<u2" || d == "<u4" || d == "<u8") st = d == "<u2" ? at::kInt : at::kLong;
  else fail("{}: dtype '{}' has no tensor equivalent", name, d);
  const int64_t n = a.numel();
  require(static_cast<int64_t>(a.data.size()) == n * a.item_size(), "{}: array data size does not match its shape", name);
  at::Tensor t = at::empty(a.shape, at::TensorOptions().dtype(st));
  if (d == "<u2") {
    auto* o = t.data_ptr<int32_t>();
    for (int64_t i = 0; i < n; ++i) { uint16_t v; std::memcpy(&v, a.data.data() + 2 * i, 2); o[i] = v; }
  } else if (d == "<u4") {
    auto* o = t.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) { uint32_t v; std::memcpy(&v, a.data.data() + 4 * i, 4); o[i] = v; }
  } else if (d == "<u8") {
    auto* o = t.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      uint64_t v;
      std::memcpy(&v, a.data.data() + 8 * i, 8);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{}: uint64 value {} at element {} does not fit int64", name, v, i);
      o[i] = static_cast<int64_t>(v);
    }
  } else if (n > 0) {
    std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  }
  if (half_to_float && st == at::kHalf) t = t.to(at::kFloat);
  return t;
}

std::string encode_npy(const at::Tensor& tensor) {
  require(tensor.defined(), "write_npy: undefined tensor");
  at::Tensor t = tensor.to(at::kCPU).contiguous();
  std::string descr = descr_of(t);
  std::string shape = "(";
  for (int64_t k = 0; k < t.dim(); ++k) shape += std::to_string(t.size(k)) + (t.dim() == 1 ? ",)" : k + 1 < t.dim() ? ", " : ")");
  if (t.dim() == 0) shape += ")";
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad so the data starts on a 64-byte boundary, as numpy does; the header ends with '\n'.
  auto total_for = [&](size_t len_bytes) {
    size_t pre = kMagicLen + 2 + len_bytes;
    size_t unpadded = pre + dict.size() + 1;
    return (unpadded + 63) / 64 * 64 - pre;
  };
  size_t hlen = total_for(2);
  int major = 1;
  size_t len_bytes = 2;
  if (hlen > 65535) { major = 2; len_bytes = 4; hlen = total_for(4); }
  std::string out(kMagic, kMagicLen);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t b = 0; b < len_bytes; ++b) out.push_back(static_cast<char>((hlen >> (8 * b)) & 0xFF));
  std::string header = dict;
  header.append(hlen - dict.size() - 1, ' ');
  header.push_back('\n');
  out += header;
  const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (nbytes) out.append(static_cast<const char*>(t.data_ptr()), nbytes);
  return out;
}

void write_npy(const std::string& path, const at::Tensor& tensor) { write_file_atomic(path, encode_npy(tensor)); }

}  // namespace semcodec
