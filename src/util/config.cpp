#include "util/config.h"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "util/atomic_file.h"
#include "util/yaml_bounded.h"

namespace semcodec {

namespace config_detail {
namespace {

// A node's line is shown when it came from a parsed file; built nodes (JSON,
// --set) have no position.
[[noreturn]] void fail_at(const std::string& source, const std::string& path, const YAML::Node& node,
                          const std::string& message) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) fail("{}: {}: {}", source, path, message);
  fail("{}: {}: {} (line {})", source, path, message, mark.line + 1);
}

// Quoted scalars are strings even when they look like numbers or booleans.
bool is_quoted(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  return tag == "!" || tag == "tag:yaml.org,2002:str";
}

std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "no value";
    case YAML::NodeType::Scalar:
      return is_quoted(node) ? fmt::format("the quoted string \"{}\"", node.Scalar()) : fmt::format("'{}'", node.Scalar());
    default: return "nothing";
  }
}

// Edits (insert, delete, substitute, swap of neighbours) turning a into b.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The candidate a typo most likely meant, or "" when none is close.
std::string closest(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const std::string& c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  if (best.empty()) return "";
  if (best_distance <= std::max<size_t>(1, name.size() / 3)) return best;
  for (const std::string& c : candidates)  // truncated names: "batch" -> "batch_size"
    if (name.size() >= 3 && c.rfind(name, 0) == 0) return c;
  return "";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

const std::string& plain_scalar(const YAML::Node& node, const char* expected, const std::string& source,
                                const std::string& path) {
  if (!node.IsScalar() || is_quoted(node))
    fail_at(source, path, node, fmt::format("expected {}, got {}", expected, describe_node(node)));
  return node.Scalar();
}

std::string format_bound(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return yaml_text(v);
}

void check_range(double v, const Limits& limits, const std::string& text, const std::string& source,
                 const std::string& path, const YAML::Node& node) {
  if (v >= limits.min && v <= limits.max) return;
  fail_at(source, path, node, fmt::format("{} is out of range: must be {}", text, limits_text(limits)));
}

bool is_key_segment(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum((unsigned char)c) || c == '_'; });
}

}  // namespace

YAML::Node parse_yaml_file(const std::string& path) { return load_yaml_file_bounded(path, "config file"); }

YAML::Node parse_yaml_text(const std::string& text, const std::string& source_name) {
  return parse_yaml_bounded(text, source_name);
}

YAML::Node override_tree(const std::string& assignment) {
  const std::string source = "--set " + assignment;
  size_t eq = assignment.find('=');
  require(eq != std::string::npos && eq > 0, "{}: expected key.path=value", source);
  const std::string key = assignment.substr(0, eq), value_text = assignment.substr(eq + 1);
  std::vector<std::string> segments;
  for (size_t start = 0;;) {
    size_t dot = key.find('.', start);
    segments.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    require(is_key_segment(segments.back()), "{}: '{}' is not a dotted key path like train.lr", source, key);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  YAML::Node value = value_text.empty() ? YAML::Node(YAML::NodeType::Null) : parse_yaml_bounded(value_text, source);
  if (value.IsScalar()) {  // rebuilt so that errors do not cite "line 1" of the argument
    YAML::Node scalar(value.Scalar());
    if (is_quoted(value)) scalar.SetTag("!");
    value.reset(scalar);
  }
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    YAML::Node map(YAML::NodeType::Map);
    map[*it] = value;
    value.reset(map);
  }
  return value;
}

