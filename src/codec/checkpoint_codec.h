// Entropy-coder tables inside checkpoints, and Codecs built from checkpoints:
// the library API a program uses to compress (load_codec). A compress-only
// program links this layer and those below it, not the trainer.
//
// The tables are the "entropy.tables" tensor (EntropyModel::serialize), with
// the coder and the table mode in the "entropy" metadata (docs/checkpoint.md);
// codec/entropy_fit.h fits them. A Codec is then the checkpoint's model plus
// those tables plus the fingerprint of codebook, decoder and tables.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "codec/codec.h"
#include "models/checkpoint.h"

namespace semcodec {

// True when the checkpoint holds entropy tables.
bool has_entropy_tables(const Checkpoint& ckpt);
EntropyModel checkpoint_entropy_model(const Checkpoint& ckpt, const std::string& source);
CoderId checkpoint_coder(const Checkpoint& ckpt, const std::string& source);

// Stores `model` as the checkpoint's tables with `meta` (which names the
// coder, "coder": <registered name>) as its "entropy" metadata, replacing any.
void store_entropy_tables(Checkpoint& ckpt, const EntropyModel& model, const nlohmann::json& meta);

// Copies the tables (and their metadata) of checkpoint `from` into checkpoint
// `to`, rewriting `to` atomically; for two checkpoints holding the same weights.
void copy_entropy_tables(const std::string& from, const std::string& to);

// A Codec for the checkpoint (its model on `device`, its tables, its fingerprint).
// Fails with a hint to run `semcodec fit-entropy` when the tables are missing.
std::unique_ptr<Codec> make_codec(const Checkpoint& ckpt, const std::string& source, const std::string& device = "auto");
std::unique_ptr<Codec> load_codec(const std::string& checkpoint, const std::string& device = "auto");

}  // namespace semcodec
