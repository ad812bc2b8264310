#include "util/json_bounded.h"

#include "util/error.h"

namespace semcodec {

nlohmann::json parse_json_bounded(std::string_view text, const std::string& what, int max_depth) {
  using json = nlohmann::json;
  const json::parser_callback_t check_depth = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && depth >= max_depth)
      fail("{}: JSON nested deeper than {} levels", what, max_depth);
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), check_depth);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", what, e.what());
  }
}

}  // namespace semcodec