YAML::Node json_to_yaml(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      YAML::Node map(YAML::NodeType::Map);
      for (const auto& [k, v] : j.items()) map[k] = json_to_yaml(v);
      return map;
    }
    case nlohmann::json::value_t::array: {
      YAML::Node seq(YAML::NodeType::Sequence);
      for (const auto& v : j) seq.push_back(json_to_yaml(v));
      return seq;
    }
    case nlohmann::json::value_t::string: {
      YAML::Node s(j.get<std::string>());
      s.SetTag("!");  // a JSON string never counts as a number or boolean
      return s;
    }
    case nlohmann::json::value_t::boolean: return YAML::Node(j.get<bool>() ? "true" : "false");
    case nlohmann::json::value_t::number_integer: return YAML::Node(std::to_string(j.get<int64_t>()));
    case nlohmann::json::value_t::number_unsigned: return YAML::Node(std::to_string(j.get<uint64_t>()));
    case nlohmann::json::value_t::number_float: return YAML::Node(yaml_text(j.get<double>()));
    default: return YAML::Node(YAML::NodeType::Null);
  }
}

std::string join_path(const std::string& prefix, const char* key) {
  return prefix.empty() ? std::string(key) : prefix + "." + key;
}

void require_map(const YAML::Node& node, const std::string& source, const std::string& path) {
  if (!node.IsMap()) fail_at(source, path, node, fmt::format("expected a section (mapping of keys), got {}", describe_node(node)));
}

void check_keys(const YAML::Node& map, const std::vector<std::string>& known, const std::string& source,
                const std::string& prefix) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    const YAML::Node& key_node = entry.first;
    if (!key_node.IsScalar())
      fail_at(source, prefix.empty() ? "(top level)" : prefix, key_node, "keys must be plain names");
    const std::string& name = key_node.Scalar();
    const std::string path = join_path(prefix, name.c_str());
    if (!seen.insert(name).second) fail_at(source, path, key_node, "duplicate key");
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string guess = closest(name, known);
    if (!guess.empty()) fail_at(source, path, key_node, fmt::format("unknown key (did you mean '{}'?)", guess));
    fail_at(source, path, key_node, fmt::format("unknown key (known keys here: {})", join(known)));
  }
}

void read_value(const YAML::Node& node, bool& out, const Limits&, const std::string& source, const std::string& path) {
  const std::string& text = plain_scalar(node, "true or false", source, path);
  // YAML 1.2 booleans only: yes/no/on/off are too easy to get by accident.
  if (text == "true" || text == "True" || text == "TRUE") {
    out = true;
  } else if (text == "false" || text == "False" || text == "FALSE") {
    out = false;
  } else {
    fail_at(source, path, node, fmt::format("expected true or false, got '{}'", text));
  }
}

void read_value(const YAML::Node& node, int64_t& out, const Limits& limits, const std::string& source,
                const std::string& path) {
  const std::string& text = plain_scalar(node, "an integer", source, path);
  const char* begin = text.data() + (!text.empty() && text[0] == '+' ? 1 : 0);
  const char* end = text.data() + text.size();
  int64_t value = 0;
  auto [stop, ec] = std::from_chars(begin, end, value);
  if (ec == std::errc::result_out_of_range) fail_at(source, path, node, fmt::format("'{}' is too large for an integer", text));
  if (ec != std::errc() || stop != end || begin == end)
    fail_at(source, path, node, fmt::format("expected an integer, got '{}'", text));
  check_range(static_cast<double>(value), limits, text, source, path, node);
  out = value;
}

void read_value(const YAML::Node& node, double& out, const Limits& limits, const std::string& source,
                const std::string& path) {
  const std::string& text = plain_scalar(node, "a number", source, path);
  double value = 0;
  if (text == ".inf" || text == ".Inf" || text == ".INF" || text == "+.inf") {
    value = HUGE_VAL;
  } else if (text == "-.inf" || text == "-.Inf" || text == "-.INF") {
    value = -HUGE_VAL;
  } else {
    char* stop = nullptr;
    value = std::strtod(text.c_str(), &stop);
    if (text.empty() || stop != text.c_str() + text.size() || std::isnan(value))
      fail_at(source, path, node, fmt::format("expected a number, got '{}'", text));
  }
  check_range(value, limits, text, source, path, node);
  out = value;
}

