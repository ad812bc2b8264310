#include "data/safetensors.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp assumes a little-endian host"
#endif

namespace semcodec {

namespace {

using json = nlohmann::json;

// Headers above this are refused before anything is allocated (the reference
// implementation uses the same limit).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kMaxRank = 64;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  uint64_t size;
};

const DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2}, {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(std::string_view name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* find_dtype(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

std::string supported_dtypes() {
  std::string s;
  for (const auto& d : kDtypes) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset
  std::map<std::string, std::string> metadata;
};

std::string shape_str(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

uint64_t load_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void store_u64_le(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Validates the 8-byte size field against the file size and returns it.
uint64_t check_header_size(const char* size_field, uint64_t file_size, const std::string& name) {
  const uint64_t n = load_u64_le(size_field);
  require(n <= kMaxHeaderBytes, "{}: header size {} exceeds the limit of {} bytes (corrupt or not a safetensors file)",
          name, n, kMaxHeaderBytes);
  require(n <= file_size - 8,
          "{}: header size {} exceeds the {} bytes that follow the size field (truncated or not a safetensors file)",
          name, n, file_size - 8);
  require(n >= 2, "{}: header size {} is too small to hold a JSON object", name, n);
  return n;
}

void require_file_size(uint64_t file_size, const std::string& name) {
  require(file_size >= 8, "{}: file is {} bytes, too short for a safetensors file (the header size alone takes 8)",
          name, file_size);
}

// Parses the JSON text, rejecting duplicate keys and nesting deeper than the
// format uses (top object > tensor entry > shape array).
json parse_json(std::string_view text, const std::string& name) {
  std::vector<std::set<std::string>> keys;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) -> bool {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= 3) fail("{}: header JSON is nested deeper than the safetensors format allows", name);
        if (ev == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
          fail("{}: header JSON has the key \"{}\" twice in one object", name, parsed.get<std::string>());
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON: {}", name, e.what());
  }
}

// Reads a non-negative integer that fits int64.
bool get_uint(const json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

Entry parse_entry(const std::string& tname, const json& v, uint64_t data_size, const std::string& name) {
  require(v.is_object(), "{}: tensor '{}': entry must be a JSON object, got {}", name, tname, v.type_name());
  for (const auto& item : v.items()) {
    const std::string& k = item.key();
    require(k == "dtype" || k == "shape" || k == "data_offsets", "{}: tensor '{}': unexpected field \"{}\"", name,
            tname, k);
  }
  Entry e;
  e.name = tname;

  auto it = v.find("dtype");
  require(it != v.end(), "{}: tensor '{}': missing \"dtype\"", name, tname);
  require(it->is_string(), "{}: tensor '{}': \"dtype\" must be a string", name, tname);
  const std::string dtype = it->get<std::string>();
  e.dtype = find_dtype(dtype);
  require(e.dtype != nullptr, "{}: tensor '{}': unknown or unsupported dtype '{}' (supported: {})", name, tname,
          dtype, supported_dtypes());

  it = v.find("shape");
  require(it != v.end(), "{}: tensor '{}': missing \"shape\"", name, tname);
  require(it->is_array(), "{}: tensor '{}': \"shape\" must be an array", name, tname);
  require(it->size() <= kMaxRank, "{}: tensor '{}': shape has {} dimensions (at most {} supported)", name, tname,
          it->size(), kMaxRank);
  bool zero = false;
  for (const auto& d : *it) {
    uint64_t u = 0;
    require(get_uint(d, u) && u <= uint64_t(std::numeric_limits<int64_t>::max()),
            "{}: tensor '{}': shape {} must hold non-negative integers", name, tname, it->dump());
    e.shape.push_back(static_cast<int64_t>(u));
    zero = zero || u == 0;
  }
  // Element count and byte size, overflow-checked (zero-sized tensors are exact).
  uint64_t numel = 1;
  bool overflow = false;
  if (zero) {
    numel = 0;
  } else {
    for (int64_t d : e.shape) overflow = overflow || __builtin_mul_overflow(numel, uint64_t(d), &numel);
    overflow = overflow || numel > uint64_t(std::numeric_limits<int64_t>::max());
  }
  uint64_t nbytes = 0;
  overflow = overflow || __builtin_mul_overflow(numel, e.dtype->size, &nbytes);

  it = v.find("data_offsets");
  require(it != v.end(), "{}: tensor '{}': missing \"data_offsets\"", name, tname);
  require(it->is_array() && it->size() == 2 && get_uint((*it)[0], e.begin) && get_uint((*it)[1], e.end),
          "{}: tensor '{}': \"data_offsets\" must be two non-negative integers, got {}", name, tname, it->dump());
  require(e.begin <= e.end && e.end <= data_size,
          "{}: tensor '{}': data_offsets [{}, {}] out of range: the data section has {} bytes{}", name, tname,
          e.begin, e.end, data_size, e.end > data_size ? " (file truncated?)" : "");
  require(!overflow, "{}: tensor '{}': shape {} of {} is too large (its byte size overflows)", name, tname,
          shape_str(e.shape), e.dtype->name);
  require(e.end - e.begin == nbytes, "{}: tensor '{}': data_offsets [{}, {}] do not match shape {} of {} ({} bytes)",
          name, tname, e.begin, e.end, shape_str(e.shape), e.dtype->name, nbytes);
  return e;
}

Header parse_header(std::string_view text, uint64_t data_size, const std::string& name) {
  require(!text.empty() && text.front() == '{', "{}: header does not start with '{{' (not a safetensors file?)", name);
  const json root = parse_json(text, name);
  require(root.is_object(), "{}: header must be a JSON object", name);
  Header h;
  for (const auto& item : root.items()) {
    const std::string& key = item.key();
    const json& v = item.value();
    if (key == "__metadata__") {
      if (v.is_null()) continue;
      require(v.is_object(), "{}: \"__metadata__\" must be an object of strings, got {}", name, v.type_name());
      for (const auto& m : v.items()) {
        require(m.value().is_string(), "{}: metadata \"{}\" must be a string, got {}", name, m.key(),
                m.value().type_name());
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(key, v, data_size, name));
  }
  std::sort(h.entries.begin(), h.entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  // Tensors must tile the data section exactly: no overlap, no gap, no tail.
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : h.entries) {
    if (e.begin < covered)
      fail("{}: tensors '{}' (data_offsets [{}, {}]) and '{}' (data_offsets [{}, {}]) overlap", name, prev->name,
           prev->begin, prev->end, e.name, e.begin, e.end);
    require(e.begin == covered, "{}: bytes [{}, {}) of the data section belong to no tensor (before tensor '{}')",
            name, covered, e.begin, e.name);
    covered = e.end;
    prev = &e;
  }
  require(covered == data_size, "{}: bytes [{}, {}) at the end of the data section belong to no tensor", name,
          covered, data_size);
  return h;
}

at::Tensor empty_for(const Entry& e) {
  return at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type).device(at::kCPU));
}

void check_bool(const at::Tensor& t, const Entry& e, const std::string& name) {
  if (e.dtype->type != at::kBool) return;
  const auto* p = static_cast<const unsigned char*>(t.data_ptr());
  const uint64_t n = e.end - e.begin;
  for (uint64_t i = 0; i < n; ++i)
    require(p[i] <= 1, "{}: tensor '{}': BOOL element {} has byte value {} (must be 0 or 1)", name, e.name, i,
            int(p[i]));
}

// Header and tensors in data order, ready to be written.
struct Prepared {
  std::string prefix;  // size field + padded header
  std::vector<at::Tensor> data;
};

std::string json_string(const std::string& s, const std::string& label) {
  try {
    return json(s).dump();
  } catch (const json::exception&) {
    fail("{}: name \"{}\" is not valid UTF-8", label, s);
  }
}

Prepared prepare(const std::map<std::string, at::Tensor>& tensors, const std::map<std::string, std::string>& metadata,
                 const std::string& label) {
  struct Item {
    std::string name;
    const DtypeInfo* dtype;
    at::Tensor t;
  };
  std::vector<Item> items;
  for (const auto& [tname, t] : tensors) {
    require(tname != "__metadata__", "{}: a tensor cannot be named \"__metadata__\"", label);
    require(t.defined(), "{}: tensor '{}' is undefined", label, tname);
    require(t.layout() == at::kStrided, "{}: tensor '{}' is not a dense (strided) tensor", label, tname);
    const DtypeInfo* d = find_dtype(t.scalar_type());
    require(d != nullptr, "{}: tensor '{}' has dtype {}, which safetensors files here do not support (supported: {})",
            label, tname, std::string(c10::toString(t.scalar_type())), supported_dtypes());
    items.push_back({tname, d, t.detach().cpu().contiguous()});
  }
  // Largest element size first keeps every tensor aligned to its element size.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.dtype->size > b.dtype->size; });

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      header += json_string(k, label) + ":" + json_string(v, label);
    }
    header += "}";
  }
  Prepared p;
  uint64_t offset = 0;
  for (const auto& it : items) {
    const uint64_t nbytes = uint64_t(it.t.numel()) * it.dtype->size;
    if (header.size() > 1) header += ',';
    std::vector<int64_t> shape(it.t.sizes().begin(), it.t.sizes().end());
    header += fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          json_string(it.name, label), it.dtype->name, fmt::join(shape, ","), offset,
                          offset + nbytes);
    offset += nbytes;
    p.data.push_back(it.t);
  }
  header += "}";
  while ((8 + header.size()) % 8 != 0) header += ' ';
  p.prefix.resize(8);
  store_u64_le(p.prefix.data(), header.size());
  p.prefix += header;
  return p;
}

}  // namespace

