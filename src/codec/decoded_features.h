// The feature file a decoded stream becomes (`semcodec decompress`). A
// stream carries only the coded items; the rest comes from the feature file
// it was compressed from (docs/bitstream.md).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

#include "codec/entropy/bitstream.h"

namespace semcodec {

class FeatureWriter;

// Writes a stream's reconstructions a block of rows at a time, so that
// decoding never holds all [N, D]. Rows go to a partial file that close()
// renames onto `path`; a writer destroyed without close() removes it, so a
// failed decode leaves nothing that looks complete. With a `source` (the
// feature file the stream was compressed from, which must have `items` rows of
// `dim` values; errors name `stream`) the file gets its labels, ids, class
// names, text embeddings, image sizes and attributes; without one labels 0,
// ids item/<row> and one class "unknown". The preprocessing attribute names
// the codec's fingerprint.
class DecodedFeatureFile {
 public:
  DecodedFeatureFile(const std::string& path, int64_t items, int64_t dim, const Fingerprint& fingerprint,
                     const std::string& source, const std::string& stream);
  ~DecodedFeatureFile();
  DecodedFeatureFile(const DecodedFeatureFile&) = delete;
  DecodedFeatureFile& operator=(const DecodedFeatureFile&) = delete;

  // The next rows [b, dim] float32, in stream order.
  void append(const at::Tensor& rows);
  // Requires all `items` rows; writes the class list and renames the file into place.
  void close();

 private:
  struct Source;
  std::string path_, stream_;
  int64_t items_ = 0, written_ = 0;
  std::unique_ptr<Source> source_;
  std::unique_ptr<FeatureWriter> writer_;
  bool closed_ = false;
};

}  // namespace semcodec
