#include "numpy_tensor.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>

namespace semcodec::python {

namespace {

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += fmt::format("{}{}", i ? ", " : "", a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string type_name(py::handle obj) { return py::str(py::type::of(obj).attr("__name__")); }

// np.asarray(obj), or a TypeError naming what was expected.
py::array as_array(py::handle obj, const std::string& what, const char* expected) {
  py::array a = py::array::ensure(obj);
  if (!a) throw py::type_error(fmt::format("{}: expected {}, got {}", what, expected, type_name(obj)));
  return a;
}

std::string rank_text(int rank, int64_t dim, const char* rows) {
  if (rank == 1) return dim > 0 ? fmt::format("[{}]", dim) : "a 1-D array";
  return dim > 0 ? fmt::format("[{}, {}]", rows, dim) : fmt::format("[{}, D]", rows);
}

}  // namespace

py::array_t<float, py::array::c_style> float_array(py::handle obj, int rank, int64_t dim, const std::string& what,
                                                     bool check_finite) {
  py::array a = as_array(obj, what, "a numpy array of floats");
  if (a.dtype().kind() != 'f')
    throw py::type_error(fmt::format("{}: expected floating-point values (float16, float32 or float64), got dtype {}",
                                     what, std::string(py::str(a.dtype()))));
  if (a.ndim() != rank || (dim > 0 && a.shape(rank - 1) != dim))
    throw py::value_error(
        fmt::format("{}: expected shape {}, got {}", what, rank_text(rank, dim, "N"), shape_text(a)));
  // No copy when `a` already is float32 and C-contiguous.
  auto f = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!f) throw py::error_already_set();
  if (check_finite) {
    const float* p = f.data();
    const int64_t n = f.size();
    const int64_t cols = rank == 2 ? f.shape(1) : n;
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i]))
        throw py::value_error(rank == 2 ? fmt::format("{}: row {} holds a non-finite value (NaN or inf)", what, i / cols)
                                        : fmt::format("{}: element {} is not finite (NaN or inf)", what, i));
  }
  return f;
}

template <class T>
py::array_t<T, py::array::c_style> integer_array(py::handle obj, const std::string& what) {
  py::array a = as_array(obj, what, "a numpy array of integers");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(
        fmt::format("{}: expected integers, got dtype {}", what, std::string(py::str(a.dtype()))));
  auto out = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!out) throw py::error_already_set();
  return out;
}
template py::array_t<int64_t, py::array::c_style> integer_array<int64_t>(py::handle, const std::string&);
template py::array_t<int32_t, py::array::c_style> integer_array<int32_t>(py::handle, const std::string&);

py::array_t<int64_t, py::array::c_style> index_array(py::handle obj, int64_t cols, const std::string& what) {
  auto a = integer_array<int64_t>(obj, what);
  if (a.ndim() != 2 || (cols > 0 && a.shape(1) != cols))
    throw py::value_error(fmt::format("{}: expected shape {}, got {}", what, rank_text(2, cols, "N"), shape_text(a)));
  return a;
}

at::Tensor view_tensor(const py::array& a) {
  at::ScalarType type;
  if (py::isinstance<py::array_t<float>>(a)) type = at::kFloat;
  else if (py::isinstance<py::array_t<int64_t>>(a)) type = at::kLong;
  else if (py::isinstance<py::array_t<int32_t>>(a)) type = at::kInt;
  else throw py::type_error("view_tensor: unsupported dtype " + std::string(py::str(a.dtype())));
  std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  std::vector<int64_t> strides;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) strides.push_back(a.strides(i) / a.itemsize());
  return at::from_blob(const_cast<void*>(a.data()), shape, strides, at::TensorOptions().dtype(type));
}

py::array to_numpy(at::Tensor t) {
  t = t.to(at::kCPU).contiguous();  // both no-ops for what the codec returns
  py::dtype dtype;
  switch (t.scalar_type()) {
    case at::kFloat: dtype = py::dtype::of<float>(); break;
    case at::kDouble: dtype = py::dtype::of<double>(); break;
    case at::kLong: dtype = py::dtype::of<int64_t>(); break;
    case at::kInt: dtype = py::dtype::of<int32_t>(); break;
    default: throw py::type_error(fmt::format("to_numpy: unsupported tensor type {}", c10::toString(t.scalar_type())));
  }
  std::vector<py::ssize_t> shape(t.sizes().begin(), t.sizes().end());
  std::vector<py::ssize_t> strides;
  for (int64_t s : t.strides()) strides.push_back(static_cast<py::ssize_t>(s * t.element_size()));
  // numpy reads the tensor's memory; the capsule owns a reference to the tensor.
  auto* owner = new at::Tensor(std::move(t));
  py::capsule base(owner, [](void* p) { delete static_cast<at::Tensor*>(p); });
  return py::array(dtype, shape, strides, owner->data_ptr(), base);
}

ByteView byte_view(py::handle obj, const std::string& what) {
  if (py::isinstance<py::str>(obj) || !PyObject_CheckBuffer(obj.ptr()))
    throw py::type_error(fmt::format("{}: expected bytes (or bytearray, memoryview), got {}", what, type_name(obj)));
  ByteView v{py::reinterpret_borrow<py::buffer>(obj), {}};
  v.info = v.buffer.request();
  if (v.info.itemsize != 1 || v.info.ndim != 1 || (v.info.size > 1 && v.info.strides[0] != 1))
    throw py::type_error(fmt::format("{}: expected contiguous bytes, got a buffer of {}-byte items with {} dims", what,
                                     v.info.itemsize, v.info.ndim));
  return v;
}

py::bytes to_bytes(const std::vector<uint8_t>& v) {
  return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
}

}  // namespace semcodec::python
