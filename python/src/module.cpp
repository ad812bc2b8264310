// The compiled part of the semcodec Python package (semcodec._semcodec); the
// package's __init__.py re-exports it with the pure-Python helpers.
// docs/python.md describes the API.
#include <c10/util/Exception.h>

#include <mutex>

#include "bindings.h"
#include "data/device.h"
#include "semcodec_version.h"
#include "util/error.h"

namespace semcodec::python {

namespace {
std::once_flag threads_configured;
}

void configure_threads_once() {
  std::call_once(threads_configured, [] { configure_threads(0); });
}

py::object json_to_python(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return py::none();
    case nlohmann::json::value_t::boolean: return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return py::int_(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: return py::int_(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float: return py::float_(j.get<double>());
    case nlohmann::json::value_t::string: return py::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      py::list out;
      for (const auto& v : j) out.append(json_to_python(v));
      return std::move(out);
    }
    case nlohmann::json::value_t::object: {
      py::dict out;
      for (const auto& [k, v] : j.items()) out[py::str(k)] = json_to_python(v);
      return std::move(out);
    }
    default: return py::none();  // binary, discarded: not produced by semcodec
  }
}

}  // namespace semcodec::python

PYBIND11_MODULE(_semcodec, m) {
  namespace py = pybind11;
  using namespace semcodec::python;
  m.doc() = "semcodec's C++ codec and feature files (the compiled part of the semcodec package)";
  m.attr("__version__") = SEMCODEC_VERSION;

  // Every error of the library (semcodec::Error) and of LibTorch arrives as
  // semcodec.Error with the C++ message.
  static py::exception<semcodec::Error> error(m, "Error", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const semcodec::Error& e) {
      error(e.what());
    } catch (const c10::Error& e) {
      error(("LibTorch: " + std::string(e.what_without_backtrace())).c_str());
    }
  });

  m.def(
      "set_num_threads",
      [](int64_t threads) {
        if (threads < 0) throw py::value_error("set_num_threads: threads must be >= 0 (0 = every core)");
        semcodec::python::configure_threads_once();
        semcodec::configure_threads(threads);
      },
      py::arg("threads"),
      "CPU threads for the codec's computations, as the CLI's thread setup (0 = every core). Also sets "
      "OpenBLAS's thread count, which numpy shares.");

  bind_codec(m);
  bind_features(m);
}
