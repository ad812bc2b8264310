// What the CLI reads from a feature file, through the library functions, for
// the feature-file fuzz target and the mutation campaign (h5_campaign.cpp):
//   info                      inspect_feature_file
//   eval, train, compress     read_feature_file
//   merge-shards              FeatureReader: class names, text embeddings,
//                             ids, labels, image sizes, rows in blocks
//   extract (resume)          FeatureWriter(..., resume=true) on a copy named
//                             as a partial file, then its committed ids
//   embed-text --features     replace_class_embeddings on a copy
// (import reads .npy/.npz and text files, never a feature file: fuzz_npy.)
//
// A semcodec::Error is a clean refusal. Anything else that escapes (a
// c10::Error, std::bad_alloc, ...) is reported through the return value, so
// that the callers can count it as a finding; crashes, hangs and huge
// allocations are caught by the sanitizers and the campaign's child process.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "data/feature_store.h"
#include "util/error.h"

namespace semcodec::fuzz {

struct ExerciseResult {
  int accepted = 0;        // operations that completed
  int refused = 0;         // operations that threw semcodec::Error
  int unclean = 0;         // operations that threw anything else
  std::string unclean_what;  // the first such exception's message
};

namespace detail {

template <class F>
void run_op(ExerciseResult& r, const char* op, F&& f) {
  try {
    f();
    ++r.accepted;
  } catch (const Error&) {
    ++r.refused;
  } catch (const std::exception& e) {
    if (r.unclean++ == 0) r.unclean_what = std::string(op) + ": " + e.what();
  }
}

inline bool copy_to(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  return !ec;
}

}  // namespace detail

// `scratch` is a writable directory for the copies (emptied of them afterwards).
inline ExerciseResult exercise_feature_file(const std::string& path, const std::string& scratch) {
  ExerciseResult r;
  int64_t rows = -1, dim = -1, classes = -1;
  detail::run_op(r, "inspect_feature_file", [&] {
    const FeatureFileInfo i = inspect_feature_file(path);
    rows = i.rows;
    dim = i.dim;
    classes = i.num_classes;
  });
  detail::run_op(r, "read_feature_file", [&] { (void)read_feature_file(path); });
  detail::run_op(r, "FeatureReader", [&] {
    FeatureReader in(path);
    (void)in.class_names();
    (void)in.class_embeddings();
    (void)in.ids();
    (void)in.labels();
    (void)in.image_sizes();
    const int64_t block = 4096;
    for (int64_t s = 0; s < in.size(); s += block) (void)in.read_rows(s, std::min(block, in.size() - s));
  });
  // Resume of an interrupted extraction: the writer reopens "<out>.partial".
  const std::string target = scratch + "/resume.h5";
  const std::string partial = FeatureWriter::partial_path(target);
  if (detail::copy_to(path, partial)) {
    detail::run_op(r, "FeatureWriter resume", [&] {
      FeatureAttrs attrs;
      FeatureWriter w(target, dim > 0 ? dim : 16, attrs, FeatureWriteOptions{}, /*resume=*/true);
      (void)w.ids();
    });
    std::remove(partial.c_str());
  }
  // embed-text --features: only when the file's shape could be read, and small.
  if (classes > 0 && dim > 0 && classes * dim <= (1 << 20)) {
    const std::string copy = scratch + "/embed.h5";
    if (detail::copy_to(path, copy)) {
      detail::run_op(r, "replace_class_embeddings", [&] {
        at::Tensor e = at::ones({classes, dim}, at::kFloat) / std::sqrt(static_cast<double>(dim));
        replace_class_embeddings(copy, e);
      });
      std::remove(copy.c_str());
    }
  }
  (void)rows;
  return r;
}

}  // namespace semcodec::fuzz
