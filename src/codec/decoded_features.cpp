#include "codec/decoded_features.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "data/feature_store.h"
#include "util/error.h"

namespace semcodec {

// What the compressed feature file contributes besides the rows.
struct DecodedFeatureFile::Source {
  at::Tensor labels, image_sizes, class_embeddings;
  std::vector<std::string> ids, class_names;
};

DecodedFeatureFile::DecodedFeatureFile(const std::string& path, int64_t items, int64_t dim,
                                       const Fingerprint& fingerprint, const std::string& source,
                                       const std::string& stream)
    : path_(path), stream_(stream), items_(items), source_(std::make_unique<Source>()) {
  const std::string made_by = fmt::format("semcodec reconstruction ({})", fingerprint_hex(fingerprint).substr(0, 16));
  FeatureAttrs attrs;
  if (!source.empty()) {
    FeatureReader reader(source);
    require(reader.size() == items, "{}: {} rows, but stream {} holds {} items; --features must be the file it was "
            "compressed from", source, reader.size(), stream, items);
    require(reader.dim() == dim, "{}: rows of {} values, but the checkpoint of stream {} decodes {}-value rows; "
            "--features must be the file it was compressed from", source, reader.dim(), stream, dim);
    attrs = reader.info().attrs;
    attrs.preprocessing += " | " + made_by;
    source_->labels = reader.labels();
    source_->ids = reader.ids();
    source_->class_names = reader.class_names();
    source_->class_embeddings = reader.class_embeddings();
    source_->image_sizes = reader.image_sizes();
  } else {
    attrs.preprocessing = made_by;
    source_->class_names = {"unknown"};
  }
  attrs.tool_version.clear();
  FeatureWriteOptions options;
  options.chunk_rows = std::clamp<int64_t>(items, 1, options.chunk_rows);
  writer_ = std::make_unique<FeatureWriter>(path, dim, attrs, options);
}

DecodedFeatureFile::~DecodedFeatureFile() {
  if (closed_) return;
  writer_.reset();  // closes the partial file before it goes
  std::remove(FeatureWriter::partial_path(path_).c_str());
}

void DecodedFeatureFile::append(const at::Tensor& rows) {
  const int64_t b = rows.size(0);
  require(written_ + b <= items_, "{}: more than the stream's {} items decoded", path_, items_);
  std::vector<std::string> ids;
  at::Tensor labels, sizes;
  if (source_->labels.defined()) {
    labels = source_->labels.narrow(0, written_, b);
    if (!source_->ids.empty()) ids.assign(source_->ids.begin() + written_, source_->ids.begin() + written_ + b);
    if (source_->image_sizes.defined()) sizes = source_->image_sizes.narrow(0, written_, b);
  } else {
    labels = at::zeros({b}, at::kLong);
    for (int64_t i = written_; i < written_ + b; ++i) ids.push_back(fmt::format("item/{}", i));
  }
  writer_->append(rows, labels, ids, sizes);
  written_ += b;
}

void DecodedFeatureFile::close() {
  require(written_ == items_, "{}: {} of stream {}'s {} items decoded", path_, written_, stream_, items_);
  writer_->set_classes(source_->class_names, source_->class_embeddings);
  writer_->close();
  closed_ = true;
}

}  // namespace semcodec
