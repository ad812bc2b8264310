#include "codec/decoded_features.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "data/feature_store.h"
#include "util/error.h"

namespace semcodec {

FeatureSet decoded_feature_set(const at::Tensor& reconstructions, const Fingerprint& fingerprint,
                               const std::string& source, const std::string& stream) {
  const int64_t n = reconstructions.size(0);
  const std::string made_by = fmt::format("semcodec reconstruction ({})", fingerprint_hex(fingerprint).substr(0, 16));
  FeatureSet out;
  if (!source.empty()) {
    out = read_feature_file(source);
    require(out.size() == n, "{}: {} rows, but stream {} holds {} items; --features must be the file it was "
            "compressed from", source, out.size(), stream, n);
    out.attrs.preprocessing += " | " + made_by;
  } else {
    out.labels = at::zeros({n}, at::kLong);
    for (int64_t i = 0; i < n; ++i) out.ids.push_back(fmt::format("item/{}", i));
    out.class_names = {"unknown"};
    out.attrs.preprocessing = made_by;
  }
  out.features = reconstructions;
  out.attrs.tool_version.clear();
  return out;
}

}  // namespace semcodec
