// semcodec.read_features / write_features: the HDF5 feature file
// (docs/feature-store.md) through the C++ reader and writer, so Python reads
// and writes exactly what the CLI does. Both release the GIL while they work.
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "data/feature_store.h"
#include "numpy_tensor.h"

namespace semcodec::python {

namespace {

// Whether the file has an `ids` dataset (the reader makes up row_<i> without one).
bool file_has_ids(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return false;
  const bool has = H5Lexists(f, "ids", H5P_DEFAULT) > 0;
  H5Fclose(f);
  return has;
}

py::object optional_array(const at::Tensor& t) { return t.defined() ? py::object(to_numpy(t)) : py::object(py::none()); }

py::dict read_features(const std::string& path) {
  FeatureSet set;
  bool has_ids = false;
  {
    py::gil_scoped_release release;
    set = read_feature_file(path);
    has_ids = file_has_ids(path);
  }
  py::dict out;
  out["features"] = to_numpy(set.features);
  out["labels"] = to_numpy(set.labels);
  out["class_names"] = set.class_names;
  out["class_embeddings"] = optional_array(set.class_embeddings);
  out["ids"] = has_ids ? py::object(py::cast(set.ids)) : py::object(py::none());
  out["image_sizes"] = optional_array(set.image_sizes);
  py::dict attrs;
  attrs["encoder_model"] = set.attrs.encoder_model;
  attrs["dataset"] = set.attrs.dataset;
  attrs["split"] = set.attrs.split;
  attrs["preprocessing"] = set.attrs.preprocessing;
  attrs["tool_version"] = set.attrs.tool_version;
  out["attrs"] = attrs;
  return out;
}

std::vector<std::string> strings(py::handle obj, int64_t n, const char* what) {
  if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj))
    throw py::type_error(fmt::format("write_features: {} must be a sequence of str, not one string", what));
  std::vector<std::string> out;
  for (py::handle s : py::iter(obj)) {
    if (!py::isinstance<py::str>(s))
      throw py::type_error(fmt::format("write_features: {} must hold str, got {}", what,
                                       std::string(py::str(py::type::of(s).attr("__name__")))));
    out.push_back(s.cast<std::string>());
  }
  if (n >= 0 && static_cast<int64_t>(out.size()) != n)
    throw py::value_error(fmt::format("write_features: {} {} for {} rows", out.size(), what, n));
  return out;
}

void write_features(const std::string& path, py::handle features, py::handle labels, py::handle class_names,
                    py::handle class_embeddings, py::handle ids, py::handle image_sizes, const std::string& encoder_model,
                    const std::string& dataset, const std::string& split, const std::string& preprocessing,
                    const std::string& dtype, int64_t chunk_rows, int gzip_level) {
  auto x = float_array(features, 2, 0, "write_features(features)");
  const int64_t n = x.shape(0), d = x.shape(1);
  for (int64_t i = 0; i < n; ++i) {
    bool zero = true;
    for (int64_t j = 0; j < d && zero; ++j) zero = x.data()[i * d + j] == 0.0f;
    if (zero) throw py::value_error(fmt::format("write_features(features): row {} is all zeros (readers refuse it)", i));
  }
  auto y = integer_array<int64_t>(labels, "write_features(labels)");
  if (y.ndim() != 1 || y.shape(0) != n)
    throw py::value_error(fmt::format("write_features(labels): expected shape ({},), got {} values in {} dims", n,
                                      y.size(), y.ndim()));
  FeatureSet set;
  set.class_names = strings(class_names, -1, "class_names");
  const int64_t c = set.num_classes();
  if (c == 0) throw py::value_error("write_features(class_names): at least one class is needed");
  for (int64_t i = 0; i < n; ++i)
    if (y.data()[i] < 0 || y.data()[i] >= c)
      throw py::value_error(
          fmt::format("write_features(labels): label {} of row {} is outside [0, {}) classes", y.data()[i], i, c));
  py::array_t<float, py::array::c_style> text;
  if (!class_embeddings.is_none()) {
    text = float_array(class_embeddings, 2, d, "write_features(class_embeddings)");
    if (text.shape(0) != c)
      throw py::value_error(fmt::format("write_features(class_embeddings): expected shape ({}, {}), got ({}, {})", c, d,
                                        text.shape(0), text.shape(1)));
    set.class_embeddings = view_tensor(text);
  }
  py::array_t<int32_t, py::array::c_style> sizes;
  if (!image_sizes.is_none()) {
    sizes = integer_array<int32_t>(image_sizes, "write_features(image_sizes)");
    if (sizes.ndim() != 2 || sizes.shape(0) != n || sizes.shape(1) != 2)
      throw py::value_error(fmt::format("write_features(image_sizes): expected shape ({}, 2)", n));
    set.image_sizes = view_tensor(sizes);
  }
  if (!ids.is_none()) set.ids = strings(ids, n, "ids");
  set.features = view_tensor(x);
  set.labels = view_tensor(y);
  set.attrs.encoder_model = encoder_model;
  set.attrs.dataset = dataset;
  set.attrs.split = split;
  set.attrs.preprocessing = preprocessing;
  FeatureWriteOptions options;
  options.dtype = dtype;
  options.chunk_rows = chunk_rows;
  options.gzip_level = gzip_level;
  if (dtype != "float32" && dtype != "float16")
    throw py::value_error(fmt::format("write_features(dtype): expected 'float32' or 'float16', got '{}'", dtype));
  if (chunk_rows < 1) throw py::value_error("write_features(chunk_rows): must be >= 1");
  if (gzip_level < 0 || gzip_level > 9) throw py::value_error("write_features(gzip_level): must be in 0..9");
  py::gil_scoped_release release;
  write_feature_file(path, set, options);
}

}  // namespace

void bind_features(py::module_& m) {
  m.def("_read_features", &read_features, py::arg("path"));
  m.def("_write_features", &write_features, py::arg("path"), py::arg("features"), py::arg("labels"),
        py::arg("class_names"), py::arg("class_embeddings"), py::arg("ids"), py::arg("image_sizes"),
        py::arg("encoder_model"), py::arg("dataset"), py::arg("split"), py::arg("preprocessing"), py::arg("dtype"),
        py::arg("chunk_rows"), py::arg("gzip_level"));
}

}  // namespace semcodec::python
