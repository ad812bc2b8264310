// Reading, checking and writing typed configs (the visit() protocol of
// util/config_fields.h; the run config is models/run_config.h). Everything
// here walks a struct's visit() list, so adding a field to a struct is enough
// for it to be read, validated, written, hashed and documented.
//
// Errors are semcodec::Error with "<source>: <dotted.key.path>: <problem>",
// where source is the YAML file, "--set key=value" or the checkpoint name.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/config_fields.h"
#include "util/error.h"

namespace semcodec {

// One documented key, for `semcodec config --describe` and docs/config.md.
struct ConfigKeyDoc {
  std::string key;            // dotted path, e.g. "model.d_sub"
  std::string type;           // bool | int | float | string
  std::string default_value;  // as it would be written in YAML
  std::string help;
  std::string limits;         // e.g. "[1, 65536]", "one of: seed, files, all", or ""
};

// Cross-field checks after every load below: a struct with rules declares
// `void validate(const S&, const std::string& source)` beside it (found by
// argument-dependent lookup, e.g. models/run_config.h); others have none.
template <class S>
void validate(const S&, const std::string&) {}

namespace config_detail {

// Non-template pieces, in config.cpp.
YAML::Node parse_yaml_file(const std::string& path);
YAML::Node parse_yaml_text(const std::string& text, const std::string& source_name);
// "a.b.c=value" -> the nested map {a: {b: {c: value}}}, value read as a YAML scalar.
YAML::Node override_tree(const std::string& assignment);
YAML::Node json_to_yaml(const nlohmann::json& j);
std::string join_path(const std::string& prefix, const char* key);
void require_map(const YAML::Node& node, const std::string& source, const std::string& path);
// Rejects keys of `map` that are not in `known` (suggesting the closest) and duplicates.
void check_keys(const YAML::Node& map, const std::vector<std::string>& known, const std::string& source,
                const std::string& prefix);
void read_value(const YAML::Node& node, bool& out, const Limits& limits, const std::string& source,
                const std::string& path);
void read_value(const YAML::Node& node, int64_t& out, const Limits& limits, const std::string& source,
                const std::string& path);
void read_value(const YAML::Node& node, double& out, const Limits& limits, const std::string& source,
                const std::string& path);
void read_value(const YAML::Node& node, std::string& out, const Limits& limits, const std::string& source,
                const std::string& path);
// Scalar text as written to YAML (doubles round-trip exactly; strings quoted).
std::string yaml_text(bool v);
std::string yaml_text(int64_t v);
std::string yaml_text(double v);
std::string yaml_text(const std::string& v);
std::string type_name(bool);
std::string type_name(int64_t);
std::string type_name(double);
std::string type_name(const std::string&);
std::string limits_text(const Limits& limits);
void emit_scalar(YAML::Emitter& out, bool v);
void emit_scalar(YAML::Emitter& out, int64_t v);
void emit_scalar(YAML::Emitter& out, double v);
void emit_scalar(YAML::Emitter& out, const std::string& v);
std::string fnv1a64_hex(const std::string& bytes);

// Binds one YAML mapping into a struct, starting from the struct's current values.
class YamlReader {
 public:
  YamlReader(YAML::Node map, std::string source, std::string prefix)
      : map_(std::move(map)), source_(std::move(source)), prefix_(std::move(prefix)) {}

  template <class T>
  void field(const char* key, T& member, const char* /*help*/, const Limits& limits) {
    known_.emplace_back(key);
    const YAML::Node child = const_cast<const YAML::Node&>(map_)[key];
    if (child.IsDefined()) read_value(child, member, limits, source_, join_path(prefix_, key));
  }
  template <class Sub>
  void section(const char* key, Sub& sub) {
    known_.emplace_back(key);
    const YAML::Node child = const_cast<const YAML::Node&>(map_)[key];
    if (!child.IsDefined() || child.IsNull()) return;  // "key:" alone keeps the defaults
    std::string path = join_path(prefix_, key);
    require_map(child, source_, path);
    YamlReader reader(child, source_, path);
    sub.visit(reader);
    reader.finish();
  }
  void finish() const { check_keys(map_, known_, source_, prefix_); }

 private:
  YAML::Node map_;
  std::string source_, prefix_;
  std::vector<std::string> known_;
};

class YamlWriter {
 public:
  explicit YamlWriter(YAML::Emitter& out) : out_(out) {}
  template <class T>
  void field(const char* key, T& member, const char* help, const Limits&) {
    out_ << YAML::Key << key << YAML::Value;
    emit_scalar(out_, member);
    if (help && *help) out_ << YAML::Comment(help);
  }
  template <class Sub>
  void section(const char* key, Sub& sub) {
    out_ << YAML::Key << key << YAML::Value << YAML::BeginMap;
    sub.visit(*this);
    out_ << YAML::EndMap;
  }

