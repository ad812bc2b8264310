// The registry of entropy coders: every coder once, with the id its streams
// carry, the name checkpoints and the command line use, and its factory.
// Every list of coders (fit-entropy's choices and its per-coder rates, the
// fuzzer's seeds, error messages) iterates it. Adding a coder: its own file
// defining the EntropyCoder and `CoderInfo <name>_entry()`, plus one line in
// coder_registry.cpp (docs/architecture.md, "Registries" and "Worked example:
// adding an entropy coder").
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "codec/entropy/entropy_coder.h"

namespace semcodec {

struct CoderInfo {
  CoderId id;           // written in every stream and packet: stable, never reused
  std::string name;     // in checkpoints' "entropy" metadata and `fit-entropy --coder`
  std::string summary;  // one line for help texts
  std::unique_ptr<EntropyCoder> (*make)(const EntropyModel& model);
};

// Every registered coder, in id order.
const std::vector<CoderInfo>& coders();
std::vector<std::string> coder_names();
// The entry of an id or a name; Error for unknown ones (naming the known names).
const CoderInfo& coder_info(CoderId id);
const CoderInfo& coder_info(const std::string& name);

const char* coder_name(CoderId id);              // "?" for an unknown id
std::string known_coder_ids();                    // "0 raw, 1 huffman, 2 rans": for messages
CoderId parse_coder_id(const std::string& name);  // Error naming the known coders
bool is_known_coder_id(int value);

// Builds the coder `id` from a model (raw ignores the counts).
std::unique_ptr<EntropyCoder> make_coder(CoderId id, const EntropyModel& model);

}  // namespace semcodec
