// JSON from untrusted bytes (checkpoint metadata, result files): nesting is
// limited while parsing, so that no later recursive walk (YAML conversion,
// config binding, printing) can overflow the stack on a hostile file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace semcodec {

// Nesting semcodec's own JSON never comes near (configs are 3 levels deep).
constexpr int kMaxJsonDepth = 64;

// Parses `text`; invalid JSON or nesting deeper than `max_depth` is an Error
// starting with `what` (e.g. "run/best.safetensors: metadata 'config'").
nlohmann::json parse_json_bounded(std::string_view text, const std::string& what, int max_depth = kMaxJsonDepth);

}  // namespace semcodec
