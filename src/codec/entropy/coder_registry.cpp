#include "codec/entropy/coder_registry.h"

#include <fmt/format.h>

#include <set>

#include "util/error.h"

namespace semcodec {

// The registry: one line per coder, in id order. CODER(x) names the function
// `CoderInfo x_entry()` that the coder's own file defines.
#define SEMCODEC_CODERS(CODER) \
  CODER(raw_coder)             \
  CODER(huffman_coder)         \
  CODER(rans_coder)

#define SEMCODEC_DECLARE_ENTRY(x) CoderInfo x##_entry();
SEMCODEC_CODERS(SEMCODEC_DECLARE_ENTRY)
#undef SEMCODEC_DECLARE_ENTRY

namespace {

std::vector<CoderInfo> checked(std::vector<CoderInfo> all) {
  std::set<int> ids;
  std::set<std::string> names;
  for (const CoderInfo& c : all) {
    require(ids.insert(static_cast<int>(c.id)).second, "coder registry: id {} registered twice", static_cast<int>(c.id));
    // A packet's first byte holds the coder id in its low 4 bits.
    require(static_cast<int>(c.id) < 16, "coder registry: '{}' has id {}; packets hold ids 0-15", c.name,
            static_cast<int>(c.id));
    require(names.insert(c.name).second, "coder registry: name '{}' registered twice", c.name);
    require(c.make != nullptr, "coder registry: '{}' has no factory", c.name);
  }
  return all;
}

std::string joined_names() {
  std::string out;
  for (const CoderInfo& c : coders()) out += (out.empty() ? "" : " | ") + c.name;
  return out;
}

const CoderInfo* find(CoderId id) {
  for (const CoderInfo& c : coders())
    if (c.id == id) return &c;
  return nullptr;
}

}  // namespace

const std::vector<CoderInfo>& coders() {
#define SEMCODEC_CALL_ENTRY(x) x##_entry(),
  static const std::vector<CoderInfo> all = checked({SEMCODEC_CODERS(SEMCODEC_CALL_ENTRY)});
#undef SEMCODEC_CALL_ENTRY
  return all;
}

std::vector<std::string> coder_names() {
  std::vector<std::string> out;
  for (const CoderInfo& c : coders()) out.push_back(c.name);
  return out;
}

const CoderInfo& coder_info(CoderId id) {
  const CoderInfo* c = find(id);
  require(c != nullptr, "unknown coder id {}", static_cast<int>(id));
  return *c;
}

const CoderInfo& coder_info(const std::string& name) {
  for (const CoderInfo& c : coders())
    if (c.name == name) return c;
  fail("unknown entropy coder '{}' (expected {})", name, joined_names());
}

const char* coder_name(CoderId id) {
  const CoderInfo* c = find(id);
  return c ? c->name.c_str() : "?";
}

std::string known_coder_ids() {
  std::string out;
  for (const CoderInfo& c : coders()) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", static_cast<int>(c.id), c.name);
  return out;
}

CoderId parse_coder_id(const std::string& name) { return coder_info(name).id; }

bool is_known_coder_id(int value) {
  return value >= 0 && value <= 255 && find(static_cast<CoderId>(value)) != nullptr;
}

std::unique_ptr<EntropyCoder> make_coder(CoderId id, const EntropyModel& model) {
  require(!model.empty(), "make_coder: empty entropy model");
  return coder_info(id).make(model);
}

}  // namespace semcodec
