// Writes a seed corpus for fuzz_decoder: real streams, packets and payloads
// from every coder and both fixed models, plus model-carrying inputs.
#include <cstdio>
#include <fstream>
#include <string>

#include "codec/entropy/bitstream.h"
#include "codec/entropy/coder_registry.h"
#include "fuzz_model.h"

using namespace semcodec;

namespace {
int counter = 0;
void emit(const std::string& dir, uint8_t selector, const std::vector<uint8_t>& body) {
  std::ofstream f(dir + "/seed_" + std::to_string(counter++), std::ios::binary);
  f.put(static_cast<char>(selector));
  f.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  for (int which = 0; which < 2; ++which) {
    const EntropyModel& m = fuzz::fixed_models()[static_cast<size_t>(which)];
    for (const CoderInfo& info : coders()) {
      auto c = info.make(m);
      for (int64_t items : {0, 1, 3}) {
        auto idx = fuzz::skewed_indices(items, m.alphabet_sizes(), static_cast<uint64_t>(100 + items + which));
        emit(dir, static_cast<uint8_t>(0 | which << 2), encode_stream(*c, fuzz::fixed_fingerprint(), idx.data(), items));
        if (items == 1) {
          emit(dir, static_cast<uint8_t>(1 | which << 2), encode_packet(*c, fuzz::fixed_fingerprint(), idx.data()));
          emit(dir, static_cast<uint8_t>(2 | which << 2), c->encode_item(idx.data()));
        }
      }
    }
  }
  // Model-carrying inputs: a small model, then a payload of each coder.
  std::vector<int64_t> k = {2, 3, 5, 1};
  auto tr = fuzz::skewed_indices(50, k, 7);
  for (TableMode mode : {TableMode::per_slot, TableMode::shared}) {
    std::vector<int64_t> kk = mode == TableMode::shared ? std::vector<int64_t>{4} : k;
    auto tr2 = fuzz::skewed_indices(50, std::vector<int64_t>(4, kk[0]), 9);
    EntropyModel m = mode == TableMode::shared ? EntropyModel::fit(tr2.data(), 50, 4, kk, mode)
                                               : EntropyModel::fit(tr.data(), 50, 4, kk, mode);
    std::vector<uint8_t> mb = m.to_bytes();
    for (const CoderInfo& info : coders()) {
      auto c = info.make(m);
      auto idx = fuzz::skewed_indices(1, m.alphabet_sizes(), 11);
      std::vector<uint8_t> body = {static_cast<uint8_t>(mb.size() / 8), static_cast<uint8_t>((mb.size() / 8) >> 8)};
      body.insert(body.end(), mb.begin(), mb.end());
      auto pl = c->encode_item(idx.data());
      body.insert(body.end(), pl.begin(), pl.end());
      emit(dir, 3, body);
    }
  }
  std::printf("wrote %d seeds to %s\n", counter, dir.c_str());
  return 0;
}