void read_value(const YAML::Node& node, std::string& out, const Limits& limits, const std::string& source,
                const std::string& path) {
  std::string value;
  if (node.IsScalar()) {
    value = node.Scalar();
  } else if (!node.IsNull()) {  // "key:" with nothing after it means the empty string
    fail_at(source, path, node, fmt::format("expected a string, got {}", describe_node(node)));
  }
  if (!limits.choices.empty() && std::find(limits.choices.begin(), limits.choices.end(), value) == limits.choices.end()) {
    std::string guess = closest(value, limits.choices);
    fail_at(source, path, node,
            fmt::format("'{}' is not one of: {}{}", value, join(limits.choices),
                        guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)));
  }
  out = std::move(value);
}

std::string yaml_text(bool v) { return v ? "true" : "false"; }
std::string yaml_text(int64_t v) { return std::to_string(v); }
std::string yaml_text(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  std::string s = fmt::format("{}", v);  // shortest text that reads back to the same double
  if (s.find_first_of(".e") == std::string::npos) s += ".0";  // keep it visibly a float
  return s;
}
std::string yaml_text(const std::string& v) { return nlohmann::json(v).dump(); }

std::string type_name(bool) { return "bool"; }
std::string type_name(int64_t) { return "int"; }
std::string type_name(double) { return "float"; }
std::string type_name(const std::string&) { return "string"; }

std::string limits_text(const Limits& limits) {
  if (!limits.choices.empty()) return "one of: " + join(limits.choices);
  const bool has_min = limits.min > -1e299, has_max = limits.max < 1e299;
  if (has_min && has_max)
    return fmt::format("in [{}, {}]", format_bound(limits.min), format_bound(limits.max));
  if (has_min) return ">= " + format_bound(limits.min);
  if (has_max) return "<= " + format_bound(limits.max);
  return "";
}

void emit_scalar(YAML::Emitter& out, bool v) { out << yaml_text(v); }
void emit_scalar(YAML::Emitter& out, int64_t v) { out << yaml_text(v); }
void emit_scalar(YAML::Emitter& out, double v) { out << yaml_text(v); }
void emit_scalar(YAML::Emitter& out, const std::string& v) { out << YAML::DoubleQuoted << v; }

std::string fnv1a64_hex(const std::string& bytes) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace config_detail

void write_resolved_config_text(const std::string& dir, const std::string& yaml_text, const std::string& hash) {
  ensure_dir(dir);
  std::string text = fmt::format(
      "# Resolved configuration of this run: every key, defaults filled in.\n# config_hash: {}\n{}", hash, yaml_text);
  write_file_atomic(dir + "/config.resolved.yaml", text);
}

std::string format_key_docs(const std::vector<ConfigKeyDoc>& docs) {
  size_t key_width = 0, default_width = 0;
  for (const ConfigKeyDoc& d : docs) {
    key_width = std::max(key_width, d.key.size());
    default_width = std::max(default_width, d.default_value.size());
  }
  std::string out;
  for (const ConfigKeyDoc& d : docs) {
    out += fmt::format("{:<{}}  {:<6}  {:<{}}  {}", d.key, key_width, d.type, d.default_value, default_width, d.help);
    if (!d.limits.empty()) out += fmt::format(" ({})", d.limits);
    out += "\n";
  }
  return out;
}

std::string key_docs_markdown(const std::vector<ConfigKeyDoc>& docs) {
  auto cell = [](std::string s) {
    std::string out;
    for (char c : s) out += (c == '|') ? std::string("\\|") : std::string(1, c);
    return out;
  };
  std::string out, section;
  for (const ConfigKeyDoc& d : docs) {
    std::string top = d.key.substr(0, d.key.find('.'));
    if (top != section) {
      section = top;
      out += fmt::format("\n## {}\n\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n", section);
    }
    out += fmt::format("| `{}` | {} | `{}` | {} | {} |\n", d.key, d.type, d.default_value, cell(d.limits), cell(d.help));
  }
  return out;
}

}  // namespace semcodec