std::string serialize_safetensors(const std::map<std::string, at::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  Prepared p = prepare(tensors, metadata, "safetensors");
  std::string out = std::move(p.prefix);
  for (const auto& t : p.data)
    if (t.numel() > 0) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Prepared p = prepare(tensors, metadata, path);
  AtomicOutput out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary | std::ios::trunc);
    require(f.good(), "{}: cannot open for writing", out.temp_path());
    f.write(p.prefix.data(), static_cast<std::streamsize>(p.prefix.size()));
    for (const auto& t : p.data)
      if (t.numel() > 0) f.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    f.flush();
    require(f.good(), "{}: write failed (disk full?)", out.temp_path());
  }
  out.commit();
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name) {
  require_file_size(bytes.size(), name);
  const uint64_t n = check_header_size(bytes.data(), bytes.size(), name);
  const uint64_t data_size = bytes.size() - 8 - n;
  Header h = parse_header(bytes.substr(8, n), data_size, name);
  const char* data = bytes.data() + 8 + n;
  SafetensorsFile out;
  out.metadata = std::move(h.metadata);
  for (const Entry& e : h.entries) {
    at::Tensor t = empty_for(e);
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
    check_bool(t, e, name);
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

namespace {

struct OpenFile {
  std::ifstream f;
  uint64_t header_size = 0, data_size = 0;
  Header header;
};

void open_and_parse(const std::string& path, OpenFile& of) {
  of.f.open(path, std::ios::binary);
  require(of.f.good(), "{}: cannot open for reading (missing or unreadable)", path);
  of.f.seekg(0, std::ios::end);
  const std::streamoff end = of.f.tellg();
  require(end >= 0, "{}: cannot determine the file size", path);
  of.f.seekg(0, std::ios::beg);
  const uint64_t file_size = static_cast<uint64_t>(end);
  require_file_size(file_size, path);
  char size_field[8];
  of.f.read(size_field, 8);
  require(of.f.gcount() == 8, "{}: read failed", path);
  of.header_size = check_header_size(size_field, file_size, path);
  std::string text(of.header_size, '\0');
  of.f.read(text.data(), static_cast<std::streamsize>(text.size()));
  require(uint64_t(of.f.gcount()) == of.header_size, "{}: read failed in the header", path);
  of.data_size = file_size - 8 - of.header_size;
  of.header = parse_header(text, of.data_size, path);
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  OpenFile of;
  open_and_parse(path, of);
  SafetensorsFile out;
  out.metadata = std::move(of.header.metadata);
  for (const Entry& e : of.header.entries) {
    at::Tensor t = empty_for(e);
    const uint64_t n = e.end - e.begin;
    if (n > 0) {
      of.f.seekg(static_cast<std::streamoff>(8 + of.header_size + e.begin), std::ios::beg);
      of.f.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(n));
      require(uint64_t(of.f.gcount()) == n, "{}: tensor '{}': read failed (file changed or truncated while reading?)",
              path, e.name);
    }
    check_bool(t, e, path);
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  OpenFile of;
  open_and_parse(path, of);
  return std::move(of.header.metadata);
}

}  // namespace semcodec
