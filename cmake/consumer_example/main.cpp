// Round trip through the installed Codec API: a checkpoint's codec if one is
// given (consumer CHECKPOINT FEATURES.h5), else an entropy coder on its own.
#include <cstdio>
#include <vector>

#include "codec/checkpoint_codec.h"
#include "codec/entropy/rans_coder.h"
#include "data/feature_store.h"

int main(int argc, char** argv) {
  using namespace semcodec;
  if (argc == 3) {
    auto codec = load_codec(argv[1], "cpu");
    FeatureSet set = read_feature_file(argv[2]);
    std::vector<uint8_t> bytes = codec->encode(set.features);
    CodecDecoded d = codec->decode(bytes);
    std::printf("%lld items, %.2f payload bits/item\n", static_cast<long long>(d.rate.items),
                d.rate.payload_bits_per_item());
    return d.rate.items == set.size() ? 0 : 1;
  }
  std::vector<int32_t> idx = {0, 1, 2, 3, 0, 0, 0, 1};
  EntropyModel m = EntropyModel::fit(idx.data(), 2, 4, {4}, TableMode::shared);
  RansCoder coder(m);
  std::vector<uint8_t> payload = coder.encode_item(idx.data());
  bool ok = coder.decode_item(payload) == std::vector<int32_t>(idx.begin(), idx.begin() + 4);
  std::printf("semcodec consumer: rANS round trip %s (%zu bytes)\n", ok ? "ok" : "FAILED", payload.size());
  return ok ? 0 : 1;
}