 private:
  YAML::Emitter& out_;
};

// With `defaults` (the same struct's default JSON), keys added later are left
// out while they hold their default (Limits::added_later).
class JsonWriter {
 public:
  explicit JsonWriter(nlohmann::json& out, const nlohmann::json* defaults = nullptr) : out_(out), defaults_(defaults) {}
  template <class T>
  void field(const char* key, T& member, const char*, const Limits& limits) {
    nlohmann::json value = member;
    if (!limits.hashed_when_default && defaults_ && defaults_->contains(key) && (*defaults_)[key] == value) return;
    out_[key] = std::move(value);
  }
  template <class Sub>
  void section(const char* key, Sub& sub) {
    nlohmann::json inner = nlohmann::json::object();
    const nlohmann::json* sub_defaults = defaults_ && defaults_->contains(key) ? &(*defaults_)[key] : nullptr;
    JsonWriter writer(inner, sub_defaults);
    sub.visit(writer);
    out_[key] = std::move(inner);
  }

 private:
  nlohmann::json& out_;
  const nlohmann::json* defaults_;
};

class DocCollector {
 public:
  DocCollector(std::vector<ConfigKeyDoc>& docs, std::string prefix) : docs_(docs), prefix_(std::move(prefix)) {}
  template <class T>
  void field(const char* key, T& member, const char* help, const Limits& limits) {
    docs_.push_back({join_path(prefix_, key), type_name(member), yaml_text(member), help ? help : "",
                     limits_text(limits)});
  }
  template <class Sub>
  void section(const char* key, Sub& sub) {
    DocCollector inner(docs_, join_path(prefix_, key));
    sub.visit(inner);
  }

 private:
  std::vector<ConfigKeyDoc>& docs_;
  std::string prefix_;
};

template <class S>
void bind_yaml(const YAML::Node& root, S& config, const std::string& source) {
  if (!root.IsDefined() || root.IsNull()) return;  // empty document: all defaults
  require_map(root, source, "(top level)");
  YamlReader reader(root, source, "");
  config.visit(reader);
  reader.finish();
}

// Overrides are bound one by one so an error names the exact --set argument.
template <class S>
void apply_overrides(S& config, const std::vector<std::string>& overrides) {
  for (const std::string& assignment : overrides) config_detail::bind_yaml(override_tree(assignment), config, "--set " + assignment);
}

}  // namespace config_detail

// Reads a YAML config over S's defaults, then applies `--set a.b.c=value`
// overrides (later ones win), then validate().
template <class S>
S config_from_yaml_string(const std::string& text, const std::string& source_name,
                          const std::vector<std::string>& overrides = {}) {
  S config{};
  config_detail::bind_yaml(config_detail::parse_yaml_text(text, source_name), config, source_name);
  config_detail::apply_overrides(config, overrides);
  validate(config, source_name);
  return config;
}

template <class S>
S load_config(const std::string& yaml_path, const std::vector<std::string>& overrides = {}) {
  S config{};
  config_detail::bind_yaml(config_detail::parse_yaml_file(yaml_path), config, yaml_path);
  config_detail::apply_overrides(config, overrides);
  validate(config, yaml_path);
  return config;
}

// Every key with its value and help as a trailing comment; load_config() of the
// result gives back an equal struct.
template <class S>
std::string to_yaml(const S& config) {
  S copy = config;  // visit() is non-const
  YAML::Emitter out;
  out << YAML::BeginMap;
  config_detail::YamlWriter writer(out);
  copy.visit(writer);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

template <class S>
nlohmann::json to_json(const S& config) {
  S defaults{};
  nlohmann::json default_json = nlohmann::json::object();
  config_detail::JsonWriter default_writer(default_json);
  defaults.visit(default_writer);
  S copy = config;
  nlohmann::json out = nlohmann::json::object();
  config_detail::JsonWriter writer(out, &default_json);
  copy.visit(writer);
  return out;
}

// Same checks as the YAML reader; missing keys keep S's defaults.
template <class S>
S from_json(const nlohmann::json& j, const std::string& source) {
  S config{};
  config_detail::bind_yaml(config_detail::json_to_yaml(j), config, source);
  validate(config, source);
  return config;
}

template <class S>
std::vector<ConfigKeyDoc> describe() {
  S defaults{};
  std::vector<ConfigKeyDoc> docs;
  config_detail::DocCollector collector(docs, "");
  defaults.visit(collector);
  return docs;
}

// Stable 16-hex-digit FNV-1a hash of the canonical JSON form (keys sorted).
template <class S>
std::string config_hash(const S& config) {
  return config_detail::fnv1a64_hex(to_json(config).dump());
}

// Writes <dir>/config.resolved.yaml atomically (creating dir).
void write_resolved_config_text(const std::string& dir, const std::string& yaml_text, const std::string& hash);
template <class S>
void write_resolved_config(const std::string& dir, const S& config) {
  write_resolved_config_text(dir, to_yaml(config), config_hash(config));
}

// `semcodec config --describe` table and the body of docs/config.md.
std::string format_key_docs(const std::vector<ConfigKeyDoc>& docs);
std::string key_docs_markdown(const std::vector<ConfigKeyDoc>& docs);

}  // namespace semcodec
