// numpy arrays <-> at::Tensor for the Python module, without copies where the
// layouts allow: inputs are viewed in place when they already have the wanted
// dtype and C order, outputs hand numpy the tensor's own memory (a capsule
// keeps the tensor alive). Argument errors are TypeError (dtype) and
// ValueError (shape, values) naming the function and the argument.
#pragma once
#include <ATen/core/Tensor.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace semcodec::python {

namespace py = pybind11;

// A float array (float16/32/64, or a nested list of numbers) as a float32
// C-contiguous array of `rank` dims (1 or 2); the same object when it already
// is one. `dim`, when > 0, is the required size of the last axis. Non-float
// dtypes are a TypeError; another rank or last axis, or a non-finite value, a
// ValueError. `what` names the argument in messages ("Codec.encode(x)").
py::array_t<float, py::array::c_style> float_array(py::handle obj, int rank, int64_t dim, const std::string& what,
                                                     bool check_finite = true);

// An integer array as int64 C-contiguous [N, cols] (cols > 0: required).
py::array_t<int64_t, py::array::c_style> index_array(py::handle obj, int64_t cols, const std::string& what);

// Optional integer array of any shape as a C-contiguous array of T.
template <class T>
py::array_t<T, py::array::c_style> integer_array(py::handle obj, const std::string& what);

// A tensor viewing the array's memory (the array must outlive it).
at::Tensor view_tensor(const py::array& a);

// The tensor's memory as a numpy array (made CPU-contiguous first if needed;
// no copy when it already is). Needs the GIL.
py::array to_numpy(at::Tensor t);

// The bytes of a bytes-like object (bytes, bytearray, memoryview, a 1-D uint8
// array); TypeError for anything else (str included).
struct ByteView {
  py::buffer buffer;       // keeps the object alive
  py::buffer_info info;
  const uint8_t* data() const { return static_cast<const uint8_t*>(info.ptr); }
  size_t size() const { return static_cast<size_t>(info.size); }
};
ByteView byte_view(py::handle obj, const std::string& what);

py::bytes to_bytes(const std::vector<uint8_t>& v);

}  // namespace semcodec::python
