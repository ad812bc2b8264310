// The pieces of the semcodec Python module (_semcodec), one function per file
// that adds its classes and functions to the module.
#pragma once
#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>

namespace semcodec::python {

namespace py = pybind11;

void bind_codec(py::module_& m);     // codec_bindings.cpp: semcodec.Codec
void bind_features(py::module_& m);  // feature_bindings.cpp: read_features, write_features

// Sets the CPU threads the way the CLI does (configure_threads(0)) the first
// time a checkpoint is loaded, so that the module and `semcodec compress` run
// the same kernels with the same threads; set_num_threads() overrides it.
void configure_threads_once();

// JSON (configs, metadata) as Python dicts, lists and scalars.
py::object json_to_python(const nlohmann::json& j);

}  // namespace semcodec::python
